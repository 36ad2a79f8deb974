//go:build !unix

package spool

// openFileLimit is unknown outside unix.
func openFileLimit() int { return 0 }
