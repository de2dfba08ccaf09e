// Package progress shows how a long-running stage (a cold load, an import,
// a bundle build) advances: nothing when it ends within a few seconds, then
// a bar redrawn in place when the output is a terminal, or otherwise one log
// line every few seconds.
//
// It is its own ~100 lines rather than github.com/schollz/progressbar:
// that library draws the bar well, but it has neither the quiet start (it
// shows a bar from the first call) nor the log lines for a non-terminal,
// which are most of what Trellis needs, and it brings five modules with it.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// A Stage reports the progress of one running stage until Done. Add, Set
// and Report are safe for concurrent use and cost an atomic store or two;
// everything is written by one goroutine of the Stage's own.
type Stage struct {
	count   atomic.Int64
	total   atomic.Int64
	name    string
	attrs   []any
	w       io.Writer
	log     *slog.Logger
	bar     bool
	start   time.Time
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	width   int // the length of the bar line last drawn, to blank what a shorter one leaves; the Stage's goroutine owns it
}

// config holds the timings and the terminal test, which tests replace.
type config struct {
	after    time.Duration // how long a stage runs before it is shown
	logEvery time.Duration // how often a log line is written
	redraw   time.Duration // how often the bar is redrawn
	terminal func(io.Writer) bool
}

var defaults = config{after: 2 * time.Second, logEvery: 3 * time.Second, redraw: 200 * time.Millisecond, terminal: Terminal}

// barWidth is how many cells the bar itself takes.
const barWidth = 30

// Start begins reporting the stage called name, of total units (0 or less
// when the total is unknown: there is no bar then, only the count, and not
// even that while it is 0 — a stage that counts nothing shows its time). If the
// stage lasts longer than 2 s, it is shown: when w is a terminal, as one
// line redrawn with \r — name, bar, count/total, percent, elapsed time;
// otherwise, every 3 s, as log.Info(name, attrs..., "done", count, "total",
// total, "percent", …, "elapsed", …), and once more at Done with the
// message name+": done". attrs go to the log lines only. w may be nil (log
// lines only) and so may log (nothing logged). The caller must call Done.
func Start(w io.Writer, log *slog.Logger, name string, total int64, attrs ...any) *Stage {
	return start(defaults, w, log, name, total, attrs)
}

func start(c config, w io.Writer, log *slog.Logger, name string, total int64, attrs []any) *Stage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stage{
		name: name, attrs: attrs, w: w, log: log,
		bar:   w != nil && c.terminal(w),
		start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.total.Store(total)
	go s.run(c)
	return s
}

// Terminal reports whether w is an *os.File open on a terminal, where a
// Stage draws a bar: a caller may then quiet log lines that would break
// into the bar's line.
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add counts n more units done.
func (s *Stage) Add(n int64) { s.count.Add(n) }

// Set sets the count of units done to n.
func (s *Stage) Set(n int64) { s.count.Store(n) }

// Report sets the count done and the total (0 or less: unknown), for a
// stage whose total is known only once it runs; it fits a callback such as
// postgres.ImportOptions.Progress.
func (s *Stage) Report(done, total int64) { s.total.Store(total); s.count.Store(done) }

// Done ends the stage: if it was shown, it draws the bar a last time and
// ends its line, or logs that the stage is done. It returns once nothing
// more is written. Calling Done again does nothing.
func (s *Stage) Done() {
	s.once.Do(func() { close(s.stop) })
	<-s.stopped
}

func (s *Stage) run(c config) {
	defer close(s.stopped)
	wait := time.NewTimer(c.after)
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-s.stop:
		return // done before anyone waited for it
	}
	every := c.logEvery
	if s.bar {
		every = c.redraw
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.show(false)
		select {
		case <-tick.C:
		case <-s.stop:
			s.show(true)
			return
		}
	}
}

// show draws the bar or logs a line; last is for the one Done causes.
func (s *Stage) show(last bool) {
	n, total, elapsed := s.count.Load(), s.total.Load(), time.Since(s.start).Round(time.Second)
	if !s.bar {
		msg := s.name
		if last {
			msg += ": done"
		}
		attrs := append([]any(nil), s.attrs...)
		switch {
		case total > 0:
			attrs = append(attrs, "done", n, "total", total, "percent", percent(n, total))
		case n > 0:
			attrs = append(attrs, "done", n)
		}
		s.log.Info(msg, append(attrs, "elapsed", elapsed.String())...)
		return
	}
	var b strings.Builder
	b.WriteString(s.name)
	if total > 0 {
		filled := barWidth * percent(n, total) / 100
		fmt.Fprintf(&b, " [%s%s] %d/%d %3d%%", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), n, total, percent(n, total))
	} else if n > 0 {
		fmt.Fprintf(&b, " %d", n)
	}
	fmt.Fprintf(&b, " %s", elapsed)
	line := b.String()
	pad := max(s.width-len(line), 0)
	s.width = len(line)
	end := ""
	if last {
		end = "\n"
	}
	// A failed write to the terminal loses a redraw, nothing more.
	_, _ = io.WriteString(s.w, "\r"+line+strings.Repeat(" ", pad)+end)
}

// percent is n of total in percent, within [0, 100]: a count may pass an
// estimated total.
func percent(n, total int64) int {
	return int(min(max(n*100/total, 0), 100))
}

// Stages reports a run of stages, one after the other, each as Start
// would: for a task that names the stage it is in as it goes (such as
// bundle.Options.Progress). It is for one goroutine.
type Stages struct {
	c     config
	w     io.Writer
	log   *slog.Logger
	attrs []any
	name  string
	cur   *Stage
}

// NewStages returns Stages writing to w and log, as Start does.
func NewStages(w io.Writer, log *slog.Logger, attrs ...any) *Stages {
	return &Stages{c: defaults, w: w, log: log, attrs: attrs}
}

// Report sets the count done and the total of the stage called name,
// first ending the stage before it if that one had another name.
func (s *Stages) Report(name string, done, total int64) {
	if s.cur == nil || name != s.name {
		s.Done()
		s.name, s.cur = name, start(s.c, s.w, s.log, name, total, s.attrs)
	}
	s.cur.Report(done, total)
}

// Done ends the current stage, if any.
func (s *Stages) Done() {
	if s.cur != nil {
		s.cur.Done()
		s.cur = nil
	}
}
