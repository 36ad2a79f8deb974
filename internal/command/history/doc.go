// Package history implements the commands over ended calls: cdr_search
// pages through the CDR store with filters, sorted and counted by the
// database, each row of a page saying which of its recordings the spool
// still holds (a few stat calls a row, never for the whole table), and
// cdr_detail returns one call with its streams, its SIP
// messages (from memory while the call table's ladder log still holds
// them, from the spool's SIP pcap afterwards) and the recordings it still
// has in the spool. The store, the ladder log and the spool are reached
// through the small interfaces declared here; the sensor adapts
// sqlstore, calltable and spool to them.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package history
