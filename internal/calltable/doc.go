// Package calltable owns call and registration state: it turns decoded
// datagrams into [Call]s (per Call-ID, across proxy legs), their RTP/RTCP
// [Stream]s (tied to calls through SDP), and [Registration]s, times out what
// never ends cleanly, and hands finished calls to a [Sink].
//
// All state sits behind one mutex owned by [Table]; see LOCKS.md. The packet
// path (one goroutine) mutates it; management readers take a [Snapshot].
//
// Allowed imports: decode, sip, sdp, rtp (and, later, event and cdr); never
// command or transport.
package calltable
