// Package server implements the VoIPmonitor server API (TCP 60024), the
// cloud-router style protocol that joins many sensors ("probes") to one
// central server:
//
//   - the 40-byte block frame ([AppendBlock], [ReadBlock]) carrying plain,
//     RSA (PKCS#1 v1.5) or AES-128-CBC payloads;
//   - the [Server]: its listener answers manager_command "active", relays
//     gui_command requests to the named sensor and back, and keeps the
//     sensors' service connections alive with ping/pong;
//   - the [Probe]: the sensor side, which holds a service connection to the
//     first reachable server of a failover list, runs the relayed commands
//     through a caller-supplied executor and answers over response
//     connections;
//   - [Active] and [GUICommand], small clients for tools and tests;
//   - [Register]: registry commands on the server (listcalls_all,
//     active_sensors) that fan out to every connected sensor, so every
//     management transport can show the aggregated view.
//
// Facts come from shared/specs/voipmonitor-manager.md sections 2.2 and 7.
//
// Where this server departs from the legacy one, for safety:
//
//   - one service RSA key pair, made at Listen and renewed hourly, instead
//     of a 4096-bit key generated per connection before any password is
//     checked;
//   - gui_command and manager_command need authority: loopback, the
//     manager key's wrapping, or "password" in the JSON (the GUI's own
//     requests carry no credential; see authorize in auth.go);
//   - manager_file is off the no-AES list;
//   - failed passwords are answered after a per-address delay;
//   - sessions run on the transport session kit (conn): caps, deadlines,
//     accept backoff, panic containment and close reasons.
//
// Allowed imports: command, event, the session kit transport/conn and the
// standard library. Never calltable, cdr, capture or another transport
// (the manager AES key comes in through the [Cipher] interface).
package server
