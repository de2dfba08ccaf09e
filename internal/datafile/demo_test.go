package datafile

import (
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
)

func TestDemo(t *testing.T) {
	d := Demo() // panics if demo.yaml is invalid
	if err := d.Validate(); err != nil {
		t.Fatalf("Demo().Validate() = %v", err)
	}

	// Documentation cites these: keep them stable.
	resources := make(map[string]model.Resource)
	for _, r := range d.Resources {
		resources[r.ID] = r
	}
	parents := map[string]string{
		"authz_resource_acme_eng":         "",
		"authz_resource_acme_sales":       "",
		"authz_resource_acme_api":         "authz_resource_acme_eng",
		"authz_resource_acme_web":         "authz_resource_acme_eng",
		"authz_resource_acme_crm":         "authz_resource_acme_sales",
		"authz_resource_acme_api_gateway": "authz_resource_acme_api",
		"authz_resource_globex_rnd":       "",
		"authz_resource_globex_lab":       "authz_resource_globex_rnd",
	}
	for id, parent := range parents {
		r, ok := resources[id]
		if !ok {
			t.Errorf("demo has no resource %s", id)
			continue
		}
		if r.ParentID != parent {
			t.Errorf("demo resource %s has parent %q, want %q", id, r.ParentID, parent)
		}
	}
	if len(d.Resources) != len(parents) {
		t.Errorf("demo has %d resources, want %d", len(d.Resources), len(parents))
	}

	members := make(map[string]model.Membership)
	for _, m := range d.Memberships {
		members[m.ID] = m
	}
	for id, want := range map[string]string{
		"om_alice": "org_acme/active/org-admin",
		"om_bob":   "org_acme/active/org-member",
		"om_carol": "org_acme/active/org-member",
		"om_dave":  "org_acme/inactive/org-member",
		"om_erin":  "org_globex/active/org-member",
		"om_frank": "org_globex/active/org-admin",
	} {
		m := members[id]
		if got := m.OrganizationID + "/" + m.Status + "/" + join(m.RoleSlugs); got != want {
			t.Errorf("demo membership %s = %s, want %s", id, got, want)
		}
	}

	assigned := make(map[string]bool)
	for _, a := range d.Assignments {
		assigned[a.MembershipID+" "+a.RoleSlug+" "+a.ResourceID] = true
	}
	for _, want := range []string{
		"om_bob workspace-admin authz_resource_acme_eng",
		"om_carol project-editor authz_resource_acme_web",
		"om_dave workspace-admin authz_resource_acme_sales",
		"om_erin workspace-viewer authz_resource_globex_rnd",
	} {
		if !assigned[want] {
			t.Errorf("demo lacks assignment %q", want)
		}
	}
	if r, ok := d.ResolveRole("org_acme", "acme-billing-admin"); !ok || r.ResourceType != model.OrganizationType {
		t.Errorf("demo: acme-billing-admin does not resolve in org_acme to an organization role")
	}
}

func TestDemoReturnsAFreshCopy(t *testing.T) {
	a := Demo()
	a.Resources[0].ParentID = "mutated"
	a.Roles[0].Permissions[0] = "mutated"
	b := Demo()
	if b.Resources[0].ParentID == "mutated" || b.Roles[0].Permissions[0] == "mutated" {
		t.Error("Demo() shares data between calls")
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// TestIDsHaveTheirShape: the ids of the demo and of the test data files,
// explicit and derived, are of the shape the admin API requires
// (model.CheckID), so they can be written through it as they load.
func TestIDsHaveTheirShape(t *testing.T) {
	small, err := Load("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*model.Dataset{"demo": Demo(), "small.yaml": small} {
		check := func(prefix, id string) {
			if err := model.CheckID(prefix, id); id != "" && err != nil {
				t.Errorf("%s: %q %v", name, id, err)
			}
		}
		for _, o := range d.Organizations {
			check(model.PrefixOrganization, o.ID)
			check(model.PrefixResource, o.RootID())
		}
		for _, m := range d.Memberships {
			check(model.PrefixMembership, m.ID)
			check(model.PrefixUser, m.UserID)
		}
		for _, r := range d.Resources {
			check(model.PrefixResource, r.ID)
			check(model.PrefixResource, r.ParentID)
		}
		for _, a := range d.Assignments {
			check(model.PrefixAssignment, a.ID)
			check(model.PrefixResource, a.ResourceID)
		}
	}
}
