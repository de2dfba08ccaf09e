package index_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

// readOnly is an index.Store over a built document that refuses writes:
// ScopeOf only reads.
type readOnly struct{ doc ast.Value }

func (s readOnly) Get(path ...string) (ast.Value, bool, error) {
	v := s.doc
	for _, k := range path {
		var t *ast.Term
		switch x := v.(type) {
		case ast.Object:
			t = x.Get(ast.StringTerm(k))
		case *ast.Array:
			if i, err := strconv.Atoi(k); err == nil && i < x.Len() {
				t = x.Elem(i)
			}
		}
		if t == nil {
			return nil, false, nil
		}
		v = t.Value
	}
	return v, true, nil
}

func (readOnly) Put(ast.Value, ...string) error { return errors.New("read-only") }
func (readOnly) Delete(...string) error         { return errors.New("read-only") }
func (readOnly) Scan(func(string, ast.Value) bool, ...string) error {
	return errors.New("read-only: ScopeOf does not scan")
}

func TestScopeOf(t *testing.T) {
	s := readOnly{build(t, small())}
	a := func(orgs ...string) index.Scope { return index.Scope{Orgs: orgs} }
	m := func(oms ...string) index.Scope { return index.Scope{Memberships: oms} }
	shared := index.Scope{Shared: true}
	tests := []struct {
		name string
		ch   model.Change
		want index.Scope
	}{
		{"organization upsert", model.Change{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_c"}}, a("org_c")},
		{"organization delete", model.Change{Op: model.OpDelete, Organization: &model.Organization{ID: "org_b"}}, a("org_b")},
		{"new resource", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_new", OrganizationID: "org_a", Type: "project", ExternalID: "p9", ParentID: "r_ws1"}}, a("org_a")},
		{"re-parent to the root", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_p1", OrganizationID: "org_a", Type: "project", ExternalID: "p1"}}, a("org_a")},
		{"resource moving to another organization", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_p1", OrganizationID: "org_b", Type: "project", ExternalID: "p1"}}, index.Scope{Shared: true, Orgs: []string{"org_b"}}},
		{"parent in another organization", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_new", OrganizationID: "org_a", Type: "project", ExternalID: "p9", ParentID: "r_wsb"}}, index.Scope{Shared: true, Orgs: []string{"org_a"}}},
		{"resource delete by id", model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "r_wsb"}}, a("org_b")},
		{"resource delete naming its organization", model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "r_gone", OrganizationID: "org_b"}}, a("org_b")},
		{"delete of a resource nobody knows", model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "r_gone"}}, shared},
		{"new membership", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_9", OrganizationID: "org_b", Status: model.StatusActive}}, m("om_9")},
		{"membership status", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_1", OrganizationID: "org_a", Status: model.StatusInactive}}, m("om_1")},
		{"membership moving to another organization", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_1", OrganizationID: "org_b"}}, index.Scope{Shared: true, Memberships: []string{"om_1"}}},
		{"membership delete by id", model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: "om_3"}}, m("om_3")},
		{"delete of a membership nobody knows", model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: "om_9"}}, m("om_9")},
		{"assignment", model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_9", MembershipID: "om_1", RoleSlug: "ws-admin", ResourceID: "r_ws1"}}, m("om_1")},
		{"assignment delete", model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_2", MembershipID: "om_3", RoleSlug: "ws-admin", ResourceID: "r_wsb"}}, m("om_3")},
		{"assignment delete after its resource and membership", model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_8", MembershipID: "om_9", RoleSlug: "ws-admin", ResourceID: "r_gone"}}, m("om_9")},
		{"organization role", model.Change{Op: model.OpUpsert, Role: &model.Role{Slug: "billing", OrganizationID: "org_a", ResourceType: model.OrganizationType}}, a("org_a")},
		{"organization role delete", model.Change{Op: model.OpDelete, Role: &model.Role{Slug: "billing", OrganizationID: "org_a"}}, a("org_a")},
		{"environment role", model.Change{Op: model.OpUpsert, Role: &model.Role{Slug: "admin", ResourceType: model.OrganizationType}}, shared},
		{"environment role delete", model.Change{Op: model.OpDelete, Role: &model.Role{Slug: "ws-admin"}}, shared},
		{"permission", model.Change{Op: model.OpUpsert, Permission: &model.Permission{Slug: "p:view", ResourceType: "project"}}, shared},
		{"permission delete", model.Change{Op: model.OpDelete, Permission: &model.Permission{Slug: "p:edit"}}, shared},
		{"resource type", model.Change{Op: model.OpUpsert, ResourceType: &model.ResourceType{Slug: "folder", ParentTypes: []string{"project"}}}, shared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := index.ScopeOf(s, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ScopeOf (-got +want):\n%s", d)
			}
		})
	}
	if _, err := index.ScopeOf(s, model.Change{Op: model.OpUpsert}); err == nil {
		t.Error("ScopeOf of a change naming no entity: no error")
	}
}

// TestScopeOfGroups: a change to a group or its grants is its
// organization's (every member's checks read it); a member's change is
// the membership's.
func TestScopeOfGroups(t *testing.T) {
	ds := small()
	ds.Groups = []model.Group{{ID: "group_a", OrganizationID: "org_a", Name: "A"}}
	s := readOnly{build(t, ds)}
	a := func(orgs ...string) index.Scope { return index.Scope{Orgs: orgs} }
	for _, tt := range []struct {
		name string
		ch   model.Change
		want index.Scope
	}{
		{"group rename", model.Change{Op: model.OpUpsert, Group: &model.Group{ID: "group_a", OrganizationID: "org_a", Name: "B"}}, a("org_a")},
		{"group delete by id", model.Change{Op: model.OpDelete, Group: &model.Group{ID: "group_a"}}, a("org_a")},
		{"new group", model.Change{Op: model.OpUpsert, Group: &model.Group{ID: "group_new", OrganizationID: "org_b", Name: "N"}}, a("org_b")},
		{"group moving to another organization", model.Change{Op: model.OpUpsert, Group: &model.Group{ID: "group_a", OrganizationID: "org_b"}}, index.Scope{Shared: true}},
		{"member", model.Change{Op: model.OpUpsert, GroupMember: &model.GroupMember{GroupID: "group_a", MembershipID: "om_1"}}, index.Scope{Memberships: []string{"om_1"}}},
		{"group assignment", model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_g", GroupID: "group_a", RoleSlug: "ws-admin", ResourceID: "r_ws1"}}, a("org_a")},
		{"group assignment delete after its group", model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_g", GroupID: "group_gone", RoleSlug: "ws-admin", ResourceID: "r_wsb"}}, a("org_b")},
		{"group assignment delete after its group and resource", model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_g", GroupID: "group_gone", ResourceID: "r_gone"}}, index.Scope{Shared: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := index.ScopeOf(s, tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ScopeOf (-got +want):\n%s", d)
			}
		})
	}
}

func TestScopeAdd(t *testing.T) {
	var s index.Scope
	s.Add(index.Scope{Orgs: []string{"org_a", "org_b"}, Memberships: []string{"om_1"}})
	s.Add(index.Scope{Orgs: []string{"org_b"}, Memberships: []string{"om_1", "om_2"}})
	if s.Shared || !cmp.Equal(s.Orgs, []string{"org_a", "org_b"}) || !cmp.Equal(s.Memberships, []string{"om_1", "om_2"}) {
		t.Fatalf("after two scopes: %+v", s)
	}
	s.Add(index.Scope{Shared: true})
	if !s.Shared || len(s.Orgs) != 2 {
		t.Fatalf("after a shared scope: %+v", s)
	}
}
