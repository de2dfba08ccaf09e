package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/engine"
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

// mutator changes a dataset at random and says what it changed, the way a
// database's change feed would (cascades included, in any order).
type mutator struct {
	ds  *model.Dataset
	rnd *rand.Rand
	n   int
}

func (m *mutator) id(prefix string) string {
	m.n++
	return fmt.Sprintf("%s_new_%d", prefix, m.n)
}

func (m *mutator) parentOf(r model.Resource) string {
	if r.ParentID != "" {
		return r.ParentID
	}
	for _, o := range m.ds.Organizations {
		if o.ID == r.OrganizationID {
			return o.RootID()
		}
	}
	return ""
}

// subtree returns the ids of the resources at and below id.
func (m *mutator) subtree(id string) map[string]bool {
	in := map[string]bool{id: true}
	for grown := true; grown; {
		grown = false
		for _, r := range m.ds.Resources {
			if !in[r.ID] && in[m.parentOf(r)] {
				in[r.ID], grown = true, true
			}
		}
	}
	return in
}

func (m *mutator) pickResource() model.Resource {
	return m.ds.Resources[m.rnd.IntN(len(m.ds.Resources))]
}

func (m *mutator) membershipsOf(org string) []model.Membership {
	var out []model.Membership
	for _, ms := range m.ds.Memberships {
		if ms.OrganizationID == org {
			out = append(out, ms)
		}
	}
	return out
}

func (m *mutator) rolesOfType(org, typ string) []model.Role {
	var out []model.Role
	for _, r := range m.ds.Roles {
		if r.ResourceType == typ && (r.OrganizationID == "" || r.OrganizationID == org) {
			out = append(out, r)
		}
	}
	return out
}

// step makes one random change and returns the changes a feed would carry.
func (m *mutator) step() []model.Change {
	ds := m.ds
	if len(ds.Resources) < 10 || len(ds.Memberships) < 3 || len(ds.Roles) < 5 {
		return nil // too little left to change; the rebuild check still runs
	}
	switch m.rnd.IntN(11) {
	case 8: // delete a membership with its assignments
		i := m.rnd.IntN(len(ds.Memberships))
		gone := ds.Memberships[i]
		ds.Memberships = slices.Delete(ds.Memberships, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Membership: &model.Membership{ID: gone.ID}}}
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			if a.MembershipID == gone.ID {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return a.MembershipID == gone.ID
		})
		m.rnd.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 9: // delete a role: its assignments go and memberships lose it
		i := m.rnd.IntN(len(ds.Roles))
		gone := ds.Roles[i]
		ds.Roles = slices.Delete(ds.Roles, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Role: &model.Role{Slug: gone.Slug, OrganizationID: gone.OrganizationID}}}
		memberOrg := map[string]string{}
		for j := range ds.Memberships {
			ms := &ds.Memberships[j]
			memberOrg[ms.ID] = ms.OrganizationID
			if (gone.OrganizationID == "" || gone.OrganizationID == ms.OrganizationID) && slices.Contains(ms.RoleSlugs, gone.Slug) {
				ms.RoleSlugs = slices.DeleteFunc(slices.Clone(ms.RoleSlugs), func(s string) bool { return s == gone.Slug })
				changed := *ms
				chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &changed})
			}
		}
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			hit := a.RoleSlug == gone.Slug && (gone.OrganizationID == "" || gone.OrganizationID == memberOrg[a.MembershipID])
			if hit {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return hit
		})
		m.rnd.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 10: // a new organization with a member holding an organization role
		o := model.Organization{ID: m.id("org")}
		ds.Organizations = append(ds.Organizations, o)
		chs := []model.Change{{Op: model.OpUpsert, Organization: &o}}
		if roles := m.rolesOfType(o.ID, model.OrganizationType); len(roles) > 0 {
			ms := model.Membership{ID: m.id("om"), OrganizationID: o.ID, Status: model.StatusActive, RoleSlugs: []string{roles[0].Slug}}
			ds.Memberships = append(ds.Memberships, ms)
			chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &ms})
		}
		return chs
	case 0: // add a resource under a random resource
		p := m.pickResource()
		r := model.Resource{ID: m.id("authz_resource"), OrganizationID: p.OrganizationID, Type: p.Type, ExternalID: m.id("ext"), ParentID: p.ID}
		ds.Resources = append(ds.Resources, r)
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}
	case 1: // re-parent a resource within its organization, never into its own subtree
		i := m.rnd.IntN(len(ds.Resources))
		r := ds.Resources[i]
		below := m.subtree(r.ID)
		for range 20 {
			p := m.pickResource()
			if p.OrganizationID == r.OrganizationID && !below[p.ID] {
				ds.Resources[i].ParentID = p.ID
				moved := ds.Resources[i]
				return []model.Change{{Op: model.OpUpsert, Resource: &moved}}
			}
		}
		ds.Resources[i].ParentID = "" // to the root
		moved := ds.Resources[i]
		return []model.Change{{Op: model.OpUpsert, Resource: &moved}}
	case 2: // delete a subtree with its assignments, in shuffled order
		gone := m.subtree(m.pickResource().ID)
		var chs []model.Change
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			if gone[a.ResourceID] {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return gone[a.ResourceID]
		})
		ds.Resources = slices.DeleteFunc(ds.Resources, func(r model.Resource) bool {
			if gone[r.ID] {
				chs = append(chs, model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: r.ID}})
			}
			return gone[r.ID]
		})
		m.rnd.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 3, 4: // assign a role
		r := m.pickResource()
		ms, roles := m.membershipsOf(r.OrganizationID), m.rolesOfType(r.OrganizationID, r.Type)
		if len(ms) == 0 || len(roles) == 0 {
			return nil
		}
		a := model.Assignment{ID: m.id("role_assignment"), MembershipID: ms[m.rnd.IntN(len(ms))].ID, RoleSlug: roles[m.rnd.IntN(len(roles))].Slug, ResourceID: r.ID}
		ds.Assignments = append(ds.Assignments, a)
		return []model.Change{{Op: model.OpUpsert, Assignment: &a}}
	case 5: // remove an assignment
		if len(ds.Assignments) == 0 {
			return nil
		}
		i := m.rnd.IntN(len(ds.Assignments))
		a := ds.Assignments[i]
		ds.Assignments = slices.Delete(ds.Assignments, i, i+1)
		return []model.Change{{Op: model.OpDelete, Assignment: &a}}
	case 6: // change a membership's status and organization roles
		i := m.rnd.IntN(len(ds.Memberships))
		ms := &ds.Memberships[i]
		ms.Status = []string{model.StatusActive, model.StatusInactive}[m.rnd.IntN(2)]
		roles := m.rolesOfType(ms.OrganizationID, model.OrganizationType)
		ms.RoleSlugs = nil
		for _, r := range roles {
			if m.rnd.IntN(3) == 0 {
				ms.RoleSlugs = append(ms.RoleSlugs, r.Slug)
			}
		}
		changed := *ms
		return []model.Change{{Op: model.OpUpsert, Membership: &changed}}
	default: // edit a role's permissions
		i := m.rnd.IntN(len(ds.Roles))
		r := &ds.Roles[i]
		var perms []string
		for _, p := range ds.Permissions {
			if m.rnd.IntN(2) == 0 {
				perms = append(perms, p.Slug)
			}
		}
		r.Permissions = perms
		changed := *r
		return []model.Change{{Op: model.OpUpsert, Role: &changed}}
	}
}

// TestApplyMatchesRebuild applies random changes incrementally and compares
// the whole document with one built from scratch after every batch.
func TestApplyMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ds := gen.Generate(gen.Spec{Seed: int64(seed), Organizations: 3, Resources: 120, Assignments: 150, MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.2})
			ds.MaxDepth = 1000 // re-parenting may deepen trees; depth is the write path's job
			live := newEngine(t)
			if err := live.LoadDataset(ctx, ds); err != nil {
				t.Fatal(err)
			}
			m := &mutator{ds: ds, rnd: rand.New(rand.NewPCG(seed, 7))}
			for step := range 120 {
				var batch []model.Change
				for range 1 + m.rnd.IntN(3) {
					batch = append(batch, m.step()...)
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
func sameDecisions(t testing.TB, m *mutator, live, fresh *engine.Engine) {
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
		om := fmt.Sprintf("om_%d", m.rnd.IntN(20)) // some deleted or never there
		if len(m.ds.Memberships) > 0 && m.rnd.IntN(2) == 0 {
			om = m.ds.Memberships[m.rnd.IntN(len(m.ds.Memberships))].ID
		}
		rid := fmt.Sprintf("authz_resource_%d", m.rnd.IntN(150)) // some deleted
		perm := m.ds.Permissions[m.rnd.IntN(len(m.ds.Permissions))].Slug
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
	got, err := e.Data(ctx, "trellis_data/roles", nil)
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

// TestGenerations checks that every Load and Apply publishes a new
// generation, that answers carry the one they were evaluated at, and that a
// reload to an older revision still moves the generation on.
func TestGenerations(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 1, Resources: 10, Assignments: 5, Depth: 3})
	ds.Revision = 5
	answerGen := func() uint64 {
		t.Helper()
		res, err := e.Data(ctx, "trellis/revision", nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Generation
	}
	seen := []uint64{e.Generation()}
	if got := answerGen(); got != e.Generation() {
		t.Fatalf("empty engine: answer at generation %d, engine at %d", got, e.Generation())
	}
	steps := []func() error{
		func() error { return e.LoadDataset(ctx, ds) },
		func() error {
			role := ds.Roles[0]
			return e.Apply(ctx, 6, []model.Change{{Op: model.OpUpsert, Role: &role}})
		},
		func() error { ds.Revision = 2; return e.LoadDataset(ctx, ds) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		g := e.Generation()
		if g <= seen[len(seen)-1] {
			t.Fatalf("step %d: generation %d after %v", i, g, seen)
		}
		if got := answerGen(); got != g {
			t.Fatalf("step %d: answer at generation %d, engine at %d", i, got, g)
		}
		seen = append(seen, g)
	}
	if e.Revision() != 2 {
		t.Fatalf("revision %d after reloading revision 2", e.Revision())
	}
}
