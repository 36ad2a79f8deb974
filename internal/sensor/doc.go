// Package sensor owns construction, goroutine lifecycle and shutdown order:
// it wires capture → decode → calltable → sinks, for offline analysis
// ([Analyze]) and for the daemon.
//
// It is the only package that imports everything; only cmd/voipsensor and
// tests import it.
package sensor
