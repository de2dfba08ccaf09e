package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testKey = "sk_test_events"

// demoDB returns a migrated store holding the demo dataset on a fresh
// database, and its URL. The import's events are removed, so that a test
// sees only the events of its own writes.
func demoDB(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	return demoDBAt(t, pgtest.URL(t))
}

func demoDBAt(t testing.TB, dsn string) (*postgres.Store, string) {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	return s, dsn
}

// writeOrg creates (or, with del, deletes) organization orgID(i): one
// event, organization.created or organization.deleted.
func writeOrg(t testing.TB, s *postgres.Store, i int, del bool) int64 {
	t.Helper()
	op := model.OpUpsert
	if del {
		op = model.OpDelete
	}
	changes := orgChange(i)
	changes[0].Op = op
	rev, err := s.Write(context.Background(), changes)
	if err != nil {
		t.Fatalf("write %s: %v", orgID(i), err)
	}
	return rev
}

// orgChange creates organization orgID(i).
func orgChange(i int) []model.Change {
	return []model.Change{{Op: model.OpUpsert, Organization: &model.Organization{ID: orgID(i), Name: fmt.Sprintf("Org %d", i)}}}
}

// orgID is the id of the i-th organization a test writes.
func orgID(i int) string { return fmt.Sprintf("org_t%05d", i) }

// serve serves the events handler of s with a Waker listening on dsn.
func serve(t testing.TB, s *postgres.Store, dsn string, watch events.WatchConfig) (*httptest.Server, *events.Log) {
	t.Helper()
	l := events.NewLog(s.DB())
	w := &events.Waker{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Listen(ctx, dsn, nil) }()
	h, err := events.NewHandler(events.HandlerConfig{Log: l, Waker: w, Watch: watch,
		Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+testKey },
		Logger:    slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); <-done })
	return srv, l
}

// waitFor polls cond every 10 ms for at most d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}
