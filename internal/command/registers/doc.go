// Package registers implements the registration commands listregisters
// and totalregisters over the small [Source] interface declared here; the
// sensor adapts the call table to it, so this package never imports
// calltable.
//
// Allowed imports: command and the standard library. It never imports a
// transport.
package registers
