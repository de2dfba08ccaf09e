package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
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

// TestApplyMatchesRebuild applies random changes incrementally and compares
// the whole document with one built from scratch after every batch.
func TestApplyMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ds := gen.Generate(gen.Spec{Seed: int64(seed), Organizations: 3, Resources: 120, Assignments: 150, MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.2, GroupsPerOrg: 3, GroupAssignmentRatio: 0.3})
			ds.MaxDepth = 1000 // re-parenting may deepen trees; depth is the write path's job
			live := newEngine(t)
			if err := live.LoadDataset(ctx, ds); err != nil {
				t.Fatal(err)
			}
			m := &enginetest.Mutator{DS: ds, Rand: rand.New(rand.NewPCG(seed, 7))}
			for step := range 120 {
				var batch []model.Change
				for range 1 + m.Rand.IntN(3) {
					batch = append(batch, m.Step()...)
				}
				rev := int64(step + 1)
				if err := live.Apply(ctx, rev, batch); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				ds.Revision = rev
				fresh := newEngine(t)
				if err := fresh.LoadDataset(ctx, ds); err != nil {
					t.Fatalf("step %d: rebuild: %v", step, err)
				}
				got, want := document(t, live), document(t, fresh)
				if got.Compare(want) != 0 {
					t.Fatalf("step %d: patched document differs from a rebuild\n%s", step, diffKeys(got, want))
				}
				sameDecisions(t, m, live, fresh)
			}
		})
	}
}

// sameDecisions asks both engines the same random questions, including
// about deleted resources and memberships, and wants the same answers.
func sameDecisions(t testing.TB, m *enginetest.Mutator, live, fresh *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	ask := func(ep engine.Entrypoint, in map[string]any) {
		t.Helper()
		v, err := ast.InterfaceToValue(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err1 := live.Decide(ctx, ep, v)
		want, err2 := fresh.Decide(ctx, ep, v)
		if (err1 == nil) != (err2 == nil) || fmt.Sprint(got.Value) != fmt.Sprint(want.Value) {
			t.Fatalf("%s %v: patched engine says %v (%v), rebuilt says %v (%v)", ep, in, got.Value, err1, want.Value, err2)
		}
	}
	for range 10 {
		om := fmt.Sprintf("om_%d", m.Rand.IntN(20)) // some deleted or never there
		if len(m.DS.Memberships) > 0 && m.Rand.IntN(2) == 0 {
			om = m.DS.Memberships[m.Rand.IntN(len(m.DS.Memberships))].ID
		}
		rid := fmt.Sprintf("authz_resource_%d", m.Rand.IntN(150)) // some deleted
		perm := m.DS.Permissions[m.Rand.IntN(len(m.DS.Permissions))].Slug
		subject := map[string]any{"organization_membership_id": om}
		ask(engine.Check, map[string]any{"subject": subject, "permission": perm, "resource": map[string]any{"id": rid}})
		ask(engine.EffectivePermissions, map[string]any{"subject": subject, "resource": map[string]any{"id": rid}})
		ask(engine.ListResources, map[string]any{"subject": subject, "permission": perm})
		ask(engine.ListMemberships, map[string]any{"permission": perm, "resource": map[string]any{"id": rid}})
	}
}

func document(t testing.TB, e *engine.Engine) ast.Value {
	t.Helper()
	doc, err := e.Document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// diffKeys names the first differing entries of two documents.
func diffKeys(got, want ast.Value) string {
	out := ""
	g, w := got.(ast.Object), want.(ast.Object)
	w.Foreach(func(k, wv *ast.Term) {
		gv := g.Get(k)
		if gv == nil {
			out += fmt.Sprintf("%v: missing\n", k)
			return
		}
		go1, ok1 := gv.Value.(ast.Object)
		wo, ok2 := wv.Value.(ast.Object)
		if !ok1 || !ok2 {
			if gv.Value.Compare(wv.Value) != 0 {
				out += fmt.Sprintf("%v: got %v want %v\n", k, gv, wv)
			}
			return
		}
		n := 0
		wo.Foreach(func(k2, v2 *ast.Term) {
			if x := go1.Get(k2); (x == nil || x.Value.Compare(v2.Value) != 0) && n < 5 {
				out += fmt.Sprintf("%v[%v]: got %v want %v\n", k, k2, x, v2)
				n++
			}
		})
		go1.Foreach(func(k2, v2 *ast.Term) {
			if wo.Get(k2) == nil && n < 10 {
				out += fmt.Sprintf("%v[%v]: extra %v\n", k, k2, v2)
				n++
			}
		})
	})
	return out
}

// TestResultsAreCopies: a Data API answer must not share the store's maps,
// which Apply changes in place once the answer has left the transaction.
func TestResultsAreCopies(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 1, Resources: 10, Assignments: 5, Depth: 3})
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	role := ds.Roles[0]
	if role.OrganizationID != "" {
		t.Fatalf("role %s: want an environment role, whose key is one path segment", role.Key())
	}
	got, err := e.Data(ctx, "trellis_data/roles/"+role.Key(), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprint(got.Value)
	role.Permissions = nil
	if err := e.Apply(ctx, 1, []model.Change{{Op: model.OpUpsert, Role: &role}}); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(got.Value); after != before {
		t.Errorf("an answer changed after it was given: it shares the store's maps")
	}
}

// TestGenerationsFollowScopes checks that a change moves the generations
// of what it affects and of nothing else: one organization's change keeps
// stamps on other organizations valid, shared changes and reloads
// invalidate every stamp, and a revision without changes none.
func TestGenerationsFollowScopes(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 3, Resources: 40, Assignments: 30, MembershipsPerOrg: 3, Depth: 3})
	ds.Revision = 5
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	orgA, orgB := ds.Organizations[1].ID, ds.Organizations[2].ID // gen gives even ones organization roles
	memberOf := map[string]string{}
	for _, m := range ds.Memberships {
		memberOf[m.ID] = m.OrganizationID
	}
	var grantA model.Assignment
	for _, a := range ds.Assignments {
		if memberOf[a.MembershipID] == orgA {
			grantA = a
		}
	}
	var leafB model.Resource
	for _, r := range ds.Resources {
		if r.OrganizationID == orgB {
			leafB = r // a later one may be below it: the delete cascades
		}
	}
	var envRole, orgRoleB model.Role
	for _, r := range ds.Roles {
		switch r.OrganizationID {
		case "":
			envRole = r
		case orgB:
			orgRoleB = r
		}
	}
	if grantA.ID == "" || leafB.ID == "" || envRole.Slug == "" || orgRoleB.Slug == "" {
		t.Fatal("the generated dataset lacks an assignment in A, a resource in B, or the roles")
	}
	memberA := grantA.MembershipID

	g := e.Generations()
	type scope struct{ a, b, member, shared, anyChange bool } // which stamps a change invalidates
	rev := ds.Revision
	apply := func(chs ...model.Change) func() error {
		return func() error { rev++; return e.Apply(ctx, rev, chs) }
	}
	steps := []struct {
		name    string
		do      func() error
		invalid scope
	}{
		{"an assignment of a membership of A", apply(model.Change{Op: model.OpDelete, Assignment: &grantA}), scope{member: true, anyChange: true}},
		{"a membership of A deleted by id", apply(model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: memberA}}), scope{member: true, anyChange: true}},
		{"a resource of B deleted by id", apply(model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: leafB.ID}}), scope{b: true, anyChange: true}},
		{"an organization role of B", apply(model.Change{Op: model.OpUpsert, Role: &orgRoleB}), scope{b: true, anyChange: true}},
		{"a new organization", apply(model.Change{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_new"}}), scope{anyChange: true}},
		{"a revision without changes", apply(), scope{}},
		{"an environment role", apply(model.Change{Op: model.OpUpsert, Role: &envRole}), scope{true, true, true, true, true}},
		{"a permission", apply(model.Change{Op: model.OpUpsert, Permission: &ds.Permissions[0]}), scope{true, true, true, true, true}},
		{"a reload of an older revision", func() error { ds.Revision = 2; return e.LoadDataset(ctx, ds) }, scope{true, true, true, true, true}},
	}
	for _, step := range steps {
		stamp := func(d engine.Deps) engine.Stamp {
			t.Helper()
			st, ok := g.Stamp(g.Current(), d)
			if !ok {
				t.Fatalf("%s: Stamp failed with no change in between", step.name)
			}
			return st
		}
		a, b := stamp(engine.Deps{Orgs: []string{orgA}}), stamp(engine.Deps{Orgs: []string{orgB}})
		member, shared := stamp(engine.Deps{Memberships: []string{memberA}}), stamp(engine.Deps{})
		anyChange := stamp(engine.Deps{Orgs: []string{orgA}, AnyChange: true})
		before := g.Current()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := scope{!g.Valid(&a), !g.Valid(&b), !g.Valid(&member), !g.Valid(&shared), !g.Valid(&anyChange)}
		if got != step.invalid {
			t.Errorf("%s invalidated %+v, want %+v", step.name, got, step.invalid)
		}
		if moved := g.Current() != before; moved != step.invalid.anyChange {
			t.Errorf("%s: Current moved: %v", step.name, moved)
		}
	}
	if e.Revision() != 2 {
		t.Fatalf("revision %d after reloading revision 2", e.Revision())
	}
}

// TestStampFailsAfterAChange: a stamp taken after a change was published
// since the caller read Current cannot be trusted (its owners may be out of
// date), so Stamp says so.
func TestStampFailsAfterAChange(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	g := e.Generations()
	since := g.Current()
	orgA := engine.Deps{Orgs: []string{"org_a"}}
	if _, ok := g.Stamp(since, orgA); !ok {
		t.Fatal("Stamp failed with no change since")
	}
	if err := e.Apply(ctx, 1, []model.Change{{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_b"}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Stamp(since, orgA); ok {
		t.Fatal("Stamp succeeded although a change was published since")
	}
	many, ok := g.Stamp(g.Current(), engine.Deps{Orgs: []string{"org_a", "org_b", "org_c"}, Memberships: []string{"om_a", "om_b"}})
	if !ok {
		t.Fatal("Stamp failed")
	}
	if err := e.Apply(ctx, 2, []model.Change{{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_e"}}}); err != nil {
		t.Fatal(err)
	}
	if g.Valid(&many) {
		t.Fatal("a stamp of more organizations and memberships than it records survived a change elsewhere")
	}
}

// TestOwners reads the organizations of memberships and resources, and ""
// for ids the data does not hold.
func TestOwners(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 2, Resources: 10, Assignments: 5, MembershipsPerOrg: 2, Depth: 3})
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	m, r := ds.Memberships[0], ds.Resources[len(ds.Resources)-1]
	root := ds.Organizations[1].RootID()
	org, orgs, err := e.Owners(ctx, m.ID, r.ID, "authz_resource_nope", root, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{r.OrganizationID, "", ds.Organizations[1].ID, ""}; org != m.OrganizationID || !slices.Equal(orgs, want) {
		t.Fatalf("Owners = %q, %q; want %q, %q", org, orgs, m.OrganizationID, want)
	}
	if org, _, err := e.Owners(ctx, "om_nope"); err != nil || org != "" {
		t.Fatalf("Owners of an unknown membership = %q, %v", org, err)
	}
}

// TestSessionSeesOneRevision: the decisions of a session reflect one
// revision, the one it began at, though a write commits meanwhile (it
// waits for the session); after the session, decisions see the write.
func TestSessionSeesOneRevision(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 2, Resources: 10, Assignments: 5, MembershipsPerOrg: 2, Depth: 3})
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	start := ds.Revision
	r := ds.Resources[len(ds.Resources)-1]
	in := ast.MustParseTerm(fmt.Sprintf(`{"permission": %q, "resource": {"id": %q}}`, "p", r.ID)).Value
	applied := make(chan error, 1)
	err := e.Session(ctx, func(decide func(engine.Entrypoint, ast.Value) (engine.Result, error)) error {
		go func() {
			applied <- e.Apply(ctx, start+1, []model.Change{{Op: model.OpDelete, Resource: &model.Resource{ID: r.ID, OrganizationID: r.OrganizationID}}})
		}()
		for range 3 {
			res, err := decide(engine.Check, in)
			if err != nil {
				return err
			}
			if res.Revision != start {
				return fmt.Errorf("a decision of the session at revision %d, want %d", res.Revision, start)
			}
			select {
			case err := <-applied:
				return fmt.Errorf("a write committed during the session: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	res, err := e.Decide(ctx, engine.Check, in)
	if err != nil || res.Revision != start+1 {
		t.Fatalf("after the session: revision %d, %v; want %d", res.Revision, err, start+1)
	}
}
