// Package ami serves an Asterisk-Manager-Interface-compatible TCP port: the
// banner, the Key: Value framing ([Framer]), plain and MD5-challenge login
// against users read from a manager.conf-style file ([ParseConfig]),
// permission classes mapped one to one onto [command.Perm], legacy and
// advanced event filters, every registry command as an action of its own
// (plus Command, CoreShowChannels and the other built-in actions), and a
// live event stream rendered from [event.Event]s once per event and shared
// by every session.
//
// The sessions run on the session kit (package conn): its accept loop
// waits out EMFILE instead of stopping, authlimit is its cap on sessions
// not logged in yet and authlimitperip its per-address cap (refused
// connections are closed before the banner), authtimeout its
// first-request deadline, and on shutdown it drains the sessions after
// the dispatcher has handed them what the bus still held. Each [Session]
// has one reader (actions run there, in order) and a [conn.Outbox]: one
// writer draining a queue bounded by messages and bytes, with a write
// deadline per write. A session that falls behind is closed with a logged
// reason and counted; the event dispatcher, and so the capture path,
// never waits for a client.
//
// A panic in an action is answered with "Response: Error" and "Message:
// Internal error", then the session is closed and the kit logs the stack
// (once) and counts it; a panic while rendering an event drops that event
// and is logged and counted ([Stats].RenderPanics). A command's own panic
// is the registry's: the action is answered with an error and the session
// goes on.
//
// Actions that show sensor data run a registry command with the user's
// write classes, so the registry's check is the only one:
// CoreShowChannels, Status and CoreStatus render calls_in_progress.
//
// Every value taken off the wire (SIP display names, numbers, Call-IDs,
// user agents) is C-escaped ([Escape]) before it is written, so a display
// name holding "\r\nEvent: Fake" cannot forge an event.
//
// Allowed imports: command, event and transport/conn (plus the standard
// library); never calltable, cdr, capture or another transport.
package ami
