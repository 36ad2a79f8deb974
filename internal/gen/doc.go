// Package gen writes synthetic VoIP traffic: a classic pcap file of SIP calls
// with G.711 RTP in both directions, optional RTCP, REGISTER transactions and
// capture impairments, together with a JSON ground truth describing exactly
// what the file contains. It is the test oracle for the analyser, so it builds
// every header (Ethernet, IPv4, UDP, SIP, SDP, RTP, RTCP) itself and shares no
// code with any parser.
//
// [Generate] is a streaming, single-threaded discrete-event simulation: each
// active call and registration is an entity in a heap ordered by the time of
// its next nominal event, and packets wait in a second heap ordered by capture
// time only as long as jitter or reordering can still put an earlier packet
// before them. Memory is therefore bounded by the number of concurrent calls
// and the jitter window, not by the number of packets. The same [Config]
// (including Seed and Start) always produces byte-identical output.
//
// # Payloads
//
// Payload "tone" plays a 400 Hz (caller) and a 1000 Hz (callee) sine,
// "speech" a synthetic formant voice per side. [Config.Audio] replaces
// either with recorded 8 kHz PCM ([LoadAudio] reads WAV or raw files, the
// -audio-caller/-audio-callee flags). With audio on both sides the two
// directions of a call read their loops at the same conversation time, so a
// two-sided recording with turn-taking stays a conversation;
// scripts/make-demo.sh builds the bundled demo capture this way, merging
// several runs whose addresses [Config.AddrOffset] keeps apart.
//
// # Impairments
//
// Loss, Duplicates, Reorder and Jitter apply to RTP only, at "capture": a lost
// packet is not written, a duplicate is written twice in a row, a reordered
// packet is written right after the next written packet of its stream, and
// jitter delays a packet's capture time by up to Jitter without changing the
// order within its stream. Each direction draws its impairments from its own
// random source. The first and the last packet of every stream are never
// lost or reordered, and no packet is written after the last one, so an
// analyser sees each stream start with its first and end with its highest
// sequence number, and "packets expected" is exactly sent. SIP and RTCP are
// never impaired.
//
// # Encapsulations
//
// [Config.Encap] (the -encap flag) wraps every frame as a sensor behind a
// tunnel or a tagged link captures it: one of [Encaps] (802.1Q, QinQ,
// PPPoE, MPLS, IPIP, IPv4-in-IPv6, GRE, GRE-bridged Ethernet, ERSPAN I, II
// and III, VXLAN, TZSP, L2TPv2), with tunnel endpoints 192.0.2.1 →
// 192.0.2.2 (2001:db8::1 → 2001:db8::2 for IPv6). The inner frames, and so
// the ground truth, are unchanged.
//
// # Ground truth
//
// The truth is one JSON object:
//
//	{
//	  "calls": [                      // in order of start (INVITE) time
//	    {
//	      "callid":        string,    // Call-ID header value
//	      "caller":        string,    // user part of From, e.g. "+420212345678"
//	      "called":        string,    // user part of To and the Request-URI
//	      "caller_name":   string,    // From display name, unquoted/unescaped UTF-8 ("" if none)
//	      "caller_ip":     string,    // caller's signalling and media address
//	      "callee_ip":     string,    // callee's signalling and media address
//	      "start":         string,    // RFC 3339 nano time of the first INVITE packet
//	      "answer":        string|null, // time of the 200 OK to INVITE; null unless answered
//	      "end":           string,    // time of the last SIP packet of the call
//	      "last_sip_code": int,       // final response to the INVITE: 200, 404, 486, 487, 503
//	      "hangup_by":     "caller"|"callee"|"none", // who sent BYE (or CANCEL: caller); none when rejected
//	      "state":         "answered"|"failed"|"cancelled",
//	      "codec":         "PCMU"|"PCMA",
//	      "streams": [                // empty unless answered
//	        {
//	          "direction":    "caller_to_callee"|"callee_to_caller",
//	          "src":          "ip:port",
//	          "dst":          "ip:port",
//	          "ssrc":         int,     // uint32
//	          "payload_type": int,     // 0 (PCMU) or 8 (PCMA)
//	          "sent":         int,     // packets the sender sent
//	          "written":      int,     // packets in the pcap, duplicates included
//	          "lost":         int,     // sent packets not in the pcap
//	          "duplicates":   int,     // extra copies in the pcap
//	          "reordered":    int,     // packets written after their successor
//	          "first_seq":    int,     // sequence number of the first packet
//	          "last_seq":     int      // sequence number of the last packet (after 16-bit wrap)
//	        }
//	      ]
//	    }
//	  ],
//	  "registrations": [              // in order of the first REGISTER
//	    {
//	      "user":     string,         // AOR user part
//	      "contact":  string,         // Contact URI
//	      "state":    "OK"|"Failed"|"Unregister",
//	      "expires":  int,            // granted expiry in seconds (0 for Failed and Unregister)
//	      "attempts": int             // REGISTER requests sent (2 after a 401 challenge)
//	    }
//	  ],
//	  "packets": int                  // pcap records written (IP fragments count separately)
//	}
//
// written = sent - lost + duplicates holds for every stream.
//
// Allowed imports: internal/g711 and the standard library. Tests also use
// gopacket (pcapgo, layers, ip4defrag) and tshark as independent readers.
package gen
