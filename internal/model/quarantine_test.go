package model

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAttribute(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *Dataset)
		want   [][]string // the Organizations of each problem, in Validate's order
	}{
		{"tree too deep", func(d *Dataset) {
			d.MaxDepth = 3
		}, [][]string{{"org_a"}}},
		{"cycle", func(d *Dataset) { d.Resources[1].ParentID = "r_app" },
			[][]string{{"org_a"}, {"org_a"}}},
		{"parent in another organization", func(d *Dataset) { d.Resources[3].ParentID = "r_ws" },
			[][]string{{"org_a", "org_b"}}},
		{"resource id used by two organizations", func(d *Dataset) { d.Resources[3].ID = "r_ws" },
			[][]string{{"org_a", "org_b"}, {"org_b"}}}, // then org_b's assignment names a resource no longer there
		{"membership id used by two organizations", func(d *Dataset) { d.Memberships[1].ID = "om_a1" },
			[][]string{{"org_a", "org_b"}, {"org_b"}}},
		{"assignment across organizations", func(d *Dataset) { d.Assignments[2].ResourceID = "r_ws" },
			[][]string{{"org_a", "org_b"}}},
		{"organization role", func(d *Dataset) { d.Roles[4].Permissions = []string{"nope"} },
			[][]string{{"org_a"}}},
		{"unknown organization of a membership", func(d *Dataset) { d.Memberships[1].OrganizationID = "org_x" },
			[][]string{{"org_x"}, {"org_b", "org_x"}}},
		{"environment role is shared", func(d *Dataset) { d.Roles[3].Permissions = []string{"workspace:view"} },
			[][]string{nil}},
		{"resource type is shared", func(d *Dataset) { d.ResourceTypes[1].ParentTypes = []string{"nope"} },
			[][]string{nil, nil, {"org_a"}}}, // and what it breaks: an environment role's, org_a's project's
		{"dataset is shared", func(d *Dataset) { d.MaxDepth = -1 }, [][]string{nil}},
		{"resource without an organization", func(d *Dataset) { d.Resources[0].OrganizationID = "" },
			[][]string{nil, {"org_a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDataset()
			tt.change(d)
			var verr *ValidationError
			if !errors.As(d.Validate(), &verr) {
				t.Fatal("Validate() = nil, want problems")
			}
			var got [][]string
			for _, p := range verr.Problems {
				got = append(got, p.Organizations)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Organizations per problem (-want +got):\n%s\nproblems: %v", diff, verr)
			}
		})
	}
}

func TestIsolate(t *testing.T) {
	t.Run("valid data is returned as is", func(t *testing.T) {
		d := validDataset()
		got, err := d.Isolate()
		if err != nil || got != d {
			t.Fatalf("Isolate() = %p, %v; want %p, nil", got, err, d)
		}
	})

	t.Run("an organization breaking a rule is held out", func(t *testing.T) {
		d := validDataset()
		d.Resources[2].ParentID = "r_app" // r_app is its own parent: a cycle in org_a
		got, err := d.Isolate()
		if err != nil {
			t.Fatalf("Isolate() error = %v", err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("the isolated dataset is invalid: %v", err)
		}
		want := &Dataset{
			Organizations: []Organization{{ID: "org_b", Name: "B"}},
			ResourceTypes: d.ResourceTypes,
			Permissions:   d.Permissions,
			Roles:         d.Roles[:4], // org_a's billing role is gone
			Memberships:   d.Memberships[1:],
			Resources:     d.Resources[3:],
			Assignments:   d.Assignments[2:],
		}
		q := got.Quarantined
		got.Quarantined = nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("isolated dataset (-want +got):\n%s", diff)
		}
		if len(q) != 1 || q[0].Organization != "org_a" || !slices.ContainsFunc(q[0].Problems, func(p Problem) bool { return p.Code == CodeCycle }) {
			t.Fatalf("Quarantined = %+v, want org_a with its cycle", q)
		}
		if diff := cmp.Diff([]string{RootResourceID("org_a"), "r_ws", "r_proj", "r_app"}, q[0].Resources); diff != "" {
			t.Errorf("quarantined resources (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"om_a1"}, q[0].Memberships); diff != "" {
			t.Errorf("quarantined memberships (-want +got):\n%s", diff)
		}
		if d.Validate() == nil || len(d.Organizations) != 2 {
			t.Error("Isolate modified its receiver")
		}
	})

	t.Run("a link between two organizations holds both out", func(t *testing.T) {
		d := validDataset()
		d.Assignments[2].ResourceID = "r_ws" // om_b1 (org_b) on r_ws (org_a)
		got, err := d.Isolate()
		if err != nil {
			t.Fatal(err)
		}
		var orgs []string
		for _, q := range got.Quarantined {
			orgs = append(orgs, q.Organization)
		}
		if diff := cmp.Diff([]string{"org_a", "org_b"}, orgs); diff != "" {
			t.Errorf("quarantined (-want +got):\n%s", diff)
		}
		if len(got.Organizations)+len(got.Resources)+len(got.Memberships)+len(got.Assignments) != 0 {
			t.Errorf("rows of held-out organizations remain: %+v", got)
		}
	})

	t.Run("a shared problem fails", func(t *testing.T) {
		d := validDataset()
		d.Resources[2].ParentID = "r_app"
		d.Roles[0].Permissions = append(d.Roles[0].Permissions, "nope")
		got, err := d.Isolate()
		var verr *ValidationError
		if got != nil || !errors.As(err, &verr) || len(verr.Problems) != 3 {
			t.Fatalf("Isolate() = %v, %v; want nil and all 3 problems", got, err)
		}
	})
}

func TestQuarantineSetRoute(t *testing.T) {
	s := NewQuarantineSet([]Quarantine{{Organization: "org_q", Resources: []string{"r_q1"}, Memberships: []string{"om_q1"}}})
	steps := []struct {
		name string
		ch   Change
		want string
	}{
		{"resource of a healthy organization", Change{Op: OpUpsert, Resource: &Resource{ID: "r_1", OrganizationID: "org_a"}}, ""},
		{"resource created in the quarantined organization", Change{Op: OpUpsert, Resource: &Resource{ID: "r_q2", OrganizationID: "org_q"}}, "org_q"},
		{"assignment on the new resource", Change{Op: OpUpsert, Assignment: &Assignment{MembershipID: "om_x", ResourceID: "r_q2"}}, "org_q"},
		{"membership created there", Change{Op: OpUpsert, Membership: &Membership{ID: "om_q2", OrganizationID: "org_q"}}, "org_q"},
		{"assignment of the new membership", Change{Op: OpUpsert, Assignment: &Assignment{MembershipID: "om_q2", ResourceID: "r_elsewhere"}}, "org_q"},
		{"membership delete carries only the id", Change{Op: OpDelete, Membership: &Membership{ID: "om_q1"}}, "org_q"},
		{"assignment of the deleted membership is no longer recognised", Change{Op: OpDelete, Assignment: &Assignment{MembershipID: "om_q1", ResourceID: "r_1"}}, ""},
		{"delete of a healthy membership", Change{Op: OpDelete, Membership: &Membership{ID: "om_a"}}, ""},
		{"organization role", Change{Op: OpUpsert, Role: &Role{Slug: "x", OrganizationID: "org_q"}}, "org_q"},
		{"environment role", Change{Op: OpUpsert, Role: &Role{Slug: "x"}}, ""},
		{"the organization itself", Change{Op: OpDelete, Organization: &Organization{ID: "org_q"}}, "org_q"},
		{"a permission", Change{Op: OpUpsert, Permission: &Permission{Slug: "p"}}, ""},
	}
	for _, st := range steps {
		got, held := s.Route(st.ch)
		if got != st.want || held != (st.want != "") {
			t.Errorf("%s: Route() = %q, %v; want %q", st.name, got, held, st.want)
		}
	}
	s.Delete("org_q")
	if got, held := s.Route(Change{Op: OpUpsert, Resource: &Resource{ID: "r_q1", OrganizationID: "org_q"}}); held {
		t.Errorf("after Delete, Route() = %q, want not held", got)
	}
	if s.Len() != 0 || len(s.resources)+len(s.memberships) != 0 {
		t.Errorf("Delete left ids behind: %+v", s)
	}
}

func TestChangeSchema(t *testing.T) {
	for _, tt := range []struct {
		ch   Change
		want bool
	}{
		{Change{ResourceType: &ResourceType{}}, true},
		{Change{Permission: &Permission{}}, true},
		{Change{Role: &Role{}}, true},
		{Change{Role: &Role{OrganizationID: "org_a"}}, false},
		{Change{Resource: &Resource{}}, false},
	} {
		if got := tt.ch.Schema(); got != tt.want {
			t.Errorf("%+v.Schema() = %v, want %v", tt.ch, got, tt.want)
		}
	}
}

// TestOnly keeps one organization's rows and the shared data, and the
// result is valid on its own.
func TestOnly(t *testing.T) {
	d := validDataset()
	d.Groups = []Group{{ID: "group_a", OrganizationID: "org_a", Name: "A"}, {ID: "group_b", OrganizationID: "org_b", Name: "B"}}
	d.GroupMembers = []GroupMember{{GroupID: "group_a", MembershipID: "om_a1"}, {GroupID: "group_b", MembershipID: "om_b1"}}
	d.Assignments = append(d.Assignments, Assignment{ID: "as_g", GroupID: "group_b", RoleSlug: "member", ResourceID: RootResourceID("org_b")})
	d.Quarantined = []Quarantine{{Organization: "org_a"}, {Organization: "org_b"}}
	before := len(d.Assignments)
	got := d.Only(func(org string) bool { return org == "org_b" })
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	ids := func(n int, id func(int) string) []string {
		out := make([]string, n)
		for i := range n {
			out[i] = id(i)
		}
		return out
	}
	for what, pair := range map[string][2][]string{
		"organizations": {ids(len(got.Organizations), func(i int) string { return got.Organizations[i].ID }), {"org_b"}},
		"memberships":   {ids(len(got.Memberships), func(i int) string { return got.Memberships[i].ID }), {"om_b1"}},
		"resources":     {ids(len(got.Resources), func(i int) string { return got.Resources[i].ID }), {"r_bws"}},
		"assignments":   {ids(len(got.Assignments), func(i int) string { return got.Assignments[i].ID }), {"as_3", "as_g"}},
		"roles":         {ids(len(got.Roles), func(i int) string { return got.Roles[i].Slug }), {"org-admin", "member", "ws-admin", "proj-editor"}},
		"groups":        {ids(len(got.Groups), func(i int) string { return got.Groups[i].ID }), {"group_b"}},
		"group members": {ids(len(got.GroupMembers), func(i int) string { return got.GroupMembers[i].GroupID }), {"group_b"}},
		"quarantined":   {ids(len(got.Quarantined), func(i int) string { return got.Quarantined[i].Organization }), {"org_b"}},
	} {
		if diff := cmp.Diff(pair[1], pair[0]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	if len(got.ResourceTypes) != len(d.ResourceTypes) || len(got.Permissions) != len(d.Permissions) {
		t.Error("the shared data was not kept whole")
	}
	if len(d.Assignments) != before || len(d.Organizations) != 2 {
		t.Error("Only modified its receiver")
	}
}
