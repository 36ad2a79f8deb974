// Package command owns the transport-neutral command model: the [Registry]
// of named, documented, permission-tagged [Command] values, the [Request]
// a transport builds from its wire input, the typed [Result] values a
// command returns, the [Perm] bitmask and the error vocabulary ([ErrNotFound],
// [ErrPermission], [ParamError], [ErrUnavailable], [ErrNoEntry]).
//
// Commands never see bytes or sockets; every transport (manager, AMI,
// JSON-RPC, XML-RPC, web) is an adapter that turns its wire request into a
// [Request], calls [Registry.Run] and renders the [Result].
//
// Allowed imports: the standard library only. This package is a leaf and
// never imports its command groups (command/calls, command/registers,
// command/system) or any transport.
package command
