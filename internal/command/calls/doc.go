// Package calls implements the active-call commands: listcalls,
// totalcalls, active_call_info, calls_in_progress and call_quality. It reads calls
// through the small [Source] interface declared here; the sensor adapts
// the call table to it, so this package never imports calltable.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package calls
