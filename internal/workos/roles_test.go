package workos_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRolePriority(t *testing.T) { conformance(t, testRolePriority) }

// testRolePriority: roles are listed in priority order, a new one at the
// bottom; the order can be changed (environment roles, and an
// organization's custom roles, which follow them); a membership's role is
// its highest-priority one.
func testRolePriority(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	const oms = "/user_management/organization_memberships"
	orgRoles := "/authorization/organizations/" + f.org + "/roles"

	e.do("POST", "/authorization/roles", obj{"slug": "admin", "name": "Admin"}, 201)
	seeded := []string{"org-member", "workspace-admin", "project-viewer", "admin"}
	if got := slugs(t, e.do("GET", "/authorization/roles", nil, 200)); !slices.Equal(got, seeded) {
		t.Fatalf("environment roles = %v, want %v (a new role at the bottom)", got, seeded)
	}
	dana := e.do("POST", oms, obj{"organization_id": f.org, "user_id": "user_dana", "role_slugs": []string{"org-member", "admin"}}, 201)
	if !cmp.Equal(dana["role"], obj{"slug": "org-member"}) {
		t.Fatalf("dana's role = %v, want her highest-priority role org-member", dana["role"])
	}

	reordered := []string{"admin", "org-member", "workspace-admin", "project-viewer"}
	got := e.do("PUT", "/authorization/roles/priority", obj{"role_slugs": reordered}, 200)
	if !slices.Equal(slugs(t, got), reordered) || got["object"] != "list" {
		t.Fatalf("reorder answered %v, want the list in order %v", got, reordered)
	}
	if got := slugs(t, e.do("GET", "/authorization/roles", nil, 200)); !slices.Equal(got, reordered) {
		t.Fatalf("environment roles after reorder = %v, want %v", got, reordered)
	}
	dana = e.do("GET", oms+"/"+str(dana["id"]), nil, 200)
	if !cmp.Equal(dana["role"], obj{"slug": "admin"}) || !cmp.Equal(dana["roles"], []any{obj{"slug": "admin"}, obj{"slug": "org-member"}}) {
		t.Fatalf("after reorder dana has role %v, roles %v; want admin first", dana["role"], dana["roles"])
	}
	for name, bad := range map[string]obj{
		"one missing": {"role_slugs": reordered[1:]},
		"unknown":     {"role_slugs": append(slices.Clone(reordered), "nope")},
		"twice":       {"role_slugs": append(slices.Clone(reordered), "admin")},
		"none":        {},
	} {
		t.Run(name, func(t *testing.T) {
			e.wantError("PUT", "/authorization/roles/priority", bad, 422, "invalid_request_parameters")
		})
	}
	if got := slugs(t, e.do("GET", "/authorization/roles", nil, 200)); !slices.Equal(got, reordered) {
		t.Fatalf("a refused reorder changed the order to %v", got)
	}

	// Custom roles follow every environment role, in their own order.
	e.do("POST", orgRoles, obj{"slug": "org-billing", "name": "Billing"}, 201)
	e.do("POST", orgRoles, obj{"slug": "org-auditor", "name": "Auditor"}, 201)
	if got := slugs(t, e.do("GET", orgRoles, nil, 200)); !slices.Equal(got, append(slices.Clone(reordered), "org-billing", "org-auditor")) {
		t.Fatalf("organization roles = %v", got)
	}
	got = e.do("PUT", orgRoles+"/priority", obj{"role_slugs": []string{"org-auditor", "org-billing"}}, 200)
	if want := append(slices.Clone(reordered), "org-auditor", "org-billing"); !slices.Equal(slugs(t, got), want) {
		t.Fatalf("organization reorder answered %v, want %v", slugs(t, got), want)
	}
	e.wantError("PUT", orgRoles+"/priority", obj{"role_slugs": []string{"org-auditor", "org-billing", "admin"}}, 422, "invalid_request_parameters")
	e.wantError("PUT", "/authorization/organizations/org_missing/roles/priority", obj{"role_slugs": []string{}}, 404, "entity_not_found")
	erin := e.do("POST", oms, obj{"organization_id": f.org, "user_id": "user_erin", "role_slugs": []string{"org-billing", "org-auditor"}}, 201)
	if !cmp.Equal(erin["role"], obj{"slug": "org-auditor"}) {
		t.Fatalf("erin's role = %v, want org-auditor", erin["role"])
	}
}

func TestDefaultRole(t *testing.T) { conformance(t, testDefaultRole) }

// testDefaultRole: the environment's default role is set through the API;
// a membership always has a role: removing its last one, or deleting the
// role it holds, falls back to the default, which cannot be deleted.
func testDefaultRole(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	const oms = "/user_management/organization_memberships"
	if got := e.do("GET", "/authorization/default_role", nil, 200); !cmp.Equal(got, obj{"object": "default_role", "role_slug": nil}) {
		t.Fatalf("default role with none set and no member role = %v", got)
	}
	e.wantError("PUT", "/authorization/default_role", obj{"role_slug": "workspace-admin"}, 422, "invalid_request_parameters")
	e.wantError("PUT", "/authorization/default_role", obj{"role_slug": "nope"}, 422, "invalid_request_parameters")
	e.wantError("PUT", "/authorization/default_role", obj{}, 422, "invalid_request_parameters")
	if got := e.do("PUT", "/authorization/default_role", obj{"role_slug": "org-member"}, 200); got["role_slug"] != "org-member" {
		t.Fatalf("set default role answered %v", got)
	}
	if got := e.do("GET", "/authorization/default_role", nil, 200); got["role_slug"] != "org-member" {
		t.Fatalf("default role = %v, want org-member", got)
	}
	dana := e.do("POST", oms, obj{"organization_id": f.org, "user_id": "user_dana"}, 201)
	if !cmp.Equal(dana["roles"], []any{obj{"slug": "org-member"}}) {
		t.Fatalf("a membership created without roles has %v, want the default role", dana["roles"])
	}

	// Deleting the role a membership holds alone gives it the default one;
	// one that has another role keeps just that.
	e.do("POST", "/authorization/organizations/"+f.org+"/roles", obj{"slug": "org-billing", "name": "Billing"}, 201)
	erin := str(e.do("POST", oms, obj{"organization_id": f.org, "user_id": "user_erin", "role_slug": "org-billing"}, 201)["id"])
	both := str(e.do("POST", oms, obj{"organization_id": f.org, "user_id": "user_finn", "role_slugs": []string{"org-billing", "org-member"}}, 201)["id"])
	e.do("DELETE", "/authorization/organizations/"+f.org+"/roles/org-billing", nil, 204)
	for _, om := range []string{erin, both} {
		if got := e.do("GET", oms+"/"+om, nil, 200)["roles"]; !cmp.Equal(got, []any{obj{"slug": "org-member"}}) {
			t.Fatalf("after deleting its role, membership %s has roles %v, want the default role", om, got)
		}
	}

	// The default role cannot be deleted while it is the default.
	e.wantError("DELETE", "/authorization/roles/org-member", nil, 409, "conflict")
	e.do("POST", "/authorization/roles", obj{"slug": "viewer", "name": "Viewer"}, 201)
	e.do("PUT", "/authorization/default_role", obj{"role_slug": "viewer"}, 200)
	e.do("DELETE", "/authorization/roles/org-member", nil, 204)
	if got := e.do("GET", oms+"/"+erin, nil, 200)["roles"]; !cmp.Equal(got, []any{obj{"slug": "viewer"}}) {
		t.Fatalf("after deleting org-member, erin has roles %v, want the new default viewer", got)
	}
	if got := e.do("PUT", oms+"/"+erin, obj{"role_slugs": []string{}}, 200)["roles"]; !cmp.Equal(got, []any{obj{"slug": "viewer"}}) {
		t.Fatalf("erin's roles removed: %v, want the default role", got)
	}

	// Unset: WorkOS's default "member" applies when it exists.
	e.do("POST", "/authorization/roles", obj{"slug": "member", "name": "Member"}, 201)
	if got := e.do("PUT", "/authorization/default_role", obj{"role_slug": ""}, 200); got["role_slug"] != "member" {
		t.Fatalf("unset default role answered %v, want member", got)
	}
	e.wantError("DELETE", "/authorization/roles/member", nil, 409, "conflict")
	e.do("DELETE", "/authorization/roles/viewer", nil, 204)
}
