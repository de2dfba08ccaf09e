package token_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/token"
)

// keyEvents records what a Verifier reports about its key fetches.
type keyEvents struct {
	mu        sync.Mutex
	successes []time.Time
	failures  []error
	logs      []string // "LEVEL message error=…"
}

func (k *keyEvents) ObserveKeyRefresh(at time.Time, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.failures = append(k.failures, err)
	} else {
		k.successes = append(k.successes, at)
	}
}

// handler is a slog.Handler that appends to k.logs.
type handler struct{ k *keyEvents }

func (h handler) Enabled(context.Context, slog.Level) bool { return true }
func (h handler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h handler) WithGroup(string) slog.Handler            { return h }
func (h handler) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			line += " error=" + a.Value.String()
		}
		return true
	})
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	h.k.logs = append(h.k.logs, line)
	return nil
}

// downTransport fails every request while down is set, as an unreachable
// server does.
type downTransport struct{ down atomic.Bool }

func (d *downTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.down.Load() {
		return nil, errors.New("dial tcp: connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestKeyRefreshTrouble: the key server goes away, answers 503, serves
// garbage, an empty set and unusable keys, then recovers. Tokens keep
// verifying with the last good keys throughout; every failed fetch is
// counted; exactly one WARN (when failing starts, with the reason) and one
// INFO (when it ends) are logged; the success time moves only on success.
func TestKeyRefreshTrouble(t *testing.T) {
	a := signer(t, "trouble", token.RS256, "a")
	srv := newJWKSServer(t, a.JWKS())
	clk := newClock(t0)
	tr := &downTransport{}
	ev := &keyEvents{}
	v := newVerifier(t, token.Config{
		JWKSURL: srv.URL, Issuer: issuer, Now: clk.Now, CacheSize: -1,
		HTTPClient: &http.Client{Transport: tr, Timeout: 5 * time.Second},
		Logger:     slog.New(handler{ev}), KeyObserver: ev,
	})
	ctx := context.Background()
	tok := sign(t, a, validClaims(map[string]any{"exp": t0.Add(24 * time.Hour).Unix()}))
	verify := func(step string) {
		t.Helper()
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("%s: Verify = %v; the last good keys must still verify", step, err)
		}
	}
	state := func() (successes []time.Time, failures int, logs []string) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return append([]time.Time(nil), ev.successes...), len(ev.failures), append([]string(nil), ev.logs...)
	}

	if s, f, l := state(); len(s) != 1 || !s[0].Equal(t0) || f != 0 || len(l) != 0 {
		t.Fatalf("after New: successes %v, failures %d, logs %q; want [t0], 0, none", s, f, l)
	}
	steps := []struct {
		name  string
		setup func()
	}{
		{"unreachable", func() { tr.down.Store(true); clk.Add(16 * time.Minute) }},
		{"503", func() { tr.down.Store(false); srv.Fail(http.StatusServiceUnavailable); clk.Add(time.Minute) }},
		{"not JSON", func() { srv.Serve([]byte("<html>oops</html>")); clk.Add(time.Minute) }},
		{"empty key set", func() { srv.Serve([]byte(`{"keys": []}`)); clk.Add(time.Minute) }},
		{"no usable key", func() {
			srv.Serve([]byte(`{"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"}]}`))
			clk.Add(time.Minute)
		}},
	}
	for i, st := range steps {
		st.setup()
		verify(st.name)
		if _, f, _ := state(); f != i+1 {
			t.Fatalf("%s: %d failures counted, want %d", st.name, f, i+1)
		}
	}
	if s, _, l := state(); len(s) != 1 || len(l) != 1 || !strings.HasPrefix(l[0], "WARN ") || !strings.Contains(l[0], "connection refused") {
		t.Fatalf("while failing: successes %v, logs %q; want only the first success and one WARN with the reason", s, l)
	}

	srv.Serve(a.JWKS())
	clk.Add(time.Minute)
	recovered := clk.Now()
	verify("recovered")
	clk.Add(16 * time.Minute)
	verify("periodic refresh")
	s, f, l := state()
	if len(s) != 3 || !s[1].Equal(recovered) || !s[2].Equal(clk.Now()) {
		t.Errorf("successes %v, want t0, %v, %v", s, recovered, clk.Now())
	}
	if f != len(steps) {
		t.Errorf("%d failures counted, want %d", f, len(steps))
	}
	if len(l) != 2 || !strings.HasPrefix(l[1], "INFO ") {
		t.Errorf("logs %q, want one WARN and then one INFO", l)
	}
}

// TestKeyRefreshFailureOfNew: New's own failed fetch fails New and is
// counted, without a WARN (the error is New's to return).
func TestKeyRefreshFailureOfNew(t *testing.T) {
	srv := newJWKSServer(t, []byte(`{"keys": []}`))
	ev := &keyEvents{}
	_, err := token.New(context.Background(), token.Config{JWKSURL: srv.URL, Issuer: issuer, Logger: slog.New(handler{ev}), KeyObserver: ev})
	if err == nil {
		t.Fatal("New succeeded on an empty key set")
	}
	if len(ev.failures) != 1 || len(ev.successes) != 0 || len(ev.logs) != 0 {
		t.Errorf("failures %v, successes %v, logs %q; want one failure and no log", ev.failures, ev.successes, ev.logs)
	}
}
