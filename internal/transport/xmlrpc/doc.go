// Package xmlrpc implements the XML-RPC transport of the management
// interface, as OpenSIPS mi_xmlrpc serves it: POST /RPC2, methodName is
// the command name, a first <struct> param gives named parameters and
// other params are positional; results map object→struct, array→array,
// string→string, integers→int (i8 beyond 32 bits, where OpenSIPS
// saturates), other numbers→double, booleans→boolean, null→nil. Errors
// are <fault>s with OpenSIPS's fixed texts for the JSON-RPC codes (the
// sign of 32700 fixed).
//
// The codec ([ParseCall], [AppendResponse], [AppendFault]) is separate
// from the [Responder], which answers a request body by running its call
// through a small [Backend] (the MI dispatcher, adapted by the sensor).
// HTTP is the MI HTTP listener's: the sensor hands it a Responder for
// POST /RPC2, so this package never imports another transport.
//
// Allowed imports: command, event and the standard library.
package xmlrpc
