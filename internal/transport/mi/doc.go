// Package mi implements the OpenSIPS Management Interface transports over
// the command registry: a JSON-RPC 2.0 [Dispatcher] (OpenSIPS 3.x envelope
// rules, parameter matching and error codes), and three listeners feeding
// it: [Handler] for HTTP POST /mi, [FIFO] for the named pipe with both the
// OpenSIPS ":reply_name:{json}" and the Kamailio {"reply_name":…} framing
// (told apart by the first byte, see [Framer]), and [Datagram] for UDP and
// unix datagram sockets (one request per datagram, reply to the sender).
//
// Every listener is an adapter: it bounds the request, hands the bytes to
// the Dispatcher with the listener's [command.Perm] (read-only listeners
// lack the control classes) and writes the reply text back.
//
// Allowed imports: command, event and the standard library. Never
// calltable, cdr, capture or another transport.
package mi
