// Package web is the browser console of the sensor: an HTTP server on its
// own port (web_bind:web_port, 127.0.0.1:8090 by default) serving pages
// embedded in the binary (no CDN, no JavaScript library: charts are SVG
// drawn by app.js) and a small JSON API built on the command registry:
// active calls (listcalls, with each call's state from calls_in_progress),
// a call's details (active_call_info, call_quality for its streams and
// their MOS intervals, sip_ladder), registrations (listregisters), the
// last hour per minute (quality_history), live listening as a chunked
// stream of stereo PCM frames (listen, readaudio, listen_stop), a
// ChunkPlayer-compatible player API (/api/chunk/…), and the history of
// ended calls: /api/cdr (cdr_search with the query string's filters),
// /api/cdr/detail (cdr_detail: the CDR, final quality, the whole SIP
// ladder with each message's text, the recordings) and /api/file (a
// recording of the spool through file_exists and getfile).
//
// On a non-loopback address a bearer token (header, cookie or ?token=) or
// HTTP basic auth is required; [New] refuses to start without one.
//
// Allowed imports: command, event and the standard library. It never
// imports calltable, cdr, capture or another transport.
package web
