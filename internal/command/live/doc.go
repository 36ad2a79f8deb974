// Package live implements live listening to calls in progress, the
// commands VoIPmonitor's ChunkPlayer uses: listen, readaudio and
// listen_stop (manager API section 3D), plus readaudio_stereo for players
// that keep the two sides apart and sip_ladder for a call's SIP messages.
//
// A [Registry] holds one session per listened call. Each session attaches
// a [Tap] to the call through the small [Calls] interface; the tap copies
// RTP payloads into a bounded per-side ring and returns (it runs on the
// packet path with the call table locked). A goroutine per session decodes
// both sides, each with its own codec (G.711 µ-law or A-law), mixes them
// and appends the result to every listener's bounded buffer. Drops are
// counted at both stages. Listeners idle for 10 s are dropped; nothing is
// decoded or buffered for calls nobody listens to.
//
// Allowed imports: command, g711 and the standard library. It never
// imports calltable or a transport; the sensor adapts the call table to
// [Calls] and [Ladders].
package live
