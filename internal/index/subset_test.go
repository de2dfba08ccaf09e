package index_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

func keysOf(m any) []string {
	var ks []string
	mm, _ := m.(map[string]any)
	for k := range mm {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestOrganization(t *testing.T) {
	doc := jsonOf(t, build(t, small())).(map[string]any)
	for _, tc := range []struct {
		org                                 string
		resources, memberships, roles, orgs []string
	}{
		{"org_a", []string{rootA, "r_p1", "r_p2", "r_ws1"}, []string{"om_1", "om_2"}, []string{"admin", "org_a/billing", "ws-admin"}, []string{"org_a"}},
		{"org_b", []string{"r_wsb", "root_b"}, []string{"om_3"}, []string{"admin", "ws-admin"}, []string{"org_b"}},
	} {
		t.Run(tc.org, func(t *testing.T) {
			sub, ok := index.Organization(doc, tc.org)
			if !ok {
				t.Fatal("organization not found")
			}
			got := [][]string{keysOf(sub["resources"]), keysOf(sub["memberships"]), keysOf(sub["roles"]), keysOf(sub["orgs"])}
			want := [][]string{tc.resources, tc.memberships, tc.roles, tc.orgs}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("subset (-got +want):\n%s", diff)
			}
			if got, want := [][]string{keysOf(sub["attributes"]), keysOf(sub["org_attributes"])}, map[string][][]string{
				"org_a": {{"r_p1"}, {}}, "org_b": {{}, {"org_b"}},
			}[tc.org]; !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
				t.Errorf("attributes %v, want %v", got, want)
			}
			if !slices.Equal(keysOf(sub["permissions"]), keysOf(doc["permissions"])) {
				t.Error("every permission belongs in every subset")
			}
		})
	}
	if _, ok := index.Organization(doc, "org_none"); ok {
		t.Error("an unknown organization has a subset")
	}
}

// TestOrganizationGroups: an organization's subset holds its groups, its
// memberships' groups and its groups' grants, and no other organization's.
func TestOrganizationGroups(t *testing.T) {
	ds := small()
	ds.Groups = []model.Group{{ID: "group_a", OrganizationID: "org_a", Name: "A"}, {ID: "group_b", OrganizationID: "org_b", Name: "B"}}
	ds.GroupMembers = []model.GroupMember{{GroupID: "group_a", MembershipID: "om_1"}, {GroupID: "group_b", MembershipID: "om_3"}}
	ds.Assignments = append(ds.Assignments, model.Assignment{ID: "ra_g", GroupID: "group_a", RoleSlug: "ws-admin", ResourceID: "r_ws1"})
	doc := jsonOf(t, build(t, ds)).(map[string]any)
	sub, ok := index.Organization(doc, "org_a")
	if !ok {
		t.Fatal("organization not found")
	}
	got := [][]string{keysOf(sub["groups"]), keysOf(sub["member_groups"]), keysOf(sub["grants"].(map[string]any)["r_ws1"])}
	want := [][]string{{"group_a"}, {"om_1"}, {"group_a", "om_2"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("subset (-got +want):\n%s", diff)
	}
}
