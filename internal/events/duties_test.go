package events_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestDutiesOnPromotion: an instance on a hot standby delivers no
// webhooks; once the standby is promoted (pg_promote), the same instance,
// not restarted, delivers what the primary committed before and what is
// written on it after.
func TestDutiesOnPromotion(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.NewCluster(t)
	primary, dsn := demoDBAt(t, cluster.NewDatabase(t))
	rc := &receiver{t: t, secret: "whsec_promote"}
	recv := httptest.NewServer(rc)
	defer recv.Close()
	if _, err := events.NewLog(primary.DB()).CreateEndpoint(ctx, events.NewEndpoint{URL: recv.URL, Secret: rc.secret}); err != nil {
		t.Fatal(err)
	}
	writeOrg(t, primary, 0, false)

	standby := cluster.NewStandby(t)
	sdsn := standby.DatabaseURL(dsn)
	s, err := postgres.Open(ctx, sdsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := events.NewLog(s.DB())
	waitFor(t, 30*time.Second, "the standby replays the primary's event", func() bool {
		evs, err := l.List(ctx, events.Query{})
		return err == nil && len(evs) == 1
	})
	readOnly, err := s.InRecovery(ctx)
	if err != nil || !readOnly {
		t.Fatalf("standby: InRecovery = %v, %v; want true", readOnly, err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	d := events.Duties{Log: l, DSN: sdsn, Waker: &events.Waker{}, Retention: time.Hour, Webhooks: true,
		ReadOnly: s.InRecovery, Recheck: 50 * time.Millisecond}
	wg.Go(func() { d.Run(runCtx, readOnly) })

	time.Sleep(500 * time.Millisecond) // ten rechecks
	if got, _ := rc.distinct(); len(got) != 0 {
		t.Fatalf("delivered %v from a standby", got)
	}
	if _, err := s.DB().ExecContext(ctx, "SELECT pg_promote(true, 30)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the primary's event delivered by the promoted standby", func() bool {
		got, _ := rc.distinct()
		return len(got) == 1
	})
	writeOrg(t, s, 1, false)
	waitFor(t, 30*time.Second, "the promoted standby's own event delivered", func() bool {
		got, _ := rc.distinct()
		return len(got) == 2
	})
	checkReceived(t, l, rc)
}

// TestDutiesPruneTheChangeLog: the pruner prunes the change log first, while
// the events that date its cut are still there, then the events; with
// every event two days old and a day's retention, the change log keeps
// only its newest revision and the events log is empty.
func TestDutiesPruneTheChangeLog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, dsn := demoDB(t)
	head := writeOrg(t, s, 0, false)
	if _, err := s.DB().ExecContext(ctx, "UPDATE events SET created_at = now() - interval '2 days'"); err != nil {
		t.Fatal(err)
	}
	l := events.NewLog(s.DB())
	pruned := make(chan int, 1)
	d := events.Duties{Log: l, DSN: dsn, Waker: &events.Waker{}, Retention: 24 * time.Hour,
		PruneChanges: func(ctx context.Context, before time.Time) error {
			var old int
			if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM events WHERE created_at < $1", before).Scan(&old); err != nil {
				return err
			}
			err := s.PruneChangesBefore(ctx, before)
			select {
			case pruned <- old:
			default:
			}
			return err
		}}
	done := make(chan struct{})
	go func() { d.Run(ctx, false); close(done) }()
	defer func() { cancel(); <-done }()
	if old := <-pruned; old == 0 {
		t.Fatal("the change log was pruned after the events that date its cut")
	}
	waitFor(t, 10*time.Second, "the events pruned", func() bool {
		evs, err := l.List(ctx, events.Query{})
		return err == nil && len(evs) == 0
	})
	var oldest int64
	if err := s.DB().QueryRowContext(ctx, "SELECT min(revision) FROM change_revisions").Scan(&oldest); err != nil || oldest != head {
		t.Errorf("oldest revision kept %d (%v), want the head %d", oldest, err, head)
	}
}
