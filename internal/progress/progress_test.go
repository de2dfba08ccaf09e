package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// syncBuffer is a bytes.Buffer the Stage's goroutine may write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fast shows a stage at once and redraws or logs every millisecond;
// terminal says whether the output counts as a terminal.
func fast(terminal bool) config {
	return config{after: time.Millisecond, logEvery: time.Millisecond, redraw: time.Millisecond,
		terminal: func(io.Writer) bool { return terminal }}
}

// startTest starts a stage with c, writing to w and logging JSON to logs.
func startTest(c config, total int64) (s *Stage, w, logs *syncBuffer) {
	w, logs = &syncBuffer{}, &syncBuffer{}
	s = start(c, w, slog.New(slog.NewJSONHandler(logs, nil)), "import", total, []any{"table", "resources"})
	return s, w, logs
}

// waitFor fails the test if cond does not become true within 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// logLines decodes the JSON log lines of logs.
func logLines(t testing.TB, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		delete(m, "time")
		lines = append(lines, m)
	}
	return lines
}

// lastLine is what a terminal shows of bar output on its last line: each
// \r takes the cursor back to the start of the line, and what follows
// overwrites what was there. Trailing blanks and a final newline are
// dropped.
func lastLine(out string) string {
	out = strings.TrimSuffix(out, "\n")
	var line []byte
	col := 0
	for _, c := range []byte(out) {
		switch {
		case c == '\r':
			col = 0
		case c == '\n':
			line, col = line[:0], 0
		case col < len(line):
			line[col] = c
			col++
		default:
			line = append(line, c)
			col++
		}
	}
	return strings.TrimRight(string(line), " ")
}

func TestQuickStageShowsNothing(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		c := fast(terminal)
		c.after = time.Hour
		s, w, logs := startTest(c, 10)
		s.Add(10)
		s.Done()
		if w.String() != "" || logs.String() != "" {
			t.Errorf("terminal %v: a quick stage wrote %q and logged %q, want nothing", terminal, w, logs)
		}
	}
}

func TestSlowStageLogs(t *testing.T) {
	s, w, logs := startTest(fast(false), 200)
	s.Set(50)
	waitFor(t, "two log lines", func() bool { return strings.Count(logs.String(), "\n") >= 2 })
	s.Set(200)
	s.Done()
	if w.String() != "" {
		t.Errorf("wrote %q to a non-terminal, want only log lines", w)
	}
	lines := logLines(t, logs.String())
	for _, l := range lines {
		if _, ok := l["elapsed"].(string); !ok {
			t.Errorf("log line %v has no elapsed time", l)
		}
		delete(l, "elapsed")
	}
	first := map[string]any{"level": "INFO", "msg": "import", "table": "resources", "done": 50.0, "total": 200.0, "percent": 25.0}
	if diff := cmp.Diff(lines[0], first); diff != "" {
		t.Errorf("first log line (-got +want):\n%s", diff)
	}
	last := map[string]any{"level": "INFO", "msg": "import: done", "table": "resources", "done": 200.0, "total": 200.0, "percent": 100.0}
	if diff := cmp.Diff(lines[len(lines)-1], last); diff != "" {
		t.Errorf("last log line (-got +want):\n%s", diff)
	}
	for _, l := range lines[:len(lines)-1] {
		if l["msg"] != "import" {
			t.Errorf("log line %v before Done, want message import", l)
		}
	}
}

func TestSlowStageLogsWithoutTotal(t *testing.T) {
	s, _, logs := startTest(fast(false), 0)
	s.Add(7)
	waitFor(t, "a log line", func() bool { return strings.Contains(logs.String(), "\n") })
	s.Done()
	for _, l := range logLines(t, logs.String()) {
		if _, ok := l["total"]; ok {
			t.Errorf("log line %v has a total; the stage has none", l)
		}
		if l["done"] != 7.0 {
			t.Errorf("log line %v, want done 7", l)
		}
	}
}

func TestBarOnTerminal(t *testing.T) {
	tests := []struct {
		name         string
		total        int64
		during, last string // what the line starts with while at 50 and after Done
	}{
		{"known total", 200,
			"import [=======                       ] 50/200  25% ",
			"import [==============================] 200/200 100% "},
		{"unknown total", 0, "import 50 ", "import 200 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, w, logs := startTest(fast(true), tc.total)
			s.Set(50)
			waitFor(t, "the bar at 50", func() bool { return strings.HasPrefix(lastLine(w.String()), tc.during) })
			s.Set(200)
			s.Done()
			out := w.String()
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Errorf("bar output %q, want one line ending with a newline", out)
			}
			if got := lastLine(out); !strings.HasPrefix(got, tc.last) {
				t.Errorf("final bar %q, want it to start with %q", got, tc.last)
			}
			if logs.String() != "" {
				t.Errorf("logged %q on a terminal, want only the bar", logs)
			}
		})
	}
}

// TestBarBlanksShorterLine: a redraw shorter than the line before it
// (a count set back) leaves none of the old line visible.
func TestBarBlanksShorterLine(t *testing.T) {
	s, w, _ := startTest(fast(true), 0)
	s.Set(123456789)
	waitFor(t, "the long line", func() bool { return strings.Contains(w.String(), "123456789") })
	s.Set(1)
	s.Done()
	if got, want := lastLine(w.String()), `^import 1 [0-9ms]+$`; !regexp.MustCompile(want).MatchString(got) {
		t.Errorf("the terminal shows %q, want %s", got, want)
	}
}

func TestDoneIsIdempotent(t *testing.T) {
	s, w, _ := startTest(fast(true), 10)
	waitFor(t, "the bar", func() bool { return w.String() != "" })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(s.Done)
	}
	wg.Wait()
	s.Done()
	if n := strings.Count(w.String(), "\n"); n != 1 {
		t.Errorf("%d newlines after Done called 5 times, want 1", n)
	}
}

// TestConcurrentAdd: Adds from several goroutines while the bar is redrawn
// are all counted (run with -race).
func TestConcurrentAdd(t *testing.T) {
	const goroutines, adds = 8, 1000
	s, w, _ := startTest(fast(true), goroutines*adds)
	waitFor(t, "the bar", func() bool { return w.String() != "" })
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range adds {
				s.Add(1)
			}
		})
	}
	wg.Wait()
	s.Done()
	if got, want := lastLine(w.String()), "8000/8000 100%"; !strings.Contains(got, want) {
		t.Errorf("final bar %q, want %q", got, want)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]io.Writer{"buffer": &bytes.Buffer{}, "regular file": f} {
		if Terminal(w) {
			t.Errorf("Terminal(%s) = true, want false", name)
		}
	}
}

// TestReportSetsTotal: a stage started without a total shows a bar once
// Report gives one.
func TestReportSetsTotal(t *testing.T) {
	s, w, _ := startTest(fast(true), 0)
	s.Report(50, 200)
	waitFor(t, "the bar at 50/200", func() bool { return strings.Contains(lastLine(w.String()), "] 50/200  25% ") })
	s.Done()
}

// TestStages: each named stage is reported as its own, ended before the
// next begins, and a stage that counts nothing logs no count.
func TestStages(t *testing.T) {
	logs := &syncBuffer{}
	s := NewStages(nil, slog.New(slog.NewJSONHandler(logs, nil)), "file", "x.yaml")
	s.c = fast(false)
	s.Report("reading", 0, 0)
	waitFor(t, "a reading line", func() bool { return strings.Contains(logs.String(), `"reading"`) })
	s.Report("importing", 5, 10)
	waitFor(t, "an importing line", func() bool { return strings.Contains(logs.String(), `"importing"`) })
	s.Report("importing", 10, 10)
	s.Done()
	s.Done() // again: nothing
	var msgs []string
	for _, l := range logLines(t, logs.String()) {
		msg := l["msg"].(string)
		if len(msgs) == 0 || msgs[len(msgs)-1] != msg {
			msgs = append(msgs, msg)
		}
		if l["file"] != "x.yaml" {
			t.Errorf("log line %v without the attributes", l)
		}
		if strings.HasPrefix(msg, "reading") {
			if _, ok := l["done"]; ok {
				t.Errorf("log line %v counts a stage that counts nothing", l)
			}
		}
		if msg == "importing: done" && (l["done"] != 10.0 || l["total"] != 10.0) {
			t.Errorf("last line %v, want done 10 of 10", l)
		}
	}
	if diff := cmp.Diff(msgs, []string{"reading", "reading: done", "importing", "importing: done"}); diff != "" {
		t.Errorf("stages (-got +want):\n%s", diff)
	}
}
