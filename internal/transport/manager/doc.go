// Package manager implements the VoIPmonitor-compatible manager
// transport: the one-command-per-connection line protocol on TCP
// (managerip:managerport, default 127.0.0.1:5029) and unix sockets, its
// optional AES-CBC framing ("aes-128-cbc:<ciphertext>:sea" requests and
// "aes:"-prefixed replies), the byte-exact legacy renderings of command
// results (renderers keyed by command name), and a [Client].
//
// The [Server] is a pure adapter: it frames a request ([Framer]), decrypts
// it, builds a [command.Request], runs it through the [command.Registry]
// and renders the typed [command.Result]. Commands never see the socket.
//
// Allowed imports: command, event and the standard library. Never
// calltable, cdr, capture or another transport.
package manager
