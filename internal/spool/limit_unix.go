//go:build unix

package spool

import "syscall"

// openFileLimit returns the process's soft open-file limit (Go raises it
// to the hard limit at start), or 0 when unknown.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
