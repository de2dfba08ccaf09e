package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

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
			ds := gen.Generate(gen.Spec{Seed: int64(seed), Organizations: 3, Resources: 120, Assignments: 150, MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.2})
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
