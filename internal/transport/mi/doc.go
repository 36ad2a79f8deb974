// Package mi implements the OpenSIPS Management Interface transports over
// the command registry: a JSON-RPC 2.0 [Dispatcher] (OpenSIPS 3.x envelope
// rules, parameter matching and error codes), and three listeners feeding
// it: [HTTPServer] for HTTP POST /mi (and XML-RPC on /RPC2 through the
// [XMLResponder] the sensor hands it), [FIFO] for the named pipe with
// both the OpenSIPS ":reply_name:{json}" and the Kamailio {"reply_name":…}
// framing (told apart by the first byte, see [Framer]), and [Datagram] for
// UDP and unix datagram sockets (one request per datagram, reply to the
// sender).
//
// Every listener is an adapter: it bounds the request, hands the bytes to
// the Dispatcher with the listener's [command.Perm] (read-only listeners
// lack the control classes) and writes the reply text back. Every
// listener has the transports' one surface: NewX binds nothing, Listen
// binds (or makes the FIFO), Run(ctx) serves until ctx is done, Close
// releases a listener that never ran. A request whose handling panics is
// answered with JSON-RPC's internal error (-32603) and counted.
//
// Allowed imports: command, event, the standard library, and the shared
// transport plumbing (internal/transport/conn, internal/transport/httpauth).
// Never calltable, cdr, capture or another transport.
package mi
