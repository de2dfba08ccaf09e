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
