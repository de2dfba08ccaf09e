package relstore_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// bigGroup is one organization with a group of 1,000 members holding 100
// grants (on 100 workspaces), and one membership more, outside the group.
func bigGroup() *model.Dataset {
	ds := &model.Dataset{
		Revision:      1,
		Organizations: []model.Organization{{ID: "org_1"}},
		ResourceTypes: []model.ResourceType{{Slug: "workspace", ParentTypes: []string{model.OrganizationType}}},
		Permissions:   []model.Permission{{Slug: "workspace:view", ResourceType: "workspace"}},
		Roles:         []model.Role{{Slug: "viewer", ResourceType: "workspace", Permissions: []string{"workspace:view"}}},
		Groups:        []model.Group{{ID: "group_big", OrganizationID: "org_1", Name: "Big"}},
	}
	for i := range 1001 {
		om := "om_" + strconv.Itoa(i)
		ds.Memberships = append(ds.Memberships, model.Membership{ID: om, UserID: "user_" + strconv.Itoa(i), OrganizationID: "org_1", Status: model.StatusActive})
		if i < 1000 {
			ds.GroupMembers = append(ds.GroupMembers, model.GroupMember{GroupID: "group_big", MembershipID: om})
		}
	}
	for i := range 100 {
		rid := "authz_resource_" + strconv.Itoa(i)
		ds.Resources = append(ds.Resources, model.Resource{ID: rid, OrganizationID: "org_1", Type: "workspace", ExternalID: rid})
		ds.Assignments = append(ds.Assignments, model.Assignment{ID: "role_assignment_" + strconv.Itoa(i), GroupID: "group_big", RoleSlug: "viewer", ResourceID: rid})
	}
	return ds
}

// BenchmarkApplyGroupMember adds and removes a member of a group of 1,000
// members with 100 group grants, each change applied in a write
// transaction of its own (target ≤ 1 ms per change, applied):
//
//	go test -run '^$' -bench ApplyGroupMember -benchtime 2s -count 5 ./internal/relstore/
func BenchmarkApplyGroupMember(b *testing.B) {
	ds := bigGroup()
	ref, rel := newReference(b, ds), loaded(b, ds, relstore.Options{})
	gm := model.GroupMember{GroupID: "group_big", MembershipID: "om_1000"}
	rev := int64(1)
	applies := []struct {
		name  string
		apply func([]model.Change) error
	}{
		{"inmem", func(chs []model.Change) error { rev++; return ref.apply(rev, chs) }},
		{"relstore", func(chs []model.Change) error { rev++; return apply(rel, rev, chs) }},
	}
	const perOp = 256
	for _, ap := range applies {
		b.Run(ap.name, func(b *testing.B) {
			runtime.GC()
			cpu0, loops := cpuTime(), 0
			for b.Loop() {
				loops++
				for i := range perOp {
					op := []model.Op{model.OpUpsert, model.OpDelete}[i%2]
					if err := ap.apply([]model.Change{{Op: op, GroupMember: &gm}}); err != nil {
						b.Fatal(fmt.Errorf("%s: %w", op, err))
					}
				}
			}
			applies := float64(loops * perOp)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/applies, "ns/apply")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/applies, "cpu-ns/apply")
		})
	}
}

// BenchmarkStoreGroups reports the compact store's heap for a tier
// without groups and with them ("+groups": 10 groups per organization,
// each membership in 0–3, 20 % of the same number of assignments to
// groups), and their ratio (target ≤ 1.2):
//
//	go test -run '^$' -bench StoreGroups/M -benchtime 1x ./internal/relstore/
func BenchmarkStoreGroups(b *testing.B) {
	for _, tier := range []string{"S", "M"} {
		b.Run(tier, func(b *testing.B) {
			var heap [2]float64
			for i, name := range []string{tier, tier + "+groups"} {
				spec, _ := gen.Spec{Seed: 1}.Tier(name)
				s := loaded(b, gen.Generate(spec), relstore.Options{})
				heap[i] = float64(s.HeapBytes())
			}
			for b.Loop() {
			}
			b.ReportMetric(heap[0]/(1<<20), "MiB-without")
			b.ReportMetric(heap[1]/(1<<20), "MiB-with")
			b.ReportMetric(heap[1]/heap[0], "x-with/without")
		})
	}
}
