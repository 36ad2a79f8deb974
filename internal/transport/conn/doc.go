// Package conn is the session kit every management transport is built on:
// the accept loop, the limits and deadlines that keep a hostile or slow
// client from costing more than its share, panic containment, the reasons
// a session ended (with counters), the bounded outbound queue with a
// single writer, bounded worker pools for datagram and FIFO requests, and
// unix sockets that never take over somebody else's path.
//
// A transport is then a framer, a codec, a renderer and a [Handler]; this
// package owns everything between the listener and the handler:
//
//   - [Listener.Serve] accepts with net/http's backoff on temporary errors
//     (EMFILE, ENFILE: 5 ms doubling to 1 s), so running out of file
//     descriptors pauses a listener instead of stopping it for good.
//   - [Limits] caps sessions per listener, unauthenticated sessions per
//     listener and per remote address, and the time to the first complete
//     request; a refused connection is closed before a byte is written.
//   - A panic in a handler is recovered, its stack logged once per
//     listener, the session closed with [ClosedPanic] and counted.
//   - On shutdown the listener stops accepting, blocked reads are woken,
//     sessions get [Limits.Drain] to finish writing, then are closed.
//
// Allowed imports: the standard library only (STYLE.md §2: transports may
// import it; it imports no transport).
package conn
