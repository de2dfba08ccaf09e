package workos_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	idRE   = regexp.MustCompile(`^[a-z_]+_[0-9A-HJKMNP-TV-Z]{26}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

// shape checks the volatile fields (id, timestamps) by pattern and returns
// the object without them, for cmp.Diff against the rest.
func shape(t testing.TB, o obj, prefix string) obj {
	t.Helper()
	out := obj{}
	for k, v := range o {
		out[k] = v
	}
	if prefix != "" {
		id := str(o["id"])
		if !idRE.MatchString(id) || id[:len(prefix)] != prefix {
			t.Errorf("id %q is not %s + ULID", id, prefix)
		}
		delete(out, "id")
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if !timeRE.MatchString(str(o[k])) {
			t.Errorf("%s %q is not an ISO 8601 UTC timestamp with milliseconds", k, o[k])
		}
		delete(out, k)
	}
	return out
}

func TestAuth(t *testing.T) { conformance(t, testAuth) }

func testAuth(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"none", "", 401},
		{"not bearer", "Basic " + testKey, 401},
		{"wrong key", "Bearer sk_wrong", 401},
		{"current key", "Bearer " + testKey, 200},
		{"rotated key", "Bearer " + rotatedKey, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw("GET", "/organizations", nil, "Authorization", tc.header)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want == 401 {
				if got := r.json(t); got["code"] != "unauthorized" || str(got["message"]) == "" {
					t.Fatalf("401 body %v is not WorkOS-shaped", got)
				}
			}
		})
	}
}

func TestOrganizations(t *testing.T) { conformance(t, testOrganizations) }

func testOrganizations(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	org := e.do("POST", "/organizations", obj{"name": "Acme", "external_id": "acme", "metadata": obj{"tier": "gold"}}, 201)
	want := obj{"object": "organization", "name": "Acme", "allow_profiles_outside_organization": false, "domains": []any{},
		"external_id": "acme", "metadata": obj{"tier": "gold"}}
	if d := cmp.Diff(shape(t, org, "org_"), want); d != "" {
		t.Fatalf("created organization (-got +want):\n%s", d)
	}
	id := str(org["id"])
	if got := e.do("GET", "/organizations/"+id, nil, 200); !cmp.Equal(got, org) {
		t.Fatalf("get = %v, want %v", got, org)
	}
	if got := e.do("GET", "/organizations/external_id/acme", nil, 200); got["id"] != id {
		t.Fatalf("get by external id = %v", got)
	}
	upd := e.do("PUT", "/organizations/"+id, obj{"name": "Acme Inc"}, 200)
	if upd["name"] != "Acme Inc" || upd["external_id"] != "acme" {
		t.Fatalf("update = %v", upd)
	}
	root := e.do("GET", "/authorization/organizations/"+id+"/resources/organization/"+id, nil, 200)
	if root["resource_type_slug"] != "organization" || root["parent_resource_id"] != nil {
		t.Fatalf("root resource = %v", root)
	}

	e.wantError("POST", "/organizations", obj{"name": "Other", "external_id": "acme"}, 409, "conflict")
	e.wantError("POST", "/organizations", obj{}, 422, "invalid_request_parameters")
	for _, bad := range []any{
		[]obj{{"domain": "x.com"}},                                                               // no state
		[]obj{{"domain": "x.com", "state": "failed"}},                                            // not a state a caller sets
		[]obj{{"domain": "not a domain", "state": "verified"}},                                   // not a domain name
		[]obj{{"domain": "x.com", "state": "verified"}, {"domain": "X.com", "state": "pending"}}, // twice
	} {
		e.wantError("POST", "/organizations", obj{"name": "X", "domain_data": bad}, 422, "invalid_request_parameters")
	}
	e.wantError("POST", "/organizations", `{"name":`, 400, "invalid_request")
	e.wantError("POST", "/organizations", obj{"name": "X", "colour": "red"}, 400, "invalid_request")
	e.wantError("GET", "/organizations/org_missing", nil, 404, "entity_not_found")
	e.wantError("GET", "/organizations?colour=red", nil, 400, "invalid_request")
	if got := ids(t, e.do("GET", "/organizations?domains=acme.com", nil, 200)); len(got) != 0 {
		t.Fatalf("domain filter matched %v before any organization has the domain", got)
	}

	// Domains and the Stripe customer id are kept and returned; a domain
	// that stays keeps its id; one of another organization is a conflict.
	withDomains := e.do("PUT", "/organizations/"+id, obj{"domain_data": []obj{{"domain": "Acme.com", "state": "verified"}},
		"stripe_customer_id": "cus_123"}, 200)
	domains := withDomains["domains"].([]any)
	if len(domains) != 1 || withDomains["stripe_customer_id"] != "cus_123" {
		t.Fatalf("update with domain_data and stripe_customer_id = %v", withDomains)
	}
	d := domains[0].(obj)
	if d := cmp.Diff(shape(t, d, "org_domain_"), obj{"object": "organization_domain", "organization_id": id, "domain": "acme.com",
		"state": "verified", "verification_strategy": "manual"}); d != "" {
		t.Fatalf("domain (-got +want):\n%s", d)
	}
	again := e.do("PUT", "/organizations/"+id, obj{"domain_data": []obj{{"domain": "acme.com", "state": "verified"}, {"domain": "acme.io", "state": "pending"}}}, 200)
	if got := again["domains"].([]any); len(got) != 2 || got[0].(obj)["id"] != d["id"] || got[1].(obj)["state"] != "pending" {
		t.Fatalf("domains after adding acme.io = %v, want acme.com (id %v) kept and acme.io pending", got, d["id"])
	}
	if again["stripe_customer_id"] != "cus_123" {
		t.Fatalf("an update without stripe_customer_id changed it: %v", again)
	}
	if got := ids(t, e.do("GET", "/organizations?domains=acme.io", nil, 200)); !slices.Equal(got, []string{id}) {
		t.Fatalf("domain filter acme.io = %v, want [%s]", got, id)
	}
	e.wantError("POST", "/organizations", obj{"name": "Copycat", "domain_data": []obj{{"domain": "acme.io", "state": "verified"}}}, 409, "conflict")
	if got := e.do("GET", "/organizations/"+id, nil, 200); len(got["domains"].([]any)) != 2 {
		t.Fatalf("get after updates = %v, want both domains", got)
	}
	cleared := e.do("PUT", "/organizations/"+id, obj{"domain_data": []obj{}, "stripe_customer_id": nil}, 200)
	if _, ok := cleared["stripe_customer_id"]; ok || len(cleared["domains"].([]any)) != 0 {
		t.Fatalf("update clearing domains and stripe_customer_id = %v", cleared)
	}

	// Delete cascades to memberships and resources.
	e.do("POST", "/authorization/resource_types", obj{"slug": "workspace", "name": "W", "parent_type_slugs": []string{"organization"}}, 201)
	om := str(e.do("POST", "/user_management/organization_memberships", obj{"organization_id": id, "user_id": "user_1"}, 201)["id"])
	res := str(e.do("POST", "/authorization/resources", obj{"organization_id": id, "resource_type_slug": "workspace", "external_id": "w", "name": "W"}, 201)["id"])
	e.do("DELETE", "/organizations/"+id, nil, 204)
	e.wantError("GET", "/organizations/"+id, nil, 404, "entity_not_found")
	e.wantError("GET", "/user_management/organization_memberships/"+om, nil, 404, "entity_not_found")
	e.wantError("GET", "/authorization/resources/"+res, nil, 404, "entity_not_found")
	e.wantError("DELETE", "/organizations/"+id, nil, 404, "entity_not_found")
	e.wantError("PATCH", "/organizations/"+id, obj{}, 405, "method_not_allowed")
	e.wantError("GET", "/nothing/here", nil, 404, "not_found")
}

func TestPagination(t *testing.T) { conformance(t, testPagination) }

func testPagination(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	var created []string
	for i := range 25 {
		created = append(created, str(e.do("POST", "/organizations", obj{"name": fmt.Sprintf("org %d", i)}, 201)["id"]))
	}
	if !slices.IsSorted(created) {
		t.Fatalf("ids are not in creation order: %v", created)
	}
	desc := slices.Clone(created)
	slices.Reverse(desc)

	walk := func(t *testing.T, query string, cursor string) (all []string, pages []int) {
		t.Helper()
		for next := ""; ; {
			q := query
			if next != "" {
				q += "&" + cursor + "=" + next
			}
			list := e.do("GET", "/organizations?"+q, nil, 200)
			got := ids(t, list)
			pages = append(pages, len(got))
			md := list["list_metadata"].(obj)
			if cursor == "before" {
				all = append(got, all...)
			} else {
				all = append(all, got...)
			}
			next = str(md[cursor])
			if next == "" {
				return all, pages
			}
			if len(pages) > 10 {
				t.Fatal("pagination does not end")
			}
		}
	}
	for _, tc := range []struct {
		name, query string
		want        []string
		pages       []int
	}{
		{"default desc by 10", "", desc, []int{10, 10, 5}},
		{"asc by 7", "order=asc&limit=7", created, []int{7, 7, 7, 4}},
		{"desc by 100", "limit=100", desc, []int{25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, pages := walk(t, tc.query, "after")
			if d := cmp.Diff(all, tc.want); d != "" {
				t.Fatalf("items (-got +want):\n%s", d)
			}
			if d := cmp.Diff(pages, tc.pages); d != "" {
				t.Fatalf("page sizes (-got +want):\n%s", d)
			}
		})
	}

	// page returns the ids and the cursors of one page.
	page := func(t *testing.T, query string) (got []string, before, after string) {
		t.Helper()
		list := e.do("GET", "/organizations?"+query, nil, 200)
		md := list["list_metadata"].(obj)
		return ids(t, list), str(md["before"]), str(md["after"])
	}
	first, _, firstAfter := page(t, "limit=10")
	t.Run("first page metadata", func(t *testing.T) {
		_, before, after := page(t, "limit=10")
		if before != "" || after == "" {
			t.Fatalf("before %q, after %q: want null and a cursor", before, after)
		}
		if slices.Contains(created, after) {
			t.Errorf("after %q is an id: cursors are opaque", after)
		}
		if next, _, _ := page(t, "limit=10&after="+after); !cmp.Equal(next, desc[10:20]) || !cmp.Equal(first, desc[:10]) {
			t.Fatalf("pages %v then %v, want %v then %v", first, next, desc[:10], desc[10:20])
		}
	})
	t.Run("before walks back", func(t *testing.T) {
		_, second, _ := page(t, "limit=10&after="+firstAfter) // second: the cursor of desc[10]
		got, before, after := page(t, "limit=5&before="+second)
		if d := cmp.Diff(got, desc[5:10]); d != "" {
			t.Fatalf("page before desc[10] (-got +want):\n%s", d)
		}
		if prev, _, _ := page(t, "limit=5&before="+before); !cmp.Equal(prev, desc[:5]) {
			t.Fatalf("the page before that = %v, want %v", prev, desc[:5])
		}
		if next, _, _ := page(t, "limit=5&after="+after); !cmp.Equal(next, desc[10:15]) {
			t.Fatalf("the page after it = %v, want %v", next, desc[10:15])
		}
	})
	t.Run("stable under inserts", func(t *testing.T) {
		first := e.do("GET", "/organizations?order=asc&limit=10", nil, 200)
		e.do("POST", "/organizations", obj{"name": "late"}, 201)
		second := e.do("GET", "/organizations?order=asc&limit=10&after="+str(first["list_metadata"].(obj)["after"]), nil, 200)
		if d := cmp.Diff(ids(t, second), created[10:20]); d != "" {
			t.Fatalf("second page after an insert (-got +want):\n%s", d)
		}
	})
	tampered := []byte(firstAfter)
	tampered[len(tampered)/2] ^= 1
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "order=up", "before=a&after=b", "limit=1&limit=2",
		"after=" + desc[9], "before=" + desc[9], "after=garbage", "after=" + string(tampered), "after=%00",
		"domains=acme.com&after=" + firstAfter} {
		t.Run("bad "+q, func(t *testing.T) { e.wantError("GET", "/organizations?"+q, nil, 400, "invalid_request") })
	}
	t.Run("cursor of another list", func(t *testing.T) {
		e.wantError("GET", "/user_management/organization_memberships?after="+firstAfter, nil, 400, "invalid_request")
	})
}

func TestMemberships(t *testing.T) { conformance(t, testMemberships) }

func testMemberships(t *testing.T, newEnv envMaker) {
	e := newEnv(t, withDefaultRole("org-member"))
	f := e.seed()
	const base = "/user_management/organization_memberships"

	alice := e.do("GET", base+"/"+f.alice, nil, 200)
	want := obj{"object": "organization_membership", "user_id": "user_alice", "organization_id": f.org, "organization_name": "Acme",
		"status": "active", "role": obj{"slug": "org-member"}, "roles": []any{obj{"slug": "org-member"}},
		"directory_managed": false, "custom_attributes": obj{}}
	if d := cmp.Diff(shape(t, alice, "om_"), want); d != "" {
		t.Fatalf("membership (-got +want):\n%s", d)
	}
	bob := e.do("GET", base+"/"+f.bob, nil, 200)
	if !cmp.Equal(bob["roles"], []any{obj{"slug": "org-member"}}) {
		t.Fatalf("bob has roles %v, want the default role", bob["roles"])
	}
	// A membership always has a role: none sent is the default one.
	carol := e.do("POST", base, obj{"organization_id": f.org, "user_id": "user_carol", "role_slugs": []string{}}, 201)
	if !cmp.Equal(carol["roles"], bob["roles"]) {
		t.Fatalf("carol created with role_slugs [] has roles %v, want the default role's %v", carol["roles"], bob["roles"])
	}

	e.wantError("POST", base, obj{"organization_id": f.org, "user_id": "user_alice"}, 409, "conflict")
	e.wantError("POST", base, obj{"organization_id": f.org, "user_id": "user_x", "role_slug": "nope"}, 422, "invalid_request_parameters")
	e.wantError("POST", base, obj{"organization_id": f.org, "user_id": "user_x", "role_slug": "workspace-admin"}, 422, "invalid_request_parameters")
	e.wantError("POST", base, obj{"organization_id": f.org, "user_id": "user_x", "role_slug": "a", "role_slugs": []string{"b"}}, 422, "invalid_request_parameters")
	e.wantError("POST", base, obj{"organization_id": "org_missing", "user_id": "user_x"}, 422, "invalid_request_parameters")
	e.wantError("POST", base, obj{"user_id": "user_x"}, 422, "invalid_request_parameters")

	deact := e.do("PUT", base+"/"+f.bob+"/deactivate", nil, 200)
	if deact["status"] != "inactive" {
		t.Fatalf("deactivate = %v", deact)
	}
	if got := ids(t, e.do("GET", base+"?organization_id="+f.org+"&statuses=inactive", nil, 200)); !cmp.Equal(got, []string{f.bob}) {
		t.Fatalf("inactive memberships = %v, want [bob]", got)
	}
	if got := ids(t, e.do("GET", base+"?organization_id="+f.org, nil, 200)); slices.Contains(got, f.bob) {
		t.Fatalf("memberships without statuses = %v, want only active ones (not bob)", got)
	}
	if got := ids(t, e.do("GET", base+"?organization_id="+f.org+"&statuses=active,inactive", nil, 200)); !slices.Contains(got, f.bob) || !slices.Contains(got, f.alice) {
		t.Fatalf("memberships with statuses=active,inactive = %v, want alice and bob", got)
	}
	if got := ids(t, e.do("GET", base+"?user_id=user_alice", nil, 200)); !cmp.Equal(got, []string{f.alice}) {
		t.Fatalf("alice's memberships = %v", got)
	}
	e.wantError("GET", base+"?statuses=gone", nil, 400, "invalid_request")
	if got := e.do("PUT", base+"/"+f.bob+"/reactivate", obj{}, 200); got["status"] != "active" {
		t.Fatalf("reactivate = %v", got)
	}
	if got := e.do("PUT", base+"/"+f.bob, obj{"role_slugs": []string{}}, 200); !cmp.Equal(got["role"], obj{"slug": "org-member"}) {
		t.Fatalf("update roles to none = %v, want the default role", got)
	}
	e.wantError("PUT", base+"/om_missing", obj{"role_slug": "org-member"}, 404, "entity_not_found")

	// Delete removes the membership's assignments.
	e.do("DELETE", base+"/"+f.alice, nil, 204)
	e.wantError("GET", base+"/"+f.alice, nil, 404, "entity_not_found")
	if got := ids(t, e.do("GET", "/authorization/resources/"+f.eng+"/role_assignments", nil, 200)); len(got) != 0 {
		t.Fatalf("assignments left after deleting the membership: %v", got)
	}
}

func TestPermissionsAndRoles(t *testing.T) { conformance(t, testPermissionsAndRoles) }

func testPermissionsAndRoles(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()

	p := e.do("GET", "/authorization/permissions/project:edit", nil, 200)
	want := obj{"object": "permission", "slug": "project:edit", "name": "Edit project", "description": nil,
		"resource_type_slug": "project", "system": false}
	if d := cmp.Diff(shape(t, p, "perm_"), want); d != "" {
		t.Fatalf("permission (-got +want):\n%s", d)
	}
	if got := e.do("PATCH", "/authorization/permissions/project:edit", obj{"description": "Change a project"}, 200); got["description"] != "Change a project" || got["name"] != "Edit project" {
		t.Fatalf("patch permission = %v", got)
	}
	if got := e.do("PATCH", "/authorization/permissions/project:edit", obj{"description": nil}, 200); got["description"] != nil {
		t.Fatalf("patch description null = %v", got)
	}
	e.wantError("PATCH", "/authorization/permissions/project:edit", obj{"resource_type_slug": "workspace"}, 422, "invalid_request_parameters")
	e.wantError("POST", "/authorization/permissions", obj{"slug": "project:edit", "name": "again"}, 409, "conflict")
	e.wantError("POST", "/authorization/permissions", obj{"slug": "Project:Edit", "name": "caps"}, 422, "invalid_request_parameters")
	e.wantError("POST", "/authorization/permissions", obj{"slug": "doc:read", "name": "x", "resource_type_slug": "doc"}, 422, "invalid_request_parameters")
	if got := ids(t, e.do("GET", "/authorization/permissions?order=asc", nil, 200)); len(got) != 4 {
		t.Fatalf("permissions = %v", got)
	}

	role := e.do("GET", "/authorization/roles/workspace-admin", nil, 200)
	wantRole := obj{"object": "role", "slug": "workspace-admin", "name": "Workspace admin", "description": nil,
		"permissions": []any{"workspace:view", "project:view", "project:edit"}, "resource_type_slug": "workspace", "type": "EnvironmentRole"}
	if d := cmp.Diff(shape(t, role, "role_"), wantRole); d != "" {
		t.Fatalf("role (-got +want):\n%s", d)
	}
	// The type rule: a project role may not hold a workspace permission.
	got := e.wantError("POST", "/authorization/roles/project-viewer/permissions", obj{"slug": "workspace:view"}, 422, "invalid_request_parameters")
	if errs := got["errors"].([]any); errs[0].(obj)["code"] != "permission_type_not_allowed" {
		t.Fatalf("errors = %v", errs)
	}
	e.wantError("PUT", "/authorization/roles/org-member/permissions", obj{}, 422, "invalid_request_parameters")
	e.wantError("POST", "/authorization/roles", obj{"slug": "org-member", "name": "dup"}, 409, "conflict")
	e.wantError("GET", "/authorization/roles/nope", nil, 404, "entity_not_found")

	// Organization roles.
	orgRoles := "/authorization/organizations/" + f.org + "/roles"
	custom := e.do("POST", orgRoles, obj{"slug": "billing-admin", "name": "Billing"}, 201)
	if custom["type"] != "OrganizationRole" {
		t.Fatalf("custom role = %v", custom)
	}
	list := e.do("GET", orgRoles, nil, 200)
	if d := cmp.Diff(slugs(t, list), []string{"org-member", "workspace-admin", "project-viewer", "billing-admin"}); d != "" {
		t.Fatalf("organization roles (-got +want):\n%s", d)
	}
	if got := e.do("GET", orgRoles+"/org-member", nil, 200); got["type"] != "EnvironmentRole" {
		t.Fatalf("environment role through the organization = %v", got)
	}
	e.do("PUT", orgRoles+"/billing-admin/permissions", obj{"permissions": []string{"org:read"}}, 200)
	if got := e.do("POST", orgRoles+"/billing-admin/permissions", obj{"slug": "org:read"}, 200); !cmp.Equal(got["permissions"], []any{"org:read"}) {
		t.Fatalf("adding a present permission changed the role: %v", got["permissions"])
	}
	e.do("DELETE", orgRoles+"/billing-admin/permissions/org:read", nil, 204)
	e.wantError("DELETE", orgRoles+"/billing-admin/permissions/org:read", nil, 404, "entity_not_found")
	if got := e.do("PATCH", orgRoles+"/billing-admin", obj{"name": "Billing admin"}, 200); got["name"] != "Billing admin" {
		t.Fatalf("patch role = %v", got)
	}
	e.wantError("PATCH", orgRoles+"/org-member", obj{"name": "x"}, 404, "entity_not_found")
	e.wantError("POST", "/authorization/organizations/org_missing/roles", obj{"slug": "x", "name": "x"}, 404, "entity_not_found")

	// Deleting a role removes its assignments and membership roles.
	e.do("PUT", "/user_management/organization_memberships/"+f.bob, obj{"role_slugs": []string{"billing-admin"}}, 200)
	e.do("DELETE", orgRoles+"/billing-admin", nil, 204)
	if got := e.do("GET", "/user_management/organization_memberships/"+f.bob, nil, 200); got["role"] != nil {
		t.Fatalf("bob keeps a deleted role: %v", got)
	}
	e.do("DELETE", "/authorization/roles/workspace-admin", nil, 204)
	if got := ids(t, e.do("GET", "/authorization/organization_memberships/"+f.alice+"/role_assignments", nil, 200)); len(got) != 0 {
		t.Fatalf("assignments of a deleted role: %v", got)
	}

	// Deleting a permission removes it from roles.
	e.do("DELETE", "/authorization/permissions/org:read", nil, 204)
	if got := e.do("GET", "/authorization/roles/org-member", nil, 200); len(got["permissions"].([]any)) != 0 {
		t.Fatalf("role keeps a deleted permission: %v", got)
	}
}

func TestResourceTypes(t *testing.T) { conformance(t, testResourceTypes) }

func testResourceTypes(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	got := e.do("GET", "/authorization/resource_types/project", nil, 200)
	want := obj{"object": "resource_type", "slug": "project", "name": "Project", "description": nil, "parent_type_slugs": []any{"workspace"}}
	if d := cmp.Diff(shape(t, got, ""), want); d != "" {
		t.Fatalf("resource type (-got +want):\n%s", d)
	}
	if d := cmp.Diff(ids(t, e.do("GET", "/authorization/resource_types?order=asc", nil, 200)), []string{"project", "workspace"}); d != "" {
		t.Fatalf("types (-got +want):\n%s", d)
	}
	e.do("PATCH", "/authorization/resource_types/project", obj{"parent_type_slugs": []string{"workspace", "organization"}, "description": "A project"}, 200)
	e.wantError("PATCH", "/authorization/resource_types/project", obj{"parent_type_slugs": []string{"organization"}}, 409, "conflict")
	e.wantError("POST", "/authorization/resource_types", obj{"slug": "workspace", "name": "again", "parent_type_slugs": []string{"organization"}}, 409, "conflict")
	e.wantError("POST", "/authorization/resource_types", obj{"slug": "doc", "name": "Doc"}, 422, "invalid_request_parameters")
	e.wantError("POST", "/authorization/resource_types", obj{"slug": "doc", "name": "Doc", "parent_type_slugs": []string{"folder"}}, 422, "invalid_request_parameters")
	e.wantError("DELETE", "/authorization/resource_types/workspace", nil, 409, "conflict")
	e.do("DELETE", "/authorization/resources/"+f.web, nil, 204)
	e.do("DELETE", "/authorization/roles/project-viewer", nil, 204)
	e.do("DELETE", "/authorization/permissions/project:view", nil, 204)
	e.do("DELETE", "/authorization/permissions/project:edit", nil, 204)
	e.do("DELETE", "/authorization/resource_types/project", nil, 204)
	e.wantError("GET", "/authorization/resource_types/project", nil, 404, "entity_not_found")
}

func TestResources(t *testing.T) { conformance(t, testResources) }

func testResources(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	web := e.do("GET", "/authorization/resources/"+f.web, nil, 200)
	want := obj{"object": "authorization_resource", "external_id": "web", "name": "Web", "description": nil,
		"resource_type_slug": "project", "organization_id": f.org, "parent_resource_id": f.eng}
	if d := cmp.Diff(shape(t, web, "authz_resource_"), want); d != "" {
		t.Fatalf("resource (-got +want):\n%s", d)
	}
	byExt := "/authorization/organizations/" + f.org + "/resources/project/web"
	if got := e.do("GET", byExt, nil, 200); got["id"] != f.web {
		t.Fatalf("by external id = %v", got)
	}
	if got := e.do("GET", "/authorization/resources/"+f.eng, nil, 200); got["parent_resource_id"] != nil {
		t.Fatalf("a resource under the root has parent %v, want null", got["parent_resource_id"])
	}

	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"organization", "organization_id=" + f.org, []string{f.eng, f.ops, f.web}},
		{"type", "resource_type_slug=workspace", []string{f.eng, f.ops}},
		{"parent id", "parent_resource_id=" + f.eng, []string{f.web}},
		{"parent root", "parent_resource_id=" + f.root, []string{f.eng, f.ops}},
		{"parent by external id", "parent_resource_type_slug=workspace&parent_external_id=eng", []string{f.web}},
		{"search", "search=oper", []string{f.ops}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			if d := cmp.Diff(ids(t, e.do("GET", "/authorization/resources?order=asc&"+tc.query, nil, 200)), tc.want); d != "" {
				t.Fatalf("(-got +want):\n%s", d)
			}
		})
	}
	e.wantError("GET", "/authorization/resources?parent_external_id=eng", nil, 400, "invalid_request")

	// Update and re-parent, by id and by external id.
	got := e.do("PATCH", byExt, obj{"name": "Website", "description": "The site", "parent_resource_id": f.ops}, 200)
	if got["name"] != "Website" || got["description"] != "The site" || got["parent_resource_id"] != f.ops {
		t.Fatalf("patch = %v", got)
	}
	got = e.do("PATCH", "/authorization/resources/"+f.web, obj{"parent_resource_external_id": "eng", "parent_resource_type_slug": "workspace"}, 200)
	if got["parent_resource_id"] != f.eng {
		t.Fatalf("re-parent by external id = %v", got)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"duplicate external id", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "eng", "name": "x"}, 409, "conflict"},
		{"parent type not allowed", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "project", "external_id": "p2", "name": "x"}, 422, "invalid_request_parameters"},
		{"unknown parent", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "w", "name": "x", "parent_resource_id": "authz_resource_missing"}, 422, "invalid_request_parameters"},
		{"unknown type", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "doc", "external_id": "w", "name": "x"}, 422, "invalid_request_parameters"},
		{"missing name", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "w"}, 422, "invalid_request_parameters"},
		{"both parent forms", "POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "w", "name": "x", "parent_resource_id": f.root, "parent_resource_external_id": "x", "parent_resource_type_slug": "workspace"}, 422, "invalid_request_parameters"},
		{"re-parent under itself", "PATCH", "/authorization/resources/" + f.eng, obj{"parent_resource_id": f.eng}, 422, "invalid_request_parameters"},
		{"change external id", "PATCH", "/authorization/resources/" + f.eng, obj{"external_id": "new"}, 422, "invalid_request_parameters"},
		{"edit the root", "PATCH", "/authorization/resources/" + f.root, obj{"name": "x"}, 422, "invalid_request_parameters"},
		{"get missing", "GET", "/authorization/resources/authz_resource_missing", nil, 404, "entity_not_found"},
		{"delete with children", "DELETE", "/authorization/resources/" + f.eng, nil, 409, "conflict"},
		{"delete with assignments", "DELETE", "/authorization/resources/" + f.web + "?cascade_delete=false", nil, 0, ""},
		{"bad cascade flag", "DELETE", "/authorization/resources/" + f.eng + "?cascade_delete=yes", nil, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == 0 {
				return
			}
			e.wantError(tc.method, tc.path, tc.body, tc.status, tc.code)
		})
	}

	// A resource with an assignment (and no children) needs cascade.
	e.do("POST", "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web}, 201)
	e.wantError("DELETE", "/authorization/resources/"+f.web, nil, 409, "conflict")

	// Cascade removes the subtree and its assignments, and nothing else.
	e.do("DELETE", "/authorization/organizations/"+f.org+"/resources/workspace/eng?cascade_delete=true", nil, 204)
	e.wantError("GET", "/authorization/resources/"+f.web, nil, 404, "entity_not_found")
	for _, om := range []string{f.alice, f.bob} {
		if got := ids(t, e.do("GET", "/authorization/organization_memberships/"+om+"/role_assignments", nil, 200)); len(got) != 0 {
			t.Fatalf("assignments of %s left in the deleted subtree: %v", om, got)
		}
	}
	if got := ids(t, e.do("GET", "/authorization/resources?organization_id="+f.org, nil, 200)); !cmp.Equal(got, []string{f.ops}) {
		t.Fatalf("resources after the cascade = %v, want [ops]", got)
	}
}

func TestAssignments(t *testing.T) { conformance(t, testAssignments) }

func testAssignments(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	ra := "/authorization/organization_memberships/" + f.bob + "/role_assignments"
	a := e.do("POST", ra, obj{"role_slug": "project-viewer", "resource_external_id": "web", "resource_type_slug": "project"}, 201)
	want := obj{"object": "role_assignment", "organization_membership_id": f.bob, "role": obj{"slug": "project-viewer"},
		"resource": obj{"id": f.web, "external_id": "web", "resource_type_slug": "project"},
		"source":   obj{"type": "direct", "group_role_assignment_id": nil}}
	if d := cmp.Diff(shape(t, a, "role_assignment_"), want); d != "" {
		t.Fatalf("assignment (-got +want):\n%s", d)
	}
	e.do("POST", ra, obj{"role_slug": "workspace-admin", "resource_id": f.ops}, 201)

	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"membership", ra, 2},
		{"membership by resource id", ra + "?resource_id=" + f.web, 1},
		{"membership by resource type", ra + "?resource_type_slug=workspace", 1},
		{"membership by external id", ra + "?resource_external_id=web&resource_type_slug=project", 1},
		{"resource", "/authorization/resources/" + f.eng + "/role_assignments", 1},
		{"resource by role", "/authorization/resources/" + f.eng + "/role_assignments?role_slug=project-viewer", 0},
		{"resource by external id", "/authorization/organizations/" + f.org + "/resources/project/web/role_assignments?role_slug=project-viewer", 1},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			if got := ids(t, e.do("GET", tc.path, nil, 200)); len(got) != tc.want {
				t.Fatalf("%d assignments %v, want %d", len(got), got, tc.want)
			}
		})
	}
	e.wantError("GET", "/authorization/organization_memberships/om_missing/role_assignments", nil, 404, "entity_not_found")
	e.wantError("GET", "/authorization/organizations/"+f.org+"/resources/project/missing/role_assignments", nil, 404, "entity_not_found")
	e.wantError("POST", ra, obj{"role_slug": "project-viewer", "resource_id": f.web}, 409, "conflict")
	e.wantError("POST", ra, obj{"role_slug": "project-viewer", "resource_id": f.eng}, 422, "invalid_request_parameters")
	e.wantError("POST", ra, obj{"role_slug": "project-viewer"}, 422, "invalid_request_parameters")
	e.wantError("POST", ra, obj{"role_slug": "nope", "resource_id": f.web}, 422, "invalid_request_parameters")
	e.wantError("POST", "/authorization/organization_memberships/om_missing/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web}, 404, "entity_not_found")

	e.do("DELETE", ra, obj{"role_slug": "workspace-admin", "resource_external_id": "ops", "resource_type_slug": "workspace"}, 204)
	e.wantError("DELETE", ra, obj{"role_slug": "workspace-admin", "resource_id": f.ops}, 404, "entity_not_found")
	e.do("DELETE", ra+"/"+str(a["id"]), nil, 204)
	e.wantError("DELETE", ra+"/"+str(a["id"]), nil, 404, "entity_not_found")
	e.wantError("DELETE", "/authorization/organization_memberships/"+f.bob+"/role_assignments/"+f.aliceOnEngID, nil, 404, "entity_not_found")
	if got := ids(t, e.do("GET", ra, nil, 200)); len(got) != 0 {
		t.Fatalf("assignments left: %v", got)
	}
}

func TestDecisions(t *testing.T) { conformance(t, testDecisions) }

func testDecisions(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	check := func(om string, body obj) bool {
		t.Helper()
		r := e.do("POST", "/authorization/organization_memberships/"+om+"/check", body, 200)
		if len(r) != 1 {
			t.Fatalf("check answered %v, want only authorized", r)
		}
		return r["authorized"].(bool)
	}
	for _, tc := range []struct {
		name string
		om   string
		body obj
		want bool
	}{
		{"inherited from workspace role", f.alice, obj{"permission_slug": "project:edit", "resource_id": f.web}, true},
		{"by external id", f.alice, obj{"permission_slug": "project:edit", "resource_external_id": "web", "resource_type_slug": "project"}, true},
		{"organization role on the root", f.alice, obj{"permission_slug": "org:read", "resource_id": f.ops}, true},
		{"not on a sibling", f.alice, obj{"permission_slug": "project:edit", "resource_id": f.ops}, false},
		{"no grant", f.bob, obj{"permission_slug": "project:view", "resource_id": f.web}, false},
		{"unknown permission is a deny", f.alice, obj{"permission_slug": "nope", "resource_id": f.web}, false},
	} {
		t.Run("check "+tc.name, func(t *testing.T) {
			if got := check(tc.om, tc.body); got != tc.want {
				t.Fatalf("authorized = %v, want %v", got, tc.want)
			}
		})
	}
	e.wantError("POST", "/authorization/organization_memberships/om_missing/check", obj{"permission_slug": "project:edit", "resource_id": f.web}, 404, "entity_not_found")
	e.wantError("POST", "/authorization/organization_memberships/"+f.alice+"/check", obj{"permission_slug": "project:edit", "resource_id": "authz_resource_missing"}, 404, "entity_not_found")
	e.wantError("POST", "/authorization/organization_memberships/"+f.alice+"/check", obj{"resource_id": f.web}, 422, "invalid_request_parameters")

	// Writes take effect at once.
	e.do("POST", "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web}, 201)
	if !check(f.bob, obj{"permission_slug": "project:view", "resource_id": f.web}) {
		t.Fatal("an assignment is not reflected by the next check")
	}

	// Discovery: the resources of the permission's type under the parent,
	// at any depth, on which a check would allow (WorkOS: a workspace-admin
	// role with project:edit lists the workspace's projects, not the
	// workspace itself, although the role grants project:edit on it).
	const forAlice = "/authorization/organization_memberships/%s/resources?permission_slug=%s&%s"
	for _, tc := range []struct {
		name, om, perm, parent string
		want                   []string
	}{
		{"projects at depth 2 under the root", f.alice, "project:edit", "parent_resource_id=" + f.root, []string{f.web}},
		{"projects under the workspace", f.alice, "project:edit", "parent_resource_id=" + f.eng, []string{f.web}},
		{"workspaces, root by external id", f.alice, "workspace:view", "parent_resource_external_id=" + f.org + "&parent_resource_type_slug=organization", []string{f.eng}},
		{"not under a sibling", f.alice, "project:edit", "parent_resource_id=" + f.ops, []string{}},
		{"a project's own type below it: none", f.alice, "project:edit", "parent_resource_id=" + f.web, []string{}},
		{"organization permission: the root is never listed", f.alice, "org:read", "parent_resource_id=" + f.root, []string{}},
		{"direct grant on the project", f.bob, "project:view", "parent_resource_id=" + f.root, []string{f.web}},
	} {
		t.Run("resources "+tc.name, func(t *testing.T) {
			res := e.do("GET", fmt.Sprintf(forAlice, tc.om, tc.perm, tc.parent), nil, 200)
			if d := cmp.Diff(ids(t, res), tc.want); d != "" {
				t.Fatalf("(-got +want):\n%s", d)
			}
			for _, d := range res["data"].([]any) {
				if d.(obj)["object"] != "authorization_resource" {
					t.Fatalf("discovery returns %v", d)
				}
			}
		})
	}
	e.wantError("GET", "/authorization/organization_memberships/"+f.alice+"/resources?permission_slug=project:edit", nil, 422, "invalid_request_parameters")
	e.wantError("GET", "/authorization/organization_memberships/"+f.alice+"/resources?parent_resource_id="+f.root, nil, 400, "invalid_request")
	e.wantError("GET", "/authorization/organization_memberships/"+f.alice+"/resources?permission_slug=project:edit&parent_resource_id=authz_resource_missing", nil, 404, "entity_not_found")
	e.wantError("GET", "/authorization/organization_memberships/om_missing/resources?permission_slug=project:edit&parent_resource_id="+f.root, nil, 404, "entity_not_found")
	if got := e.wantError("GET", "/authorization/organization_memberships/"+f.alice+"/resources?permission_slug=nope&parent_resource_id="+f.root, nil, 422, "invalid_request_parameters"); got["errors"].([]any)[0].(obj)["code"] != "unknown_permission" {
		t.Fatalf("unknown permission: %v", got)
	}

	members := func(path string) []string {
		t.Helper()
		return ids(t, e.do("GET", path, nil, 200))
	}
	if got := members("/authorization/resources/" + f.web + "/organization_memberships?permission_slug=project:view"); !cmp.Equal(got, []string{f.bob}) {
		t.Fatalf("direct viewers of web = %v, want [bob]", got)
	}
	want := []string{f.alice, f.bob}
	slices.Sort(want)
	if got := members("/authorization/organizations/" + f.org + "/resources/project/web/organization_memberships?permission_slug=project:view&assignment=indirect&order=asc"); !cmp.Equal(got, want) {
		t.Fatalf("all viewers of web = %v, want %v", got, want)
	}
	e.wantError("GET", "/authorization/resources/"+f.web+"/organization_memberships?permission_slug=project:view&assignment=some", nil, 400, "invalid_request")
	e.wantError("GET", "/authorization/resources/authz_resource_missing/organization_memberships?permission_slug=project:view", nil, 404, "entity_not_found")
	e.wantError("GET", "/authorization/resources/"+f.web+"/organization_memberships?permission_slug=nope", nil, 422, "invalid_request_parameters")

	perms := e.do("GET", "/authorization/resources/"+f.web+"/organization_memberships/"+f.alice+"/permissions?order=asc", nil, 200)
	if d := cmp.Diff(slugs(t, perms), []string{"org:read", "project:edit", "project:view", "workspace:view"}); d != "" {
		t.Fatalf("alice's permissions on web (-got +want):\n%s", d)
	}
	const byExt = "/authorization/organization_memberships/%s/resources/project/web/permissions?limit=2&order=asc"
	perms = e.do("GET", fmt.Sprintf(byExt, f.alice), nil, 200)
	after := str(perms["list_metadata"].(obj)["after"])
	if got := slugs(t, perms); !cmp.Equal(got, []string{"org:read", "project:edit"}) || after == "" {
		t.Fatalf("first page of permissions = %v %v", got, perms["list_metadata"])
	}
	perms = e.do("GET", fmt.Sprintf(byExt, f.alice)+"&after="+after, nil, 200)
	if got := slugs(t, perms); !cmp.Equal(got, []string{"project:view", "workspace:view"}) || perms["list_metadata"].(obj)["after"] != nil {
		t.Fatalf("second page of permissions = %v %v", got, perms["list_metadata"])
	}
	e.wantError("GET", fmt.Sprintf(byExt, f.bob)+"&after="+after, nil, 400, "invalid_request")
	e.wantError("GET", "/authorization/resources/authz_resource_missing/organization_memberships/"+f.alice+"/permissions", nil, 404, "entity_not_found")

	// Re-parent moves inherited access; cascade delete removes it.
	e.do("PATCH", "/authorization/resources/"+f.web, obj{"parent_resource_id": f.ops}, 200)
	if check(f.alice, obj{"permission_slug": "project:edit", "resource_id": f.web}) {
		t.Fatal("alice keeps project:edit on web after it moved out of eng")
	}
	e.do("PATCH", "/authorization/resources/"+f.web, obj{"parent_resource_id": f.eng}, 200)
	e.do("DELETE", "/authorization/resources/"+f.eng+"?cascade_delete=true", nil, 204)
	e.wantError("POST", "/authorization/organization_memberships/"+f.alice+"/check", obj{"permission_slug": "project:edit", "resource_id": f.web}, 404, "entity_not_found")
}

// slugs returns the slugs of a list response's data.
func slugs(t testing.TB, list obj) []string {
	t.Helper()
	out := []string{}
	for _, d := range list["data"].([]any) {
		out = append(out, str(d.(obj)["slug"]))
	}
	return out
}

func TestDiscoveryPagination(t *testing.T) { conformance(t, testDiscoveryPagination) }

func testDiscoveryPagination(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	var want []string
	for i := range 12 {
		want = append(want, str(e.do("POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "project",
			"external_id": fmt.Sprintf("p%02d", i), "name": "P", "parent_resource_id": f.eng}, 201)["id"]))
	}
	want = append(want, f.web)
	slices.Sort(want)
	desc := slices.Clone(want)
	slices.Reverse(desc)
	base := "/authorization/organization_memberships/" + f.alice + "/resources?permission_slug=project:edit&limit=5&parent_resource_id=" + f.eng
	// Forward with after, in either order (desc is the default), then back
	// from the last page with before.
	for _, tc := range []struct {
		order string
		want  []string
	}{{"&order=asc", want}, {"", desc}, {"&order=desc", desc}} {
		var got []string
		var pages []obj
		after := ""
		for range 5 {
			path := base + tc.order
			if after != "" {
				path += "&after=" + after
			}
			page := e.do("GET", path, nil, 200)
			pages = append(pages, page)
			got = append(got, ids(t, page)...)
			if after = str(page["list_metadata"].(obj)["after"]); after == "" {
				break
			}
		}
		if d := cmp.Diff(got, tc.want); d != "" {
			t.Fatalf("order %q: resources across pages (-got +want):\n%s", tc.order, d)
		}
		if len(pages) != 3 || pages[0]["list_metadata"].(obj)["before"] != nil {
			t.Fatalf("order %q: %d pages, first page's before %v", tc.order, len(pages), pages[0]["list_metadata"])
		}
		var back []string
		before := str(pages[2]["list_metadata"].(obj)["before"])
		for before != "" {
			page := e.do("GET", base+tc.order+"&before="+before, nil, 200)
			back = append(ids(t, page), back...)
			before = str(page["list_metadata"].(obj)["before"])
		}
		if d := cmp.Diff(back, tc.want[:10]); d != "" {
			t.Fatalf("order %q: back with before (-got +want):\n%s", tc.order, d)
		}
	}
	// A cursor is bound to the membership, the permission and the parent.
	first := e.do("GET", base, nil, 200)
	after := str(first["list_metadata"].(obj)["after"])
	for _, path := range []string{
		"/authorization/organization_memberships/" + f.alice + "/resources?permission_slug=project:edit&parent_resource_id=" + f.eng + "&after=" + want[4],
		"/authorization/organization_memberships/" + f.bob + "/resources?permission_slug=project:edit&parent_resource_id=" + f.eng + "&after=" + after,
		"/authorization/organization_memberships/" + f.alice + "/resources?permission_slug=project:view&parent_resource_id=" + f.eng + "&after=" + after,
		"/authorization/organization_memberships/" + f.alice + "/resources?permission_slug=project:edit&parent_resource_id=" + f.ops + "&after=" + after,
		"/authorization/resources/" + f.eng + "/organization_memberships?permission_slug=project:edit&after=" + after,
	} {
		e.wantError("GET", path, nil, 400, "invalid_request")
	}
}

func TestConsistency(t *testing.T) { conformance(t, testConsistency) }

func testConsistency(t *testing.T, newEnv envMaker) {
	// The store returns before the engine applies the change (as with a
	// change feed): a check after a write through this handler must still
	// reflect it.
	e := newEnv(t, withApplyDelay(100*time.Millisecond))
	f := e.seed()
	r := e.raw("POST", "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web})
	if r.status != 201 {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}
	rev, err := strconv.ParseInt(r.header.Get("X-Trellis-Revision"), 10, 64)
	if err != nil || rev <= 0 || rev != e.svc.AcknowledgedRevision() {
		t.Fatalf("write revision header %q, service's last acknowledged write %d", r.header.Get("X-Trellis-Revision"), e.svc.AcknowledgedRevision())
	}
	c := e.raw("POST", "/authorization/organization_memberships/"+f.bob+"/check", obj{"permission_slug": "project:view", "resource_id": f.web})
	if c.status != 200 || !c.json(t)["authorized"].(bool) {
		t.Fatalf("check right after the write: %d %s", c.status, c.body)
	}
	if got, _ := strconv.ParseInt(c.header.Get("X-Trellis-Revision"), 10, 64); got < rev {
		t.Fatalf("check answered at revision %d, before the write's %d", got, rev)
	}

	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"at least a written revision", []string{"X-Trellis-Revision", strconv.FormatInt(rev, 10)}, 200},
		{"full", []string{"X-Trellis-Consistency", "full"}, 200},
		{"future revision", []string{"X-Trellis-Revision", strconv.FormatInt(rev+1000, 10)}, 503},
		{"bad revision", []string{"X-Trellis-Revision", "soon"}, 400},
		{"bad consistency", []string{"X-Trellis-Consistency", "eventual"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw("POST", "/authorization/organization_memberships/"+f.bob+"/check", obj{"permission_slug": "project:view", "resource_id": f.web}, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
	if r := e.raw("GET", "/organizations", nil, "X-Trellis-Revision", "12"); r.status != http.StatusOK {
		t.Fatalf("a store read with a revision header: %d", r.status)
	}
}

func TestMembershipDefaultRole(t *testing.T) { conformance(t, testMembershipDefaultRole) }

// testMembershipDefaultRole: without roles in the request (or with none) a
// membership gets the override if configured, else the environment's
// default role if set, else its "member" role if it exists as an
// organization-level role, else none.
func testMembershipDefaultRole(t *testing.T, newEnv envMaker) {
	const base = "/user_management/organization_memberships"
	roleSlugs := func(m obj) []string {
		var out []string
		for _, r := range m["roles"].([]any) {
			out = append(out, str(r.(obj)["slug"]))
		}
		return out
	}
	tests := []struct {
		name     string
		override string
		roles    []obj // created before the membership
		body     obj   // extra fields of the create request
		// setDefault is set through PUT /authorization/default_role (with
		// an override, that is refused: the data-file route sets it).
		setDefault string
		want       []string
	}{
		{name: "no member role", want: nil},
		{name: "member role", roles: []obj{{"slug": "member", "name": "Member"}}, want: []string{"member"}},
		{name: "member of another type", roles: []obj{{"slug": "member", "name": "Member", "resource_type_slug": "workspace"}}, want: nil},
		{name: "override", override: "admin", roles: []obj{{"slug": "member", "name": "Member"}, {"slug": "admin", "name": "Admin"}}, want: []string{"admin"}},
		{name: "sent roles win", roles: []obj{{"slug": "member", "name": "Member"}, {"slug": "admin", "name": "Admin"}}, body: obj{"role_slug": "admin"}, want: []string{"admin"}},
		{name: "sent none", roles: []obj{{"slug": "member", "name": "Member"}}, body: obj{"role_slugs": []string{}}, want: []string{"member"}},
		{name: "configured", roles: []obj{{"slug": "member", "name": "Member"}, {"slug": "viewer", "name": "Viewer"}}, setDefault: "viewer", want: []string{"viewer"}},
		{name: "override beats configured", override: "admin", roles: []obj{{"slug": "viewer", "name": "Viewer"}, {"slug": "admin", "name": "Admin"}}, setDefault: "viewer", want: []string{"admin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withDefaultRole(tc.override))
			e.do("POST", "/authorization/resource_types", obj{"slug": "workspace", "name": "Workspace", "parent_type_slugs": []string{"organization"}}, 201)
			for _, r := range tc.roles {
				e.do("POST", "/authorization/roles", r, 201)
			}
			if tc.setDefault != "" && tc.override == "" {
				e.do("PUT", "/authorization/default_role", obj{"role_slug": tc.setDefault}, 200)
			} else if tc.setDefault != "" {
				e.wantError("PUT", "/authorization/default_role", obj{"role_slug": tc.setDefault}, 422, "invalid_request_parameters")
				if _, err := e.store.SetDefaultRole(context.Background(), tc.setDefault); err != nil {
					t.Fatal(err)
				}
			}
			org := str(e.do("POST", "/organizations", obj{"name": "Acme"}, 201)["id"])
			body := obj{"organization_id": org, "user_id": "user_dana"}
			for k, v := range tc.body {
				body[k] = v
			}
			m := e.do("POST", base, body, 201)
			if d := cmp.Diff(tc.want, roleSlugs(m)); d != "" {
				t.Errorf("roles (-want +got):\n%s", d)
			}
			if got := roleSlugs(e.do("GET", base+"/"+str(m["id"]), nil, 200)); !cmp.Equal(got, tc.want) {
				t.Errorf("read back roles %v, want %v", got, tc.want)
			}
		})
	}
}
