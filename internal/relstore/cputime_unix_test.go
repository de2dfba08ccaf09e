//go:build unix

package relstore_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, user and system, its
// garbage collector's included: on a shared machine it measures the work a
// benchmark does where wall time measures the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
