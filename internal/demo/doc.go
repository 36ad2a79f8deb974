// Package demo bundles the capture that 'voipsensor demo' replays: about
// 90 s of SIP calls with real-sounding speech in both directions, gzipped
// into demo.pcap.gz (1.5 MB) and embedded in the binary.
//
// # How it was made
//
// scripts/make-demo.sh remakes the file (it needs espeak-ng, sox, mergecap
// and Go; the output is byte-for-byte reproducible):
//
//   - espeak-ng speaks three two-sided conversations, in English
//     (en-us+m3 calling en+f3), German (de+m1, de+f2) and Czech (cs+m2,
//     cs+f1). sox resamples each line to 8 kHz mono 16-bit PCM through a
//     300-3400 Hz telephone band-pass and builds one track per direction:
//     while one side speaks, the other side's track is silent for as long,
//     then both pause for 0.3-0.8 s.
//   - 'voipsensor gen' (internal/gen with -audio-caller/-audio-callee)
//     encodes the tracks to G.711 in eight runs of one call each, with fixed
//     start times and separate address blocks (-addr-offset), and mergecap
//     interleaves them. The result holds 8 calls: 6 answered (3 PCMU in
//     English, 2 PCMA in German, 1 PCMA in Czech with 3% loss and 60 ms
//     jitter), one rejected (404) and one cancelled while ringing (487);
//     RTCP in every answered call; 4 registrations (one refused with 403,
//     one unregistered, two bound). 3 to 4 calls overlap from 12 s to 55 s.
//
// The test checks these counts and that both directions of every answered
// call carry speech, taking turns.
//
// Allowed imports: internal/capture and the standard library.
package demo
