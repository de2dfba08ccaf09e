package gen_test

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

func ExampleGenerate() {
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 3, Resources: 30, Assignments: 20, MembershipsPerOrg: 4, Depth: 3})
	fmt.Println(len(ds.Organizations), "organizations,", len(ds.Resources), "resources,", len(ds.Memberships), "memberships")
	for _, rt := range ds.ResourceTypes {
		fmt.Println(rt.Slug, "under", rt.ParentTypes)
	}
	// Output:
	// 3 organizations, 30 resources, 12 memberships
	// workspace under [organization]
	// project under [workspace organization]
}

func ExampleSpec_Tier() {
	spec, ok := gen.Spec{Seed: 7}.Tier("M")
	fmt.Println(ok, spec.Seed, spec.Organizations, spec.Resources, spec.Assignments, spec.Depth)
	_, ok = gen.Spec{}.Tier("XXL")
	fmt.Println(ok)
	// Output:
	// true 7 10000 1000000 1000000 5
	// false
}

func TestGenerateDeterministic(t *testing.T) {
	spec := gen.Spec{Seed: 42, Organizations: 20, Resources: 5000, Assignments: 5000, MembershipsPerOrg: 8, Depth: 5, Skew: 1.2, InactiveRatio: 0.1}
	a, b := gen.Generate(spec), gen.Generate(spec)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same spec, different datasets (-first +second):\n%s", diff)
	}
	spec.Seed++
	if c := gen.Generate(spec); cmp.Equal(a, c) {
		t.Fatal("different seeds gave equal datasets")
	}
}

func TestGenerateCounts(t *testing.T) {
	tests := []struct {
		name string
		spec gen.Spec
	}{
		{"uniform", gen.Spec{Seed: 1, Organizations: 10, Resources: 10_000, Assignments: 10_000, MembershipsPerOrg: 20, Depth: 4, InactiveRatio: 0.2}},
		{"skewed", gen.Spec{Seed: 2, Organizations: 200, Resources: 20_000, Assignments: 30_000, MembershipsPerOrg: 5, Depth: 5, Skew: 1.3, InactiveRatio: 0.05}},
		{"more assignments than pairs", gen.Spec{Seed: 3, Organizations: 2, Resources: 10, Assignments: 1_000, MembershipsPerOrg: 2, Depth: 3}},
		{"no resources", gen.Spec{Seed: 4, Organizations: 5, Assignments: 100, MembershipsPerOrg: 3}},
		{"zero spec", gen.Spec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := gen.Generate(tt.spec)
			orgs := max(tt.spec.Organizations, 1)
			perOrg := tt.spec.MembershipsPerOrg
			if perOrg == 0 {
				perOrg = 10
			}
			if got, want := len(ds.Organizations), orgs; got != want {
				t.Errorf("organizations: got %d, want %d", got, want)
			}
			if got, want := len(ds.Resources), tt.spec.Resources; got != want {
				t.Errorf("resources: got %d, want %d", got, want)
			}
			// Every organization gets at least one membership, so small
			// organizations may push the total a little over.
			if got, want := len(ds.Memberships), orgs*perOrg; got < want || got > want+orgs {
				t.Errorf("memberships: got %d, want %d..%d", got, want, want+orgs)
			}
			// Duplicates are dropped: allow a little under, never over.
			want := tt.spec.Assignments
			if tt.spec.Resources == 0 {
				want = 0
			}
			got := len(ds.Assignments)
			if got > want || (want >= 1000 && float64(got) < 0.95*float64(want) && tt.spec.Resources >= 1000) {
				t.Errorf("assignments: got %d, want about %d", got, want)
			}
			if tt.spec.InactiveRatio > 0 {
				inactive := 0
				for _, m := range ds.Memberships {
					if m.Status != model.StatusActive {
						inactive++
					}
				}
				if got := float64(inactive) / float64(len(ds.Memberships)); math.Abs(got-tt.spec.InactiveRatio) > 0.05 {
					t.Errorf("inactive ratio: got %.3f, want about %.3f", got, tt.spec.InactiveRatio)
				}
			}
		})
	}
}

func TestGenerateSkew(t *testing.T) {
	perOrg := func(ds *model.Dataset) map[string]int {
		n := map[string]int{}
		for _, r := range ds.Resources {
			n[r.OrganizationID]++
		}
		return n
	}
	uniform := perOrg(gen.Generate(gen.Spec{Seed: 1, Organizations: 50, Resources: 5000}))
	for org, n := range uniform {
		if n != 100 {
			t.Errorf("uniform: %s has %d resources, want 100", org, n)
		}
	}
	skewed := perOrg(gen.Generate(gen.Spec{Seed: 1, Organizations: 50, Resources: 5000, Skew: 1.5}))
	if first, last := skewed["org_1"], skewed["org_50"]; first < 20*last {
		t.Errorf("skew 1.5: org_1 has %d resources and org_50 %d, want a far larger first", first, last)
	}
}

// TestGenerateFanOut checks that fan-out within an organization is
// heavy-tailed (preferential attachment), not uniform: a few resources have
// far more children than the typical parent.
func TestGenerateFanOut(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 1, Resources: 20_000, Depth: 5})
	kids := map[string]int{}
	for _, r := range ds.Resources {
		kids[r.ParentID]++ // "" is the organization root
	}
	counts := slices.Sorted(maps.Values(kids))
	median, most := counts[len(counts)/2], counts[len(counts)-1]
	if most < 50*median {
		t.Errorf("fan-out: median %d children, most %d; want a heavy tail (most ≥ 50 × median)", median, most)
	}
}

func TestGenerateValid(t *testing.T) {
	for depth := 1; depth <= 7; depth++ {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			spec := gen.Spec{Seed: int64(depth), Organizations: 7, Resources: 3000, Assignments: 3000, MembershipsPerOrg: 6, Depth: depth, Skew: 1.1, InactiveRatio: 0.2}
			ds := gen.Generate(spec)
			checkValid(t, ds)
			if ds.Depth() < depth {
				t.Errorf("dataset max depth %d < spec depth %d", ds.Depth(), depth)
			}
			if got := maxLevels(ds); got != depth {
				t.Errorf("deepest tree has %d levels, want %d", got, depth)
			}
			if _, err := index.BuildAST(ds); err != nil {
				t.Fatalf("index.Build: %v", err)
			}
		})
	}
}

func TestGenerateTierS(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 100k resources")
	}
	spec, ok := gen.Spec{Seed: 1}.Tier("S")
	if !ok {
		t.Fatal("tier S missing")
	}
	ds := gen.Generate(spec)
	checkValid(t, ds)
	if got := maxLevels(ds); got != spec.Depth {
		t.Errorf("deepest tree has %d levels, want %d", got, spec.Depth)
	}
	if _, err := index.BuildAST(ds); err != nil {
		t.Fatalf("index.Build: %v", err)
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, tier := range []string{"S", "M"} {
		spec, _ := gen.Spec{Seed: 1}.Tier(tier)
		b.Run(tier, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				gen.Generate(spec)
			}
		})
	}
}

// maxLevels returns the number of levels of the deepest resource tree, the
// organization root included.
func maxLevels(ds *model.Dataset) int {
	parent := make(map[string]string, len(ds.Resources))
	for _, r := range ds.Resources {
		parent[r.ID] = r.ParentID
	}
	deepest := 1
	for _, r := range ds.Resources {
		levels := 2 // the resource and the root
		for p := r.ParentID; p != ""; p = parent[p] {
			levels++
		}
		deepest = max(deepest, levels)
	}
	return deepest
}

// checkValid fails t when ds breaks a rule of the data model.
func checkValid(t testing.TB, ds *model.Dataset) {
	t.Helper()
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestShared(t *testing.T) {
	a, b := gen.Shared("S"), gen.Shared("S")
	if a != b {
		t.Error("Shared generated tier S twice")
	}
	spec, _ := gen.Spec{Seed: 1}.Tier("S")
	if want := gen.Generate(spec); len(a.Resources) != len(want.Resources) || !reflect.DeepEqual(a.Resources[0], want.Resources[0]) {
		t.Errorf("Shared(S) is not tier S with seed 1: %d resources, want %d", len(a.Resources), len(want.Resources))
	}
	defer func() {
		if recover() == nil {
			t.Error("Shared(XL) did not panic")
		}
	}()
	gen.Shared("XL")
}

// The wide organization has its resources and the reach its memberships
// are named for.
func TestGenerateWide(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 3, Resources: 300, Assignments: 300, Depth: 5, Wide: true})
	checkValid(t, ds)
	n := 0
	for _, r := range ds.Resources {
		if r.OrganizationID == gen.WideOrganization {
			n++
		}
	}
	if n != gen.WideResources || gen.WideResources != 100_010 {
		t.Errorf("%d resources in %s, gen.WideResources %d", n, gen.WideOrganization, gen.WideResources)
	}
	if spec, ok := (gen.Spec{}).Tier("M+wide"); !ok || !spec.Wide {
		t.Errorf("tier M+wide: %+v %v", spec, ok)
	}
	if _, ok := (gen.Spec{}).Tier("S+wide"); ok {
		t.Error("tier S+wide (depth 4) exists")
	}
}
