// Package sdp owns the SDP wire format (RFC 4566/8866) as far as a passive
// monitor needs it: the media endpoints (address, RTP and RTCP ports),
// payload formats and direction of each m= section of an offer or answer,
// so that RTP streams can be tied to a Call.
//
// Parse is called once per offer or answer and allocates freely; its result
// does not alias the input.
//
// Allowed imports: the standard library only (sdp is a leaf).
package sdp
