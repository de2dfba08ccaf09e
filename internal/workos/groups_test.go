package workos_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGroups(t *testing.T) { conformance(t, testGroups) }

// testGroups drives every group route as SDK 11.0.0 sends it: the group
// object, its members, its role assignments (by id, by criteria, replaced),
// and the decisions they make, which change at the next request.
func testGroups(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	groups := "/organizations/" + f.org + "/groups"
	check := func(om, perm, resource string) bool {
		t.Helper()
		return e.do("POST", "/authorization/organization_memberships/"+om+"/check",
			obj{"permission_slug": perm, "resource_id": resource}, 200)["authorized"].(bool)
	}

	// The group object; description null when none.
	g := e.do("POST", groups, obj{"name": "Platform", "description": nil}, 201)
	gid := str(g["id"])
	if diff := cmp.Diff(obj{"object": "group", "organization_id": f.org, "name": "Platform", "description": nil}, shape(t, g, "group_")); diff != "" {
		t.Fatalf("created group (-want +got):\n%s", diff)
	}
	if got := e.do("GET", groups+"/"+gid, nil, 200); got["name"] != "Platform" {
		t.Fatalf("get group = %v", got)
	}
	// updateGroup sends description null when the caller leaves it out:
	// that keeps it; "" clears it.
	e.do("PATCH", groups+"/"+gid, obj{"name": "Platform", "description": "infra"}, 200)
	if got := e.do("PATCH", groups+"/"+gid, obj{"name": "Platform Eng", "description": nil}, 200); got["description"] != "infra" || got["name"] != "Platform Eng" {
		t.Fatalf("update with description null = %v, want the description kept", got)
	}
	if got := e.do("PATCH", groups+"/"+gid, obj{"description": ""}, 200); got["description"] != nil {
		t.Fatalf("update with description \"\" = %v, want it cleared", got)
	}
	other := str(e.do("POST", groups, obj{"name": "Ops"}, 201)["id"])
	if got := ids(t, e.do("GET", groups+"?order=asc", nil, 200)); !slices.Equal(got, []string{gid, other}) {
		t.Fatalf("list groups = %v, want %v", got, []string{gid, other})
	}
	if got := ids(t, e.do("GET", groups+"?limit=1&order=desc", nil, 200)); !slices.Equal(got, []string{other}) {
		t.Fatalf("list groups limit 1 desc = %v", got)
	}

	// A retried create (same Idempotency-Key) is answered again, not run again.
	first := e.do("POST", groups, obj{"name": "Retried"}, 201, "Idempotency-Key", "group-create-1")
	if again := e.do("POST", groups, obj{"name": "Retried"}, 201, "Idempotency-Key", "group-create-1"); again["id"] != first["id"] {
		t.Fatalf("a retried create made group %v after %v", again["id"], first["id"])
	}
	if got := ids(t, e.do("GET", groups, nil, 200)); len(got) != 3 {
		t.Fatalf("groups after a retried create = %v, want 3", got)
	}
	e.do("DELETE", groups+"/"+str(first["id"]), nil, 204)

	// Members.
	members := groups + "/" + gid + "/organization-memberships"
	if got := e.do("POST", members, obj{"organization_membership_id": f.bob}, 201); got["object"] != "group" || got["id"] != gid {
		t.Fatalf("add member answered %v, want the group", got)
	}
	e.wantError("POST", members, obj{"organization_membership_id": f.bob}, 409, "conflict")
	if got := ids(t, e.do("GET", members, nil, 200)); !slices.Equal(got, []string{f.bob}) {
		t.Fatalf("members = %v, want [bob]", got)
	}
	if got := ids(t, e.do("GET", "/user_management/organization_memberships/"+f.bob+"/groups", nil, 200)); !slices.Equal(got, []string{gid}) {
		t.Fatalf("bob's groups = %v, want [%s]", got, gid)
	}

	// A role for the group on a resource grants its members there and below.
	gra := "/authorization/groups/" + gid + "/role_assignments"
	if check(f.bob, "project:edit", f.web) {
		t.Fatal("bob may edit web before any group grant")
	}
	a := e.do("POST", gra, obj{"role_slug": "workspace-admin", "resource_id": f.eng}, 201)
	want := obj{"object": "group_role_assignment", "group_id": gid, "role": obj{"slug": "workspace-admin"},
		"resource": obj{"id": f.eng, "external_id": "eng", "resource_type_slug": "workspace"}}
	if diff := cmp.Diff(want, shape(t, a, "gra_")); diff != "" {
		t.Fatalf("group role assignment (-want +got):\n%s", diff)
	}
	if !check(f.bob, "project:edit", f.web) {
		t.Fatal("a group grant on eng does not reach its member on eng's project at the next request")
	}
	if check(f.alice, "project:edit", f.ops) || check(f.bob, "project:edit", f.ops) {
		t.Fatal("the group grant reaches a sibling workspace")
	}
	e.wantError("POST", gra, obj{"role_slug": "workspace-admin", "resource_id": f.eng}, 409, "conflict")

	// The member's role assignments list the group's, marked as such; they
	// are not the member's to delete, and the resource's list (direct
	// assignments) leaves them out.
	var fromGroup []obj
	for _, ra := range e.do("GET", "/authorization/organization_memberships/"+f.bob+"/role_assignments?limit=100", nil, 200)["data"].([]any) {
		if src := ra.(obj)["source"].(obj); src["type"] == "group" {
			fromGroup = append(fromGroup, ra.(obj))
		} else if src["type"] != "direct" || src["group_role_assignment_id"] != nil {
			t.Fatalf("a direct role assignment has source %v", src)
		}
	}
	if len(fromGroup) != 1 || fromGroup[0]["id"] != a["id"] || fromGroup[0]["source"].(obj)["group_role_assignment_id"] != a["id"] ||
		fromGroup[0]["role"].(obj)["slug"] != "workspace-admin" || fromGroup[0]["resource"].(obj)["id"] != f.eng ||
		fromGroup[0]["organization_membership_id"] != f.bob {
		t.Fatalf("bob's role assignments through groups = %v, want the one of group role assignment %v", fromGroup, a["id"])
	}
	if got := ids(t, e.do("GET", "/authorization/organization_memberships/"+f.bob+"/role_assignments?resource_type_slug=project", nil, 200)); slices.Contains(got, str(a["id"])) {
		t.Fatalf("filtered by type project, bob's role assignments still hold the workspace one: %v", got)
	}
	e.wantError("DELETE", "/authorization/organization_memberships/"+f.bob+"/role_assignments/"+str(a["id"]), nil, 404, "entity_not_found")
	if got := ids(t, e.do("GET", "/authorization/resources/"+f.eng+"/role_assignments", nil, 200)); slices.Contains(got, str(a["id"])) {
		t.Fatalf("eng's role assignments hold the group's: %v", got)
	}
	if got := e.do("GET", gra+"/"+str(a["id"]), nil, 200); got["id"] != a["id"] {
		t.Fatalf("get group role assignment = %v", got)
	}

	// An inactive member gets nothing from the group; reactivated, again.
	e.do("PUT", "/user_management/organization_memberships/"+f.bob+"/deactivate", obj{}, 200)
	if check(f.bob, "project:edit", f.web) {
		t.Fatal("an inactive member is granted through the group")
	}
	e.do("PUT", "/user_management/organization_memberships/"+f.bob+"/reactivate", obj{}, 200)

	// Resource fields left out: the organization itself.
	e.do("POST", "/authorization/roles", obj{"slug": "org-auditor", "name": "Auditor"}, 201)
	e.do("POST", "/authorization/roles/org-auditor/permissions", obj{"slug": "workspace:view"}, 200)
	orgWide := e.do("POST", gra, obj{"role_slug": "org-auditor"}, 201)
	if res := orgWide["resource"].(obj); res["id"] != f.root || res["resource_type_slug"] != "organization" {
		t.Fatalf("a group assignment without resource is on %v, want the organization root %s", res, f.root)
	}
	if !check(f.bob, "workspace:view", f.ops) {
		t.Fatal("an organization-wide group grant does not reach ops")
	}

	// Replace: kept ones keep their ids, the rest go; the answer is the set.
	replaced := e.do("PUT", gra, obj{"role_assignments": []obj{
		{"role_slug": "workspace-admin", "resource_id": f.eng},
		{"role_slug": "project-viewer", "resource_external_id": "web", "resource_type_slug": "project"},
		{"role_slug": "project-viewer", "resource_id": f.web},
	}}, 200)
	got := ids(t, replaced)
	if len(got) != 2 || !slices.Contains(got, str(a["id"])) || slices.Contains(got, str(orgWide["id"])) {
		t.Fatalf("replace answered %v, want the kept workspace-admin assignment %s and one new one", got, a["id"])
	}
	if check(f.bob, "workspace:view", f.ops) {
		t.Fatal("a replaced-away group grant still allows")
	}
	if got := ids(t, e.do("GET", gra+"?order=asc", nil, 200)); !slices.Equal(got, ids(t, replaced)) {
		t.Fatalf("list after replace = %v, want %v", got, ids(t, replaced))
	}

	// Remove by criteria and by id.
	e.do("DELETE", gra, obj{"role_slug": "project-viewer", "resource_id": f.web}, 204)
	e.wantError("DELETE", gra, obj{"role_slug": "project-viewer", "resource_id": f.web}, 404, "entity_not_found")
	e.do("DELETE", gra+"/"+str(a["id"]), nil, 204)
	if check(f.bob, "project:edit", f.web) {
		t.Fatal("a removed group grant still allows")
	}

	// A removed member loses the group's grants at the next request.
	e.do("POST", gra, obj{"role_slug": "workspace-admin", "resource_id": f.eng}, 201)
	if !check(f.bob, "project:edit", f.web) {
		t.Fatal("the group grant again does not allow")
	}
	e.do("DELETE", members+"/"+f.bob, nil, 204)
	if check(f.bob, "project:edit", f.web) {
		t.Fatal("a removed member is still granted through the group")
	}
	e.wantError("DELETE", members+"/"+f.bob, nil, 404, "entity_not_found")

	// Deleting the group takes its grants with it.
	e.do("POST", members, obj{"organization_membership_id": f.bob}, 201)
	e.do("DELETE", groups+"/"+gid, nil, 204)
	if check(f.bob, "project:edit", f.web) {
		t.Fatal("a deleted group's grant still allows")
	}
	e.wantError("GET", groups+"/"+gid, nil, 404, "entity_not_found")
	e.wantError("GET", gra, nil, 404, "entity_not_found")
}

func TestGroupBadInput(t *testing.T) { conformance(t, testGroupBadInput) }

// testGroupBadInput: each bad request is answered with a WorkOS-shaped 4xx
// and writes nothing.
func testGroupBadInput(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	otherOrg := str(e.do("POST", "/organizations", obj{"name": "Globex"}, 201)["id"])
	stranger := str(e.do("POST", "/user_management/organization_memberships", obj{"organization_id": otherOrg, "user_id": "user_carol"}, 201)["id"])
	groups := "/organizations/" + f.org + "/groups"
	gid := str(e.do("POST", groups, obj{"name": "Platform"}, 201)["id"])
	members := groups + "/" + gid + "/organization-memberships"
	gra := "/authorization/groups/" + gid + "/role_assignments"

	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"group without name", "POST", groups, obj{"name": ""}, 422, "invalid_request_parameters"},
		{"unknown field", "POST", groups, obj{"name": "x", "color": "red"}, 400, "invalid_request"},
		{"group in an unknown organization", "POST", "/organizations/org_missing/groups", obj{"name": "x"}, 404, "entity_not_found"},
		{"group of another organization", "GET", "/organizations/" + otherOrg + "/groups/" + gid, nil, 404, "entity_not_found"},
		{"unknown group", "GET", groups + "/group_missing", nil, 404, "entity_not_found"},
		{"member of another organization", "POST", members, obj{"organization_membership_id": stranger}, 422, "invalid_request_parameters"},
		{"unknown member", "POST", members, obj{"organization_membership_id": "om_missing"}, 422, "invalid_request_parameters"},
		{"member of an unknown group", "POST", groups + "/group_missing/organization-memberships", obj{"organization_membership_id": f.bob}, 404, "entity_not_found"},
		{"role type is not the resource's", "POST", gra, obj{"role_slug": "project-viewer", "resource_id": f.eng}, 422, "invalid_request_parameters"},
		{"unknown role", "POST", gra, obj{"role_slug": "nope", "resource_id": f.eng}, 422, "invalid_request_parameters"},
		{"unknown resource", "POST", gra, obj{"role_slug": "workspace-admin", "resource_id": "authz_resource_missing"}, 422, "invalid_request_parameters"},
		{"resource half named", "POST", gra, obj{"role_slug": "workspace-admin", "resource_external_id": "eng"}, 422, "invalid_request_parameters"},
		{"assignment of an unknown group", "POST", "/authorization/groups/group_missing/role_assignments", obj{"role_slug": "workspace-admin", "resource_id": f.eng}, 404, "entity_not_found"},
		{"replace without the list", "PUT", gra, obj{}, 422, "invalid_request_parameters"},
		{"replace with a bad entry", "PUT", gra, obj{"role_assignments": []obj{{"role_slug": "workspace-admin", "resource_id": f.eng}, {"role_slug": "project-viewer", "resource_id": f.eng}}}, 422, "invalid_request_parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantError(tc.method, tc.path, tc.body, tc.status, tc.code)
		})
	}
	// Nothing was written: no member, no assignment (the bad replace left
	// its good first entry out too).
	if got := ids(t, e.do("GET", members, nil, 200)); len(got) != 0 {
		t.Fatalf("members after bad input = %v, want none", got)
	}
	if got := ids(t, e.do("GET", gra, nil, 200)); len(got) != 0 {
		t.Fatalf("group assignments after bad input = %v, want none", got)
	}
	many := make([]obj, 101)
	for i := range many {
		many[i] = obj{"role_slug": "workspace-admin", "resource_id": f.eng}
	}
	e.wantError("PUT", gra, obj{"role_assignments": many}, 422, "invalid_request_parameters")

	// A resource with a group assignment is deleted only with cascade.
	e.do("POST", gra, obj{"role_slug": "workspace-admin", "resource_id": f.ops}, 201)
	e.wantError("DELETE", "/authorization/resources/"+f.ops, nil, http.StatusConflict, "conflict")
	e.do("DELETE", "/authorization/resources/"+f.ops+"?cascade_delete=true", nil, 204)
	if got := ids(t, e.do("GET", gra, nil, 200)); len(got) != 0 {
		t.Fatalf("group assignments after the cascade = %v, want none", got)
	}
}
