package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// tenants is a store holding a generated dataset of a few organizations,
// with raw SQL access to write around Trellis.
type tenants struct {
	store *postgres.Store
	db    *sqlx.DB
	ds    *model.Dataset
}

func newTenants(t *testing.T) *tenants {
	t.Helper()
	s, dsn := newStore(t)
	ds := gen.Generate(gen.Spec{Seed: 11, Organizations: 4, Resources: 400, Assignments: 500, MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.1})
	if _, err := s.Import(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &tenants{store: s, db: db, ds: ds}
}

// tree answers questions about the resource trees of the dataset.
type tree struct {
	parent map[string]string // "" for the organization root
	depth  map[string]int    // root = 1
}

func newTree(ds *model.Dataset) *tree {
	tr := &tree{parent: map[string]string{}, depth: map[string]int{}}
	for _, r := range ds.Resources {
		p := r.ParentID
		if p == model.RootResourceID(r.OrganizationID) {
			p = ""
		}
		tr.parent[r.ID] = p
	}
	var depth func(string) int
	depth = func(id string) int {
		if id == "" {
			return 1
		}
		if d, ok := tr.depth[id]; ok {
			return d
		}
		d := depth(tr.parent[id]) + 1
		tr.depth[id] = d
		return d
	}
	for id := range tr.parent {
		depth(id)
	}
	return tr
}

// under reports whether a is b or below it.
func (tr *tree) under(a, b string) bool {
	for ; a != ""; a = tr.parent[a] {
		if a == b {
			return true
		}
	}
	return false
}

// breakage is a change of one resource's parent that breaks a rule, and
// the change that repairs it.
type breakage struct {
	org, resource, badParent, goodParent string
}

// cycle finds a resource of org with a child and makes the child its
// parent.
func (w *tenants) cycle(t *testing.T, org string) breakage {
	t.Helper()
	tr := newTree(w.ds)
	for _, r := range w.ds.Resources {
		if r.OrganizationID != org || tr.parent[r.ID] == "" {
			continue
		}
		return breakage{org, tr.parent[r.ID], r.ID, w.parentOf(tr.parent[r.ID])}
	}
	t.Fatalf("organization %s has no resource with a parent", org)
	return breakage{}
}

// tooDeep finds a resource of org with a child and a resource at depth 4
// or more outside its subtree, and moves the first under the second: its
// child ends deeper than the maximum 5.
func (w *tenants) tooDeep(t *testing.T, org string) breakage {
	t.Helper()
	tr := newTree(w.ds)
	for _, f := range w.ds.Resources {
		hasChild := slices.ContainsFunc(w.ds.Resources, func(c model.Resource) bool { return tr.parent[c.ID] == f.ID })
		if f.OrganizationID != org || !hasChild {
			continue
		}
		for _, x := range w.ds.Resources {
			if x.OrganizationID == org && tr.depth[x.ID] >= 4 && !tr.under(x.ID, f.ID) {
				return breakage{org, f.ID, x.ID, w.parentOf(f.ID)}
			}
		}
	}
	t.Fatalf("organization %s has no resource to move too deep", org)
	return breakage{}
}

func (w *tenants) parentOf(id string) string {
	for _, r := range w.ds.Resources {
		if r.ID == id {
			if r.ParentID == "" {
				return model.RootResourceID(r.OrganizationID)
			}
			return r.ParentID
		}
	}
	return ""
}

// setParent updates a resource's parent in raw SQL, bypassing every rule of
// Trellis's write path. Unlogged, the change is not in the change feed (a
// restore, a bulk fix): only a snapshot sees it.
func (w *tenants) setParent(t *testing.T, id, parent string, logged bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if !logged {
		// No trigger fires: neither the change log nor any check.
		if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE resources SET parent_id = $1, updated_at = now() WHERE id = $2", parent, id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// agreesWithOracle checks a sample of decisions in each organization of
// orgs against a brute-force oracle over want (the data those organizations
// hold), and wants every decision about each organization of down to be
// organization_unavailable.
func agreesWithOracle(t *testing.T, svc *authz.Service, want *model.Dataset, orgs, down []string) {
	t.Helper()
	ctx := context.Background()
	oracle := loadtest.NewOracle(want)
	perms := want.Permissions
	checked, allowed := 0, 0
	for i, m := range want.Memberships {
		isDown := slices.Contains(down, m.OrganizationID)
		if !isDown && !slices.Contains(orgs, m.OrganizationID) {
			continue
		}
		for j, r := range want.Resources {
			if r.OrganizationID != m.OrganizationID || (i+j)%3 != 0 {
				continue
			}
			perm := perms[(i*7+j)%len(perms)].Slug
			d, _, err := svc.Check(ctx, authz.Subject{MembershipID: m.ID},
				authz.Check{Permission: perm, Resource: authz.ResourceRef{ID: r.ID}}, authz.Consistency{})
			var unavailable *authz.OrganizationUnavailableError
			switch {
			case isDown:
				if !errors.As(err, &unavailable) || unavailable.OrganizationID != m.OrganizationID {
					t.Fatalf("%s %s on %s in quarantined %s: %v, %v; want organization_unavailable", m.ID, perm, r.ID, m.OrganizationID, d, err)
				}
			case err != nil:
				t.Fatalf("%s %s on %s: %v", m.ID, perm, r.ID, err)
			case d.Allowed != oracle.Allowed(loadtest.Claims{OrgID: m.OrganizationID, MembershipID: m.ID}, perm, r.ID):
				t.Fatalf("%s %s on %s: allowed=%v (%v), the oracle disagrees", m.ID, perm, r.ID, d.Allowed, d.Reason)
			}
			checked++
			if d.Allowed {
				allowed++
			}
		}
	}
	if checked == 0 || (len(orgs) > 0 && allowed == 0) {
		t.Fatalf("%d checks, %d allowed: the sample proves nothing", checked, allowed)
	}
}

// isolatedSnapshot is what the engine must hold: a fresh snapshot with the
// organizations whose data breaks a rule held out.
func isolatedSnapshot(t *testing.T, s *postgres.Store) *model.Dataset {
	t.Helper()
	raw, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := raw.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func sameQuarantine(t *testing.T, f *postgres.Follower, want ...string) {
	t.Helper()
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, f.Quarantined()); diff != "" {
		t.Fatalf("quarantined organizations (-want +got):\n%s", diff)
	}
	ready, details := f.Ready()
	if !ready || !slices.Equal(details["quarantined_organizations"].([]string), want) {
		t.Fatalf("Ready() = %v, %v; want ready, listing %v", ready, details, want)
	}
}

// A restart on data that breaks rules in two organizations (written around
// Trellis) is ready as usual and serves every other organization; a valid
// change to a quarantined organization lifts its quarantine, and a change
// that keeps it broken does not, all without a full reload.
func TestQuarantineOnLoad(t *testing.T) {
	w := newTenants(t)
	orgs := []string{w.ds.Organizations[0].ID, w.ds.Organizations[1].ID, w.ds.Organizations[2].ID, w.ds.Organizations[3].ID}
	cyc, deep := w.cycle(t, orgs[1]), w.tooDeep(t, orgs[2])
	w.setParent(t, cyc.resource, cyc.badParent, false)
	w.setParent(t, deep.resource, deep.badParent, false)

	eng := newEngine(t)
	counted := &countingApplier{Applier: eng}
	f := follow(t, w.store, counted, postgres.FollowerConfig{PollInterval: 20 * time.Millisecond})
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	sameQuarantine(t, f, cyc.org, deep.org)
	agreesWithOracle(t, svc, w.ds, []string{orgs[0], orgs[3]}, []string{cyc.org, deep.org})
	engineHolds(t, eng, isolatedSnapshot(t, w.store))

	// A change to the broken organization that does not repair it: it
	// stays quarantined, and what recognises it now includes the new
	// resource (the engine holds the re-read).
	top := w.ds.Resources[slices.IndexFunc(w.ds.Resources, func(r model.Resource) bool {
		return r.OrganizationID == deep.org && r.ParentID == ""
	})]
	if _, err := w.db.Exec(`INSERT INTO resources (id, organization_id, type, external_id, name, parent_id)
		VALUES ('authz_resource_added', $1, $2, 'added', 'Added', $3)`, deep.org, top.Type, model.RootResourceID(deep.org)); err != nil {
		t.Fatal(err)
	}
	engineHolds(t, eng, isolatedSnapshot(t, w.store))
	sameQuarantine(t, f, cyc.org, deep.org)
	if _, err := w.db.Exec("DELETE FROM resources WHERE id = 'authz_resource_added'"); err != nil {
		t.Fatal(err)
	}

	// The repair of the cycle lifts that quarantine only.
	w.setParent(t, cyc.resource, cyc.goodParent, true)
	waitUntil(t, 10*time.Second, "the quarantine of "+cyc.org+" lifted", func() bool { return len(f.Quarantined()) == 1 })
	sameQuarantine(t, f, deep.org)
	engineHolds(t, eng, isolatedSnapshot(t, w.store))
	agreesWithOracle(t, svc, w.ds, []string{orgs[0], cyc.org, orgs[3]}, []string{deep.org})

	w.setParent(t, deep.resource, deep.goodParent, true)
	waitUntil(t, 10*time.Second, "every quarantine lifted", func() bool { return len(f.Quarantined()) == 0 })
	sameQuarantine(t, f)
	engineHolds(t, eng, isolatedSnapshot(t, w.store))
	agreesWithOracle(t, svc, w.ds, orgs, nil)
	if n := counted.loads.Load(); n != 1 {
		t.Errorf("%d full loads, want 1: a quarantine is lifted by re-reading one organization", n)
	}
}

// A change written around Trellis that makes a tree too deep, or closes a
// cycle, reaches a running follower through the change feed: that
// organization is quarantined and the follower goes on with every other,
// without a full reload; the repair lifts the quarantine.
func TestQuarantineOnApply(t *testing.T) {
	w := newTenants(t)
	orgs := []string{w.ds.Organizations[0].ID, w.ds.Organizations[1].ID, w.ds.Organizations[2].ID, w.ds.Organizations[3].ID}
	eng := newEngine(t)
	counted := &countingApplier{Applier: eng}
	f := follow(t, w.store, counted, postgres.FollowerConfig{PollInterval: 20 * time.Millisecond})
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	sameQuarantine(t, f)

	deep, cyc := w.tooDeep(t, orgs[0]), w.cycle(t, orgs[3])
	w.setParent(t, deep.resource, deep.badParent, true)
	w.setParent(t, cyc.resource, cyc.badParent, true)
	// A valid change in another organization after them is applied.
	other := w.ds.Resources[slices.IndexFunc(w.ds.Resources, func(r model.Resource) bool { return r.OrganizationID == orgs[1] })]
	if _, err := w.db.Exec("UPDATE resources SET name = 'after the poison' WHERE id = $1", other.ID); err != nil {
		t.Fatal(err)
	}
	if err := eng.WaitFor(context.Background(), headRevision(t, w.store), 10*time.Second); err != nil {
		t.Fatalf("the follower is wedged at revision %d: %v", eng.Revision(), err)
	}
	waitUntil(t, 10*time.Second, "both quarantined", func() bool { return len(f.Quarantined()) == 2 })
	sameQuarantine(t, f, deep.org, cyc.org)
	engineHolds(t, eng, isolatedSnapshot(t, w.store))
	agreesWithOracle(t, svc, w.ds, []string{orgs[1], orgs[2]}, []string{deep.org, cyc.org})

	w.setParent(t, deep.resource, deep.goodParent, true)
	w.setParent(t, cyc.resource, cyc.goodParent, true)
	waitUntil(t, 10*time.Second, "every quarantine lifted", func() bool { return len(f.Quarantined()) == 0 })
	engineHolds(t, eng, isolatedSnapshot(t, w.store))
	agreesWithOracle(t, svc, w.ds, orgs, nil)
	if n := counted.loads.Load(); n != 1 {
		t.Errorf("%d full loads, want 1", n)
	}
}

func headRevision(t *testing.T, s *postgres.Store) int64 {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// engineHolds fails unless the engine comes to hold exactly the document
// of ds.
func engineHolds(t *testing.T, e *engine.Engine, ds *model.Dataset) {
	t.Helper()
	if err := e.WaitFor(context.Background(), ds.Revision, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	want := document(t, ds)
	deadline := time.Now().Add(10 * time.Second)
	for {
		diff := cmp.Diff(want, engineDocument(t, e))
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine does not hold the isolated snapshot (-snapshot +engine):\n%s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
