// Package ami serves an Asterisk-Manager-Interface-compatible TCP port: the
// banner, the Key: Value framing ([Framer]), plain and MD5-challenge login
// against users read from a manager.conf-style file ([ParseConfig]),
// permission classes mapped one to one onto [command.Perm], legacy and
// advanced event filters, every registry command as an action of its own
// (plus Command, CoreShowChannels and the other built-in actions), and a
// live event stream rendered from [event.Event]s once per event and shared
// by every session.
//
// Each [Session] has one reader (actions run there, in order) and one
// writer goroutine draining a queue bounded by messages and bytes, with a
// write deadline per write. A session that falls behind is closed with a
// logged reason and counted in [Stats]; the event dispatcher, and so the
// capture path, never waits for a client.
//
// Every value taken off the wire (SIP display names, numbers, Call-IDs,
// user agents) is C-escaped ([Escape]) before it is written, so a display
// name holding "\r\nEvent: Fake" cannot forge an event.
//
// Allowed imports: command and event (plus the standard library); never
// calltable, cdr, capture or another transport.
package ami
