// Package rtp owns the RTP and RTCP wire formats and the per-[Stream] voice
// quality statistics built on them: RFC 3550 sequence accounting (loss,
// duplicates, reordering), Wireshark-compatible interarrival jitter, and a
// VoIPmonitor-compatible MOS from simulated jitter buffers.
//
// [Header.Unmarshal] and [ParseRTCP] are hand-written, fill caller-owned
// values, alias their input and allocate nothing. [Stream] is a plain value
// of about 600 bytes so a call table can hold many of them; it is not safe
// for concurrent use, its owner serialises access.
//
// Allowed imports: the standard library only (pion/rtp appears in tests as a
// benchmark reference). This package is a leaf.
package rtp
