// Package event owns the event value types that the call table publishes —
// a call appeared, rang, was answered, held, ended; a DTMF digit; a
// registration changed state; an RTCP report; a periodic quality sample —
// and the [Bus] that fans them out to subscribers with bounded queues.
// Transports (AMI's Newchannel, Hangup, …) render these; they never reach
// into the call table.
//
// Allowed imports: the standard library only (a leaf).
package event
