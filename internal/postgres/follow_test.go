package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/policies"
)

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// follow runs a Follower of s feeding app until the test ends, and waits
// for its first load.
func follow(t testing.TB, s *postgres.Store, app postgres.Applier, cfg postgres.FollowerConfig) *postgres.Follower {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	f := s.NewFollower(app, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, 10*time.Second, "first load", f.Loaded)
	return f
}

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// engineDocument returns the engine's whole data document as JSON values.
func engineDocument(t testing.TB, e *engine.Engine) any {
	t.Helper()
	doc, err := e.Document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(doc.String()), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// engineMatchesSnapshot fails unless the engine holds exactly the data
// document of a fresh snapshot (revision included).
func engineMatchesSnapshot(t testing.TB, s *postgres.Store, e *engine.Engine) {
	t.Helper()
	ds, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitFor(context.Background(), ds.Revision, 10*time.Second); err != nil {
		t.Fatalf("engine at revision %d, snapshot at %d: %v", e.Revision(), ds.Revision, err)
	}
	if diff := cmp.Diff(document(t, ds), engineDocument(t, e)); diff != "" {
		t.Fatalf("engine document differs from a fresh snapshot (-snapshot +engine):\n%s", diff)
	}
}

func check(t testing.TB, svc *authz.Service, om, perm, resource string) bool {
	t.Helper()
	d, _, err := svc.Check(context.Background(), authz.Subject{MembershipID: om},
		authz.Check{Permission: perm, Resource: authz.ResourceRef{ID: resource}}, authz.Consistency{})
	if err != nil {
		t.Fatalf("check %s %s %s: %v", om, perm, resource, err)
	}
	return d.Allowed
}

func upsert[T any](p *T) model.Change { return change(model.OpUpsert, p) }
func del[T any](p *T) model.Change    { return change(model.OpDelete, p) }

func change(op model.Op, p any) model.Change {
	c := model.Change{Op: op}
	switch v := p.(type) {
	case *model.Organization:
		c.Organization = v
	case *model.Membership:
		c.Membership = v
	case *model.ResourceType:
		c.ResourceType = v
	case *model.Permission:
		c.Permission = v
	case *model.Role:
		c.Role = v
	case *model.Resource:
		c.Resource = v
	case *model.Assignment:
		c.Assignment = v
	case *model.Group:
		c.Group = v
	case *model.GroupMember:
		c.GroupMember = v
	default:
		panic(fmt.Sprintf("change of %T", p))
	}
	return c
}

// TestFreshness: after each kind of committed change the engine reflects
// it once it reaches the write's revision, and its whole document equals a
// fresh snapshot's.
func TestFreshness(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	eng := newEngine(t)
	follow(t, s, eng, postgres.FollowerConfig{PollInterval: time.Hour}) // NOTIFY only
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	const (
		engRes = "authz_resource_acme_eng"
		web    = "authz_resource_acme_web"
		crm    = "authz_resource_acme_crm"
	)
	steps := []struct {
		name    string
		changes []model.Change
		opts    []postgres.WriteOption
		om      string
		perm    string
		res     string
		want    bool
	}{
		{"assignment added", []model.Change{upsert(&model.Assignment{ID: "role_assignment_carol_crm", MembershipID: "om_carol", RoleSlug: "project-editor", ResourceID: crm})},
			nil, "om_carol", "project:edit", crm, true},
		{"assignment removed", []model.Change{del(&model.Assignment{ID: "role_assignment_carol_crm"})},
			nil, "om_carol", "project:edit", crm, false},
		{"resource re-parented", []model.Change{upsert(&model.Resource{ID: crm, OrganizationID: "org_acme", Type: "project", ExternalID: "crm", Name: "CRM rollout", ParentID: engRes})},
			nil, "om_bob", "project:delete", crm, true},
		{"role permissions edited", []model.Change{upsert(&model.Role{Slug: "project-editor", Name: "Project editor", ResourceType: "project", Permissions: []string{"project:view", "project:edit", "project:delete", "app:view"}})},
			nil, "om_carol", "project:delete", web, true},
		{"membership deactivated", []model.Change{upsert(&model.Membership{ID: "om_bob", UserID: "user_bob", OrganizationID: "org_acme", Status: model.StatusInactive, RoleSlugs: []string{"org-member"}})},
			nil, "om_bob", "project:delete", crm, false},
		{"resource deleted with cascade", []model.Change{del(&model.Resource{ID: engRes})},
			[]postgres.WriteOption{postgres.CascadeDelete(engRes)}, "om_carol", "project:edit", web, false},
		{"role deleted", []model.Change{del(&model.Role{Slug: "workspace-viewer"})},
			nil, "om_erin", "project:view", "authz_resource_globex_lab", false},
		{"organization deleted", []model.Change{del(&model.Organization{ID: "org_globex"})},
			nil, "om_frank", "project:view", "authz_resource_globex_lab", false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rev, err := s.Write(ctx, st.changes, st.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.WaitFor(ctx, rev, 5*time.Second); err != nil {
				t.Fatalf("revision %d not applied: %v", rev, err)
			}
			if got := check(t, svc, st.om, st.perm, st.res); got != st.want {
				t.Errorf("%s %s on %s = %v, want %v", st.om, st.perm, st.res, got, st.want)
			}
			engineMatchesSnapshot(t, s, eng)
		})
	}
}

// TestOutOfOrderCommit: a transaction that wrote first but commits last is
// not skipped, whatever revision the follower reached meanwhile.
func TestOutOfOrderCommit(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	app := newMemApplier()
	f := follow(t, s, app, postgres.FollowerConfig{PollInterval: 10 * time.Millisecond})

	slow, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback() }() // ErrTxDone after the commit below; nothing to check
	if _, err := slow.ExecContext(ctx, "UPDATE organization_memberships SET status = 'inactive' WHERE id = 'om_erin'"); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Write(ctx, []model.Change{upsert(&model.Organization{ID: "org_acme", Name: "Acme Inc"})})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "fast write applied", func() bool { return app.revision() >= rev })
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "slow write applied", func() bool { return app.revision() > rev })
	ds, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sortDataset(ds), app.dataset()); diff != "" {
		t.Fatalf("applied data differs from a snapshot (-snapshot +applied):\n%s", diff)
	}
	if app.loads != 1 {
		t.Errorf("%d full loads, want 1 (changes must come through the log)", app.loads)
	}
	// Stale may hold for a moment (a poll that failed under load is
	// retried), not for good.
	waitUntil(t, 5*time.Second, "follower not stale", func() bool { _, _, stale := f.Status(); return !stale })
}

// TestNoLostUpdates: concurrent writers (the write path and raw SQL from
// "another program"), transactions held open while later ones commit, and
// forced listener disconnects; afterwards the engine's whole document equals
// a fresh snapshot's.
func TestNoLostUpdates(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	eng := newEngine(t)
	counted := &countingApplier{Applier: eng}
	f := follow(t, s, counted, postgres.FollowerConfig{PollInterval: 2 * time.Second})

	const writers, perWriter = 8, 40
	projects := []string{"authz_resource_acme_api", "authz_resource_acme_web", "authz_resource_acme_crm"}
	workspaces := []string{"authz_resource_acme_eng", "authz_resource_acme_sales"}
	members := []string{"om_alice", "om_bob", "om_carol", "om_dave"}
	stop := make(chan struct{})
	var killer sync.WaitGroup
	killer.Add(1)
	kills := 0
	go func() {
		defer killer.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
			}
			var n int
			if err := s.DB().GetContext(ctx, &n, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerApplicationName); err == nil {
				kills += n
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 42))
			for k := range perWriter {
				var err error
				if rnd.IntN(2) == 0 {
					err = rawWrite(ctx, s.DB(), rnd, w, k, projects, workspaces, members)
				} else {
					err = apiWrite(ctx, s, rnd, w, k, projects, members)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d change %d: %w", w, k, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if kills == 0 {
		t.Error("the listener was never disconnected")
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.WaitFor(ctx, head, 10*time.Second); err != nil {
		t.Fatalf("engine stuck at %d, head %d", eng.Revision(), head)
	}
	engineMatchesSnapshot(t, s, eng)
	if n := counted.loads.Load(); n != 1 {
		t.Errorf("%d full loads, want 1: every change must come through the log", n)
	}
	waitUntil(t, 10*time.Second, "not stale", func() bool { _, _, stale := f.Status(); return !stale })
	t.Logf("%d revisions, %d listener disconnects", head, kills)
}

// countingApplier counts full loads.
type countingApplier struct {
	postgres.Applier
	loads atomic.Int64
}

func (c *countingApplier) LoadDataset(ctx context.Context, ds *model.Dataset) error {
	c.loads.Add(1)
	return c.Applier.LoadDataset(ctx, ds)
}

// rawWrite changes the tables directly in a transaction that sometimes
// sleeps before committing, so commits come out of order.
func rawWrite(ctx context.Context, db *sqlx.DB, rnd *rand.Rand, w, k int, projects, workspaces, members []string) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // ErrTxDone after a commit; nothing to check
	switch rnd.IntN(4) {
	case 0: // re-parent a project
		_, err = tx.ExecContext(ctx, "UPDATE resources SET parent_id = $1 WHERE id = $2",
			workspaces[rnd.IntN(len(workspaces))], projects[rnd.IntN(len(projects))])
	case 1: // toggle a membership
		_, err = tx.ExecContext(ctx, `UPDATE organization_memberships SET status =
			CASE WHEN status = 'active' THEN 'inactive' ELSE 'active' END WHERE id = $1`, members[rnd.IntN(len(members))])
	case 2: // edit a role's permissions
		if rnd.IntN(2) == 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM role_permissions WHERE role_id = (SELECT id FROM roles WHERE slug = 'workspace-viewer')
				AND permission_id = (SELECT id FROM permissions WHERE slug = 'app:view')`)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO role_permissions (role_id, permission_id)
				SELECT r.id, p.id FROM roles r, permissions p WHERE r.slug = 'workspace-viewer' AND p.slug = 'app:view'
				ON CONFLICT DO NOTHING`)
		}
	default: // an assignment and a cascade: several rows, one revision
		id := fmt.Sprintf("role_assignment_raw_%d_%d", w, k)
		_, err = tx.ExecContext(ctx, `INSERT INTO role_assignments (id, membership_id, role_id, resource_id)
			SELECT $1, $2, r.id, $3 FROM roles r WHERE r.slug = 'project-editor' AND r.organization_id IS NULL
			ON CONFLICT DO NOTHING`, id, members[rnd.IntN(len(members))], projects[rnd.IntN(len(projects))])
		if err == nil && rnd.IntN(2) == 0 {
			_, err = tx.ExecContext(ctx, "DELETE FROM role_assignments WHERE id = $1", id)
		}
	}
	if err != nil {
		return err
	}
	if rnd.IntN(3) == 0 {
		// Hold the transaction open while others commit.
		if _, err := tx.ExecContext(ctx, "SELECT pg_sleep($1)", rnd.Float64()*0.08); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// apiWrite goes through the validated write path.
func apiWrite(ctx context.Context, s *postgres.Store, rnd *rand.Rand, w, k int, projects, members []string) error {
	id := fmt.Sprintf("role_assignment_api_%d_%d", w, k)
	changes := []model.Change{upsert(&model.Assignment{ID: id, MembershipID: members[rnd.IntN(len(members))],
		RoleSlug: "project-editor", ResourceID: projects[rnd.IntN(len(projects))]})}
	if rnd.IntN(3) == 0 {
		changes = append(changes, del(&model.Assignment{ID: id}))
	}
	_, err := s.Write(ctx, changes)
	if ve := (*postgres.ValidationError)(nil); asValidation(err, &ve) && ve.Code == model.CodeDuplicate {
		return nil // the same (membership, role, resource) exists already
	}
	return err
}

// TestOutage: with PostgreSQL stopped, decisions keep coming from the last
// data and the follower reports stale; once it is back, it catches up
// without a restart.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.NewCluster(t)
	s := openStore(t, cluster.NewDatabase(t))
	if _, err := s.Import(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t)
	f := follow(t, s, eng, postgres.FollowerConfig{PollInterval: 50 * time.Millisecond})
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	const web = "authz_resource_acme_web"
	if !check(t, svc, "om_carol", "project:edit", web) {
		t.Fatal("carol cannot edit web before the outage")
	}

	cluster.Stop(t)
	waitUntil(t, 10*time.Second, "stale", func() bool { _, _, stale := f.Status(); return stale })
	if !check(t, svc, "om_carol", "project:edit", web) {
		t.Fatal("decisions changed during the outage")
	}
	if ready, details := f.Ready(); !ready || details["stale"] != true {
		t.Errorf("Ready() = %v, %v during the outage", ready, details)
	}

	cluster.Start(t)
	waitUntil(t, 20*time.Second, "not stale", func() bool { _, _, stale := f.Status(); return !stale })
	rev, err := s.Write(ctx, []model.Change{del(&model.Assignment{ID: "role_assignment_carol_acme_web"})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.WaitFor(ctx, rev, 10*time.Second); err != nil {
		t.Fatalf("revision %d after the outage: %v", rev, err)
	}
	if check(t, svc, "om_carol", "project:edit", web) {
		t.Error("carol can still edit web after her assignment was deleted")
	}
}

// TestResyncAfterPrune: a follower whose revision the log no longer
// reaches loads a full snapshot.
func TestResyncAfterPrune(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	erin := func(status string) []model.Change {
		return []model.Change{upsert(&model.Membership{ID: "om_erin", UserID: "user_erin", OrganizationID: "org_globex", Status: status, RoleSlugs: []string{"org-member"}})}
	}
	app := newMemApplier()
	release := make(chan struct{})
	held := make(chan int64, 1)
	app.gate = func(rev int64) {
		select {
		case held <- rev: // hold the first Apply until the log is pruned
			<-release
		default:
		}
	}
	f := follow(t, s, app, postgres.FollowerConfig{NoListen: true, PollInterval: 20 * time.Millisecond})
	if _, err := s.Write(ctx, erin(model.StatusInactive)); err != nil {
		t.Fatal(err)
	}
	<-held
	var last int64
	for _, status := range []string{model.StatusActive, model.StatusInactive} {
		rev, err := s.Write(ctx, erin(status))
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	if err := s.Prune(ctx, last); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitUntil(t, 5*time.Second, "caught up", func() bool { applied, _, _ := f.Status(); return applied == last })
	ds, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sortDataset(ds), app.dataset()); diff != "" {
		t.Fatalf("(-snapshot +applied):\n%s", diff)
	}
	if app.loads != 2 {
		t.Errorf("%d full loads, want 2 (the first and the resync)", app.loads)
	}
}

// TestPruneChangesBefore: the change log is pruned of the revisions whose
// events are all older than the cut, and keeps the rest and the newest
// revision.
func TestPruneChangesBefore(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	var revs []int64
	for _, status := range []string{model.StatusActive, model.StatusInactive, model.StatusActive} {
		rev, err := s.Write(ctx, []model.Change{upsert(&model.Membership{ID: "om_erin", UserID: "user_erin", OrganizationID: "org_globex", Status: status, RoleSlugs: []string{"org-member"}})})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	kept := func() (oldest, logged int64) {
		t.Helper()
		if err := s.DB().QueryRowContext(ctx, `SELECT min(revision), (SELECT count(*) FROM change_log c JOIN change_revisions r USING (txid) WHERE r.revision < $1)
			FROM change_revisions`, revs[2]).Scan(&oldest, &logged); err != nil {
			t.Fatal(err)
		}
		return oldest, logged
	}
	// Every revision up to the second is two days old.
	if _, err := s.DB().ExecContext(ctx, "UPDATE events SET created_at = now() - interval '2 days' WHERE revision <= $1", revs[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneChangesBefore(ctx, time.Now().Add(-72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if oldest, _ := kept(); oldest >= revs[0] {
		t.Fatalf("nothing is older than 3 days, yet the oldest revision kept is %d of %v", oldest, revs)
	}
	if err := s.PruneChangesBefore(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if oldest, logged := kept(); oldest != revs[2] || logged != 0 {
		t.Errorf("oldest revision kept %d, %d changes logged below it; want %d and 0", oldest, logged, revs[2])
	}
	// All of it old: the newest revision stays, the head.
	if _, err := s.DB().ExecContext(ctx, "UPDATE events SET created_at = now() - interval '2 days'"); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneChangesBefore(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if head, err := s.Head(ctx); err != nil || head != revs[2] {
		t.Errorf("head %d (%v), want %d", head, err, revs[2])
	}
	if oldest, _ := kept(); oldest != revs[2] {
		t.Errorf("oldest revision kept %d, want the head %d", oldest, revs[2])
	}
}
