// Package sip owns the SIP wire format as a passive monitor sees it: a
// zero-copy [Message] view that fills the headers needed for call and
// registration tracking (RFC 3261) and leaves everything else raw in
// [Message.Raw], reachable through [Message.Header].
//
// Parsing allocates nothing: every byte slice in a [Message] aliases the
// buffer given to [Message.Unmarshal] and stays valid only while that buffer
// is not reused. Use [Message.Clone] to retain a Message.
//
// Allowed imports: the standard library only (sip is a leaf).
package sip
