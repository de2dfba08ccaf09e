package loadtest

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports (reading it would need
// sysconf, hence cgo).
const clockTicks = 100

// ProcSample is one reading of a process's counters from /proc.
type ProcSample struct {
	// RSS is the resident set size in bytes (VmRSS).
	RSS int64
	// CPU is the user plus system CPU time used so far.
	CPU time.Duration
}

// ReadProc reads the counters of process pid from /proc/<pid>/stat and
// /proc/<pid>/status; pid 0 reads the calling process. It fails where /proc
// is not available (not Linux) or the process is gone.
func ReadProc(pid int) (ProcSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcSample{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcSample{}, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcSample{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return ProcSample{}, err
	}
	return ProcSample{RSS: rss, CPU: cpu}, nil
}

// parseStatCPU returns utime + stime from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadtest: malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("loadtest: short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadtest: malformed /proc stat times")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// parseStatusRSS returns VmRSS in bytes from the text of /proc/<pid>/status.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "12345 kB"
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("loadtest: no VmRSS in /proc status")
}

// ProcUsage is a process's resource use over a window.
type ProcUsage struct {
	// RSS is the resident set size at the end of the window, in bytes.
	RSS int64
	// RSSSpread summarizes the RSS sampled during the window (Run samples
	// it every 200ms); zero when it was not sampled.
	RSSSpread RSSSpread
	// CPU is the CPU time used in the window; Cores is CPU over the
	// window's wall time (1.0 = one core busy throughout).
	CPU   time.Duration
	Cores float64
}

// Usage returns the use between two samples taken elapsed apart; its
// RSSSpread holds after's RSS alone.
func Usage(before, after ProcSample, elapsed time.Duration) ProcUsage {
	u := ProcUsage{RSS: after.RSS, RSSSpread: Spread([]int64{after.RSS}), CPU: after.CPU - before.CPU}
	if elapsed > 0 {
		u.Cores = u.CPU.Seconds() / elapsed.Seconds()
	}
	return u
}

// RSSSpread says how much a process's RSS moved over a window: whether it
// stayed within ±x % of its mean.
type RSSSpread struct {
	Samples        int
	Min, Max, Mean int64 // bytes
	// Deviation is the largest distance of a sample from Mean, in percent
	// of Mean: the x of "stable within ±x %".
	Deviation float64
}

// Spread summarizes RSS samples, in bytes; no samples give the zero value.
func Spread(samples []int64) RSSSpread {
	if len(samples) == 0 {
		return RSSSpread{}
	}
	s := RSSSpread{Samples: len(samples), Min: samples[0], Max: samples[0]}
	var sum float64
	for _, x := range samples {
		s.Min, s.Max = min(s.Min, x), max(s.Max, x)
		sum += float64(x)
	}
	mean := sum / float64(len(samples))
	s.Mean = int64(math.Round(mean))
	if mean > 0 {
		s.Deviation = max(mean-float64(s.Min), float64(s.Max)-mean) / mean * 100
	}
	return s
}
