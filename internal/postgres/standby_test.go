package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// standbyPair returns a store on a new database of a private primary with
// the demo imported, and a store on the same database of its hot standby,
// opened once the standby has replayed the import.
func standbyPair(t *testing.T) (primary *postgres.Store, standby *postgres.Store, standbyCluster *pgtest.Cluster) {
	t.Helper()
	ctx := context.Background()
	pc := pgtest.NewCluster(t)
	sc := pc.NewStandby(t)
	dsn := pc.NewDatabase(t)
	primary = openStore(t, dsn)
	rev, err := primary.Import(ctx, datafile.Demo())
	if err != nil {
		t.Fatal(err)
	}
	standby, err = postgres.Open(ctx, waitForDatabase(t, sc.DatabaseURL(dsn)), postgres.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Close() })
	waitUntil(t, 30*time.Second, "the standby to replay the import", func() bool {
		head, err := standby.Head(ctx)
		return err == nil && head >= rev
	})
	return primary, standby, sc
}

// waitForDatabase waits until the standby has replayed the creation of the
// database dsn names.
func waitForDatabase(t *testing.T, dsn string) string {
	t.Helper()
	waitUntil(t, 30*time.Second, "the database on the standby", func() bool {
		db, err := sqlx.Open("postgres", dsn)
		if err != nil {
			return false
		}
		defer db.Close()
		return db.Ping() == nil
	})
	return dsn
}

// TestStandbyReadOnly: on a hot standby, Migrate writes nothing and checks
// the replicated schema, and every write fails with ErrReadOnly, changing
// nothing.
func TestStandbyReadOnly(t *testing.T) {
	ctx := context.Background()
	primary, standby, _ := standbyPair(t)

	ro, err := standby.InRecovery(ctx)
	if err != nil || !ro {
		t.Fatalf("standby InRecovery = %v, %v; want true", ro, err)
	}
	if ro, err := primary.InRecovery(ctx); err != nil || ro {
		t.Fatalf("primary InRecovery = %v, %v; want false", ro, err)
	}
	applied, err := standby.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate on a migrated standby = %v, %v; want nothing applied and no error", applied, err)
	}

	before, err := standby.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = standby.Write(ctx, []model.Change{upsert(&model.Organization{ID: "org_new", Name: "New"})})
	if !errors.Is(err, postgres.ErrReadOnly) {
		t.Fatalf("Write on the standby: %v; want ErrReadOnly", err)
	}
	if _, err := standby.ApplySchema(ctx, postgres.Schema{ResourceTypes: []model.ResourceType{{Slug: "folder", Name: "Folder", ParentTypes: []string{"organization"}}}}, false); !errors.Is(err, postgres.ErrReadOnly) {
		t.Fatalf("ApplySchema on the standby: %v; want ErrReadOnly", err)
	}
	if after, err := primary.Head(ctx); err != nil || after != before {
		t.Fatalf("primary head %d (%v) after refused writes; want %d", after, err, before)
	}
}

// TestStandbyUnmigrated: Migrate on a standby of a database that lacks the
// schema fails with ErrReadOnly naming every missing migration, and
// creates nothing.
func TestStandbyUnmigrated(t *testing.T) {
	ctx := context.Background()
	pc := pgtest.NewCluster(t)
	sc := pc.NewStandby(t)
	dsn := waitForDatabase(t, sc.DatabaseURL(pc.NewDatabase(t)))
	s, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Migrate(ctx)
	if !errors.Is(err, postgres.ErrReadOnly) {
		t.Fatalf("Migrate on an unmigrated standby: %v; want ErrReadOnly", err)
	}
	for _, name := range []string{"0001_schema.sql", "0002_change_feed.sql", "primary"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Migrate error %q does not name %q", err, name)
		}
	}
}

// TestStandbyFollow: a follower of the standby (not told to poll only)
// polls, applies what is committed on the primary, and decisions on it
// reflect each write once its revision is reached.
func TestStandbyFollow(t *testing.T) {
	ctx := context.Background()
	primary, standby, _ := standbyPair(t)
	eng := newEngine(t)
	f := follow(t, standby, eng, postgres.FollowerConfig{PollInterval: 50 * time.Millisecond})
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	const web = "authz_resource_acme_web"
	if !check(t, svc, "om_carol", "project:edit", web) {
		t.Fatal("carol cannot edit web on the standby's follower")
	}
	rev, err := primary.Write(ctx, []model.Change{del(&model.Assignment{ID: "role_assignment_carol_acme_web"})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.WaitFor(ctx, rev, 10*time.Second); err != nil {
		t.Fatalf("revision %d on the standby's follower: %v", rev, err)
	}
	if check(t, svc, "om_carol", "project:edit", web) {
		t.Error("carol can still edit web on the standby after her assignment was deleted")
	}
	if _, _, stale := f.Status(); stale {
		t.Error("the standby's follower reports stale")
	}
	engineMatchesSnapshot(t, primary, eng)
}

// TestStandbyLag: with the standby's replay paused while the primary
// commits, the follower's Lag grows past MaxLag and Ready turns false;
// resumed, the follower catches up and Ready turns true again. With nothing
// committed, a paused standby misses nothing and stays ready.
func TestStandbyLag(t *testing.T) {
	ctx := context.Background()
	primary, standby, _ := standbyPair(t)
	eng := newEngine(t)
	const maxLag = 500 * time.Millisecond
	f := follow(t, standby, eng, postgres.FollowerConfig{PollInterval: 50 * time.Millisecond, MaxLag: maxLag})
	ready := func() bool { ok, _ := f.Ready(); return ok }
	waitUntil(t, 10*time.Second, "ready", ready)
	if lag := f.Lag(); lag > maxLag {
		t.Fatalf("Lag = %s on a standby in step; want at most %s", lag, maxLag)
	}

	exec := func(q string) {
		t.Helper()
		if _, err := standby.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("SELECT pg_wal_replay_pause()")
	time.Sleep(3 * maxLag)
	if !ready() {
		t.Fatalf("not ready with replay paused and nothing committed: lag %s", f.Lag())
	}

	rev, err := primary.Write(ctx, []model.Change{del(&model.Assignment{ID: "role_assignment_carol_acme_web"})})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "not ready while replay is paused", func() bool { return !ready() })
	ok, details := f.Ready()
	if ok || details["lag_seconds"].(float64) <= maxLag.Seconds() || details["max_lag_seconds"] != maxLag.Seconds() {
		t.Errorf("Ready() = %v, %v; want not ready with lag_seconds over max_lag_seconds %v", ok, details, maxLag.Seconds())
	}
	if eng.Revision() >= rev {
		t.Fatalf("the engine is at revision %d, which the paused standby has not replayed", eng.Revision())
	}

	exec("SELECT pg_wal_replay_resume()")
	waitUntil(t, 10*time.Second, "ready again", ready)
	if eng.Revision() < rev {
		t.Errorf("ready at revision %d before catching up with %d", eng.Revision(), rev)
	}
	if lag := f.Lag(); lag > maxLag {
		t.Errorf("Lag = %s after catching up; want at most %s", lag, maxLag)
	}
}

// TestPrimaryLag: a LISTENing follower of the primary reports no lag while
// it is caught up; with the database stopped its lag grows and, with
// MaxLag set, it turns not ready, and ready again once it is back.
func TestPrimaryLag(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.NewCluster(t)
	s := openStore(t, cluster.NewDatabase(t))
	if _, err := s.Import(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	const maxLag = 300 * time.Millisecond
	f := follow(t, s, newEngine(t), postgres.FollowerConfig{PollInterval: 50 * time.Millisecond, MaxLag: maxLag})
	waitUntil(t, 10*time.Second, "no lag", func() bool { return f.Lag() == 0 })
	cluster.Stop(t)
	waitUntil(t, 10*time.Second, "not ready during the outage", func() bool { ok, _ := f.Ready(); return !ok })
	cluster.Start(t)
	waitUntil(t, 20*time.Second, "ready again", func() bool { ok, _ := f.Ready(); return ok })
}
