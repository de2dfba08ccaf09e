package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestTail: `trellis events tail` prints one line an event and resumes
// after the position given.
func TestTail(t *testing.T) {
	s, dsn := demoDB(t)
	srv, l := serve(t, s, dsn, events.WatchConfig{})
	for i := range 3 {
		writeOrg(t, s, i, false)
	}
	all, err := l.List(context.Background(), events.Query{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		_ = events.Tail(ctx, events.TailConfig{URL: srv.URL, APIKey: testKey, After: all[0].Position}, pw)
		_ = pw.Close()
	}()
	buf := make([]byte, 0, 1024)
	for strings.Count(string(buf), "\n") < 2 {
		chunk := make([]byte, 256)
		n, err := pr.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, chunk[:n]...)
	}
	lines := strings.Split(strings.TrimSpace(string(buf)), "\n")
	for i, line := range lines {
		e := all[i+1]
		want := fmt.Sprintf("%d %s organization.created %s %s", e.Position, e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), e.EntityID, e.EntityID)
		if line != want {
			t.Errorf("line %d: %q, want %q", i, line, want)
		}
	}
	// A refused stream ends Tail with the server's message.
	err = events.Tail(context.Background(), events.TailConfig{URL: srv.URL, APIKey: "wrong"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Tail with a wrong key: %v", err)
	}
}

// latencies reports the p50 and p99 of ds.
func latencies(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	if len(ds) == 0 {
		b.Fatal("no samples")
	}
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99_ms")
}

// paced runs n writes at rate per second, recording when each committed
// (keyed by organization id).
func paced(b *testing.B, s *postgres.Store, n, rate int, committed *sync.Map) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		writeOrg(b, s, 1_000_000+i, false)
		committed.Store(orgID(1_000_000+i), time.Now())
	}
}

const latencyWrites = 300 // 3 s at 100 writes/s

// BenchmarkCommitToWatch: commit → event read on /v1/watch, at 100
// writes/s (a write's commit time is when Write returned).
func BenchmarkCommitToWatch(b *testing.B) {
	s, dsn := demoDB(b)
	srv, _ := serve(b, s, dsn, events.WatchConfig{})
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		r := openWatch(b, ctx, srv.URL+"/v1/watch?kind=organization")
		var committed sync.Map
		go paced(b, s, latencyWrites, 100, &committed)
		var ds []time.Duration
		for range latencyWrites {
			e := readSSE(b, r, 1)[0]
			seen := time.Now()
			id := e.data["data"].(map[string]any)["id"].(string)
			for {
				if c, ok := committed.Load(id); ok {
					ds = append(ds, max(0, seen.Sub(c.(time.Time))))
					break
				}
				time.Sleep(100 * time.Microsecond) // read before Write returned
			}
		}
		cancel()
		latencies(b, ds)
		if _, err := s.DB().Exec("DELETE FROM organizations WHERE id LIKE 'org_t01%'"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitToWebhook: commit → delivery received by a loopback
// endpoint, at 100 writes/s.
func BenchmarkCommitToWebhook(b *testing.B) {
	s, dsn := demoDB(b)
	l := events.NewLog(s.DB())
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&e)
		mu.Lock()
		arrived[e.Data.ID] = time.Now()
		mu.Unlock()
	}))
	defer recv.Close()
	if _, err := l.CreateEndpoint(context.Background(), events.NewEndpoint{URL: recv.URL, Events: []string{"organization.created"}}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &events.Waker{}
	var wg sync.WaitGroup
	wg.Go(func() { w.Listen(ctx, dsn, nil) })
	wg.Go(func() { events.NewDeliverer(l, events.DelivererConfig{}).Run(ctx, w) })
	defer func() { cancel(); wg.Wait() }()
	for range b.N {
		var committed sync.Map
		mu.Lock()
		clear(arrived)
		mu.Unlock()
		paced(b, s, latencyWrites, 100, &committed)
		waitFor(b, 30*time.Second, "every delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(arrived) >= latencyWrites })
		var ds []time.Duration
		mu.Lock()
		for id, at := range arrived {
			c, _ := committed.Load(id)
			ds = append(ds, max(0, at.Sub(c.(time.Time))))
		}
		mu.Unlock()
		latencies(b, ds)
		if _, err := s.DB().Exec("DELETE FROM organizations WHERE id LIKE 'org_t01%'"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteEventLog: the write path with the event log on and off
// (trellis.events=off, a session setting of the writer's connections),
// one organization created per write, side by side in one run.
func BenchmarkWriteEventLog(b *testing.B) {
	_, dsn := demoDB(b)
	for _, mode := range []string{"on", "off"} {
		b.Run("events_"+mode, func(b *testing.B) {
			url := dsn
			if mode == "off" {
				sep := "?"
				if strings.Contains(url, "?") {
					sep = "&"
				}
				url += sep + "trellis.events=off"
			}
			s, err := postgres.Open(context.Background(), url, postgres.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			prefix := 2_000_000
			if mode == "off" {
				prefix = 3_000_000
			}
			b.ResetTimer()
			for i := range b.N {
				writeOrg(b, s, prefix+i, false)
			}
		})
	}
}
