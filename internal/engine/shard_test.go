package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// TestShardApplyMatchesRebuild: an engine that holds some organizations
// (Options.Holds) applies random changes to all of them — every kind,
// creates and deletes — and after every batch holds exactly what an engine
// loaded with those organizations of the whole data holds.
func TestShardApplyMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ds := gen.Generate(gen.Spec{Seed: int64(seed), Organizations: 4, Resources: 120, Assignments: 150, MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.2, GroupsPerOrg: 3, GroupAssignmentRatio: 0.3})
			ds.MaxDepth = 1000
			held := map[string]bool{ds.Organizations[0].ID: true, ds.Organizations[2].ID: true}
			holds := func(org string) bool { return held[org] }
			shard := func() *engine.Engine {
				e, err := engine.New(ctx, engine.Options{Modules: policies.Modules(), Holds: holds})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			live := shard()
			if err := live.LoadDataset(ctx, ds); err != nil {
				t.Fatal(err)
			}
			m := &enginetest.Mutator{DS: ds, Rand: rand.New(rand.NewPCG(seed, 11))}
			kinds := map[string]int{}
			for step := range 100 {
				var batch []model.Change
				for range 1 + m.Rand.IntN(3) {
					batch = append(batch, m.Step()...)
				}
				for _, ch := range batch {
					kinds[changeKind(ch)]++
				}
				rev := int64(step + 1)
				if err := live.Apply(ctx, rev, batch); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				ds.Revision = rev
				fresh := newEngine(t)
				if err := fresh.LoadDataset(ctx, ds.Only(holds)); err != nil {
					t.Fatalf("step %d: rebuild: %v", step, err)
				}
				if got, want := document(t, live), document(t, fresh); got.Compare(want) != 0 {
					t.Fatalf("step %d: the shard's document differs from its organizations' rebuild\n%s", step, diffKeys(got, want))
				}
			}
			for _, k := range []string{"upsert membership", "delete membership", "upsert assignment", "delete assignment", "upsert resource", "delete resource"} {
				if kinds[k] == 0 {
					t.Errorf("the mutator made no %s change: %v", k, kinds)
				}
			}
		})
	}
}

// changeKind is "<op> <entity>" of ch.
func changeKind(ch model.Change) string {
	kind := "other"
	switch {
	case ch.Membership != nil:
		kind = "membership"
	case ch.Assignment != nil:
		kind = "assignment"
	case ch.Resource != nil:
		kind = "resource"
	case ch.Group != nil:
		kind = "group"
	case ch.GroupMember != nil:
		kind = "group member"
	}
	return string(ch.Op) + " " + kind
}

// TestLoadEarly: the load LoadEarly returns swaps in the store built early
// when validation kept the dataset, and loads the one it returns instead
// when it changed; either way as LoadDataset would, and not before.
func TestLoadEarly(t *testing.T) {
	ctx := context.Background()
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 3, Resources: 60, Assignments: 80, MembershipsPerOrg: 4, Depth: 4})
	held := ds.Only(func(org string) bool { return org != ds.Organizations[1].ID })
	for name, final := range map[string]*model.Dataset{"kept": ds, "changed": held} {
		t.Run(name, func(t *testing.T) {
			early := newEngine(t)
			load := early.LoadEarly(ds)
			if early.Loaded() {
				t.Fatal("loaded before load was called")
			}
			if err := load(ctx, final); err != nil {
				t.Fatal(err)
			}
			want := newEngine(t)
			if err := want.LoadDataset(ctx, final); err != nil {
				t.Fatal(err)
			}
			if got, want := document(t, early), document(t, want); got.Compare(want) != 0 {
				t.Fatalf("the early load differs from LoadDataset's\n%s", diffKeys(got, want))
			}
		})
	}
}
