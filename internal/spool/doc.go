// Package spool records calls to the spool directory and keeps it within
// its limits, in VoIPmonitor's layout:
//
//	spooldir/YYYY-MM-DD/HH/MM/SIP/<callid>.pcap   a call's SIP messages
//	spooldir/YYYY-MM-DD/HH/MM/RTP/<callid>.pcap   its RTP and RTCP
//	spooldir/YYYY-MM-DD/HH/MM/REG/<id>.pcap       a REGISTER transaction chain
//	spooldir/YYYY-MM-DD/HH/MM/AUDIO/<callid>.wav  its audio (saveaudio = wav)
//
// The minute is the local time of the call's first packet; <callid> is the
// Call-ID with every byte other than A-Z, a-z, 0-9, ':', '-', '.' and '@'
// replaced by '_' (the sniffer's fbasename rule).
//
// A [Recorder] is the call table's [calltable.Recorder]: on the packet path
// it only copies the frame into a bounded buffer (a full buffer drops the
// frame and counts it); one writer goroutine ([Recorder.Run]) turns the
// buffer into pcap records, batched per file, and with saveaudio decodes
// the calls' G.711 into stereo WAVs as they go (audio.go). A [Cleaner] deletes the
// oldest minutes when the spool is over maxpoolsize and friends. [Dir]
// reads the spool's files for the retrieval commands without letting a
// name leave it.
//
// Allowed imports: calltable, decode and capture (the frame and datagram
// types the recorder is handed); for saveaudio the leaves sip, sdp and rtp
// (a call's sides and codecs, read as the call table reads them) and
// g711; and the standard library.
package spool
