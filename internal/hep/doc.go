// Package hep owns the HEP wire format (Homer Encapsulation Protocol, also
// called EEP): [Packet] decodes HEPv3 and the older HEPv1/v2 layouts and
// encodes HEPv3, [Collector] receives packets on UDP and TCP and hands them
// to a callback, and [Sender] mirrors packets to a remote collector (Homer,
// heplify-server, another voipsensor) through a bounded queue.
//
// The decoder fills a caller-owned Packet that aliases its input and
// allocates nothing; the sender's enqueue path never blocks and never
// touches a socket.
//
// Allowed imports: none of the module's packages (standard library and
// golang.org/x/net only); the sensor turns a Packet into a decode.Datagram.
package hep
