package relstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
)

// TestHashIndex: random inserts and removes agree with a Go map, through
// growth and backward shifts, with keys chosen to collide.
func TestHashIndex(t *testing.T) {
	keys := make([]uint64, 1) // entity → key
	const buckets = 64        // few distinct hashes: long probe runs
	hash := func(k uint64) uint64 { return mix(k % buckets) }
	x := newIndex(0, func(v uint32) uint64 { return hash(keys[v]) })
	want := map[uint64]uint32{}
	rnd := rand.New(rand.NewPCG(1, 2))
	find := func(k uint64) uint32 { return x.find(hash(k), func(v uint32) bool { return keys[v] == k }) }
	for i := range 20000 {
		k := rnd.Uint64N(3000)
		if _, ok := want[k]; ok && rnd.IntN(2) == 0 {
			if got := x.remove(hash(k), func(v uint32) bool { return keys[v] == k }); got != want[k] {
				t.Fatalf("step %d: remove %d: got %d, want %d", i, k, got, want[k])
			}
			delete(want, k)
		} else if !ok {
			keys = append(keys, k)
			v := uint32(len(keys) - 1)
			x.insert(v)
			want[k] = v
		}
		if x.n != len(want) {
			t.Fatalf("step %d: %d entries, want %d", i, x.n, len(want))
		}
		if i%1000 == 0 {
			for k, v := range want {
				if got := find(k); got != v {
					t.Fatalf("step %d: find %d: got %d, want %d", i, k, got, v)
				}
			}
			if got := find(1 << 40); got != 0 {
				t.Fatalf("step %d: found an absent key: %d", i, got)
			}
		}
	}
}

// TestChurnIsBounded: creating and deleting resources, assignments and
// memberships over and over, with their ever new ids, does not grow the
// store without bound: rows are reused and compaction reclaims the
// strings and lists.
func TestChurnIsBounded(t *testing.T) {
	st, err := build(&model.Dataset{
		Organizations: []model.Organization{{ID: "org_a"}},
		Roles:         []model.Role{{Slug: "r", ResourceType: "t"}, {Slug: "o", ResourceType: model.OrganizationType}},
	})
	if err != nil {
		t.Fatal(err)
	}
	round := func(r int) {
		for i := range 2000 {
			id := fmt.Sprintf("authz_resource_%d_%d", r, i)
			om := fmt.Sprintf("om_%d_%d", r, i)
			chs := []model.Change{
				{Op: model.OpUpsert, Resource: &model.Resource{ID: id, OrganizationID: "org_a", Type: "t", ExternalID: "ext-" + id}},
				{Op: model.OpUpsert, Membership: &model.Membership{ID: om, OrganizationID: "org_a", RoleSlugs: []string{"o"}}},
				{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "a", MembershipID: om, RoleSlug: "r", ResourceID: id}},
				{Op: model.OpDelete, Resource: &model.Resource{ID: id}},
				{Op: model.OpDelete, Membership: &model.Membership{ID: om}},
			}
			for _, ch := range chs {
				if err := st.apply(ch); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st.str.compactDue() || st.lists.compactDue() {
			st.compact()
		}
	}
	for r := range 20 {
		round(r)
	}
	early := st.heapBytes()
	for r := 20; r < 100; r++ {
		round(r)
	}
	late := st.heapBytes()
	if late > early*3/2 {
		t.Errorf("the store grew from %d to %d bytes under churn", early, late)
	}
	if n := st.res.len() - 1 - len(st.res.free); n != 1 {
		t.Errorf("%d live resources, want the root only", n)
	}
	if got := st.res.len(); got > 8 {
		t.Errorf("%d resource rows: deleted rows are not reused", got)
	}
}
