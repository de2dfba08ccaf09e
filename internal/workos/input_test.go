package workos_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/rawjson"
)

// state is what a test reads back to prove that refused requests wrote
// nothing: every list of the fixture's organization.
func (e *env) state(f fixture) []obj {
	e.t.Helper()
	var out []obj
	for _, path := range []string{
		"/organizations?limit=100",
		"/user_management/organization_memberships?limit=100&organization_id=" + f.org,
		"/authorization/resource_types?limit=100",
		"/authorization/permissions?limit=100",
		"/authorization/roles",
		"/authorization/organizations/" + f.org + "/roles",
		"/authorization/resources?limit=100&organization_id=" + f.org,
		"/authorization/organization_memberships/" + f.alice + "/role_assignments?limit=100",
	} {
		out = append(out, e.do("GET", path, nil, 200))
	}
	return out
}

func TestBadText(t *testing.T) { conformance(t, testBadText) }

// testBadText: a NUL byte or invalid UTF-8 in a body field (raw bytes,
// \u0000, a lone surrogate), a query parameter or a path segment is a 400
// invalid_request whose errors name the field, and writes nothing.
func testBadText(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	before := e.state(f)
	om := "/authorization/organization_memberships/" + f.alice
	tests := []struct {
		name, method, path string
		body               any
		field              string
	}{
		// Bodies.
		{"escaped NUL in a name", "POST", "/organizations", `{"name": "Acme\u0000"}`, "name"},
		{"raw invalid UTF-8 in a name", "POST", "/organizations", "{\"name\": \"Acme\xff\"}", "name"},
		{"raw NUL in an external id", "PUT", "/organizations/" + f.org, "{\"external_id\": \"a\x00\"}", "external_id"},
		{"lone surrogate in metadata", "POST", "/organizations", `{"name": "A", "metadata": {"tier": "\ud800"}}`, "metadata.tier"},
		{"NUL in a metadata key", "PUT", "/organizations/" + f.org, `{"metadata": {"t\u0000": "x"}}`, "metadata"},
		{"NUL in an external id", "POST", "/authorization/resources",
			fmt.Sprintf(`{"organization_id": %q, "resource_type_slug": "workspace", "external_id": "x\u0000", "name": "X"}`, f.org), "external_id"},
		{"low surrogate in a user id", "POST", "/user_management/organization_memberships",
			fmt.Sprintf(`{"organization_id": %q, "user_id": "user_\udc00"}`, f.org), "user_id"},
		{"encoded surrogate in a patched name", "PATCH", "/authorization/resources/" + f.eng, "{\"name\": \"\xed\xa0\x80\"}", "name"},
		{"NUL in a permission list", "PUT", "/authorization/roles/org-member/permissions", `{"permissions": ["org:read", "\u0000"]}`, "permissions[1]"},
		{"NUL in a role slug", "POST", om + "/role_assignments", fmt.Sprintf(`{"role_slug": "workspace-admin\u0000", "resource_id": %q}`, f.ops), "role_slug"},
		{"NUL in a check", "POST", om + "/check", fmt.Sprintf(`{"permission_slug": "project:edit\u0000", "resource_id": %q}`, f.web), "permission_slug"},
		{"invalid UTF-8 in a resource type description", "PATCH", "/authorization/resource_types/workspace", "{\"description\": \"\xc3\"}", "description"},
		// Query parameters.
		{"NUL in a filter", "GET", "/authorization/resources?organization_id=" + f.org + "%00", nil, "organization_id"},
		{"invalid UTF-8 in a search", "GET", "/authorization/resources?search=%FF", nil, "search"},
		{"encoded surrogate in a filter", "GET", "/user_management/organization_memberships?user_id=%ED%A0%80", nil, "user_id"},
		{"NUL in a parameter name", "GET", "/organizations?%00=1", nil, ""},
		{"NUL in a discovery permission", "GET", om + "/resources?permission_slug=project:edit%00&parent_resource_id=" + f.eng, nil, "permission_slug"},
		{"NUL in a delete flag", "DELETE", "/authorization/resources/" + f.eng + "?cascade_delete=true%00", nil, "cascade_delete"},
		// Path segments.
		{"NUL in an id", "GET", "/organizations/" + f.org + "%00", nil, "id"},
		{"invalid UTF-8 in an external id", "GET", "/organizations/external_id/acme%FF", nil, "external_id"},
		{"NUL in a deleted resource", "DELETE", "/authorization/resources/" + f.eng + "%00", nil, "id"},
		{"NUL in a patched slug", "PATCH", "/authorization/permissions/org:read%00", `{"name": "x"}`, "slug"},
		{"NUL in a resource's external id", "GET", "/authorization/organizations/" + f.org + "/resources/project/web%00", nil, "external_id"},
		{"encoded surrogate in a membership", "POST", "/authorization/organization_memberships/om_%ED%A0%80/check",
			fmt.Sprintf(`{"permission_slug": "project:edit", "resource_id": %q}`, f.web), "om"},
		{"NUL in a removed permission", "DELETE", "/authorization/roles/org-member/permissions/org:read%00", nil, "permission"},
		{"NUL in an organization of a role", "POST", "/authorization/organizations/" + f.org + "%00/roles", `{"slug": "x", "name": "X"}`, "org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw(tc.method, tc.path, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			got := r.json(t)
			errs, _ := got["errors"].([]any)
			if got["code"] != "invalid_request" || len(errs) != 1 {
				t.Fatalf("body %v, want invalid_request with one error", got)
			}
			if field := str(errs[0].(obj)["field"]); field != tc.field {
				t.Errorf("errors[0].field = %q, want %q (%v)", field, tc.field, got)
			}
			if msg := str(got["message"]); !strings.Contains(msg, "NUL") && !strings.Contains(msg, "UTF-8") {
				t.Errorf("message %q does not say what is wrong", msg)
			}
			if rev := r.header.Get("X-Trellis-Revision"); rev != "" {
				t.Errorf("a refused request answered revision %s", rev)
			}
		})
	}
	if d := cmp.Diff(e.state(f), before); d != "" {
		t.Fatalf("refused requests changed the data (-after +before):\n%s", d)
	}
}

func TestEmptyPatch(t *testing.T) { conformance(t, testEmptyPatch) }

// testEmptyPatch: a PATCH whose body names no field is a 400 on every
// PATCH route and changes nothing; one field is enough.
func testEmptyPatch(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	e.do("POST", "/authorization/organizations/"+f.org+"/roles", obj{"slug": "billing", "name": "Billing"}, 201)
	before := e.state(f)
	paths := []string{
		"/authorization/resource_types/workspace",
		"/authorization/permissions/org:read",
		"/authorization/roles/org-member",
		"/authorization/organizations/" + f.org + "/roles/billing",
		"/authorization/resources/" + f.eng,
		"/authorization/organizations/" + f.org + "/resources/workspace/eng",
	}
	for _, path := range paths {
		for _, body := range []string{"{}", "", " \n", "{ }"} {
			t.Run(fmt.Sprintf("%s %q", path, body), func(t *testing.T) {
				got := e.wantError("PATCH", path, body, 400, "invalid_request")
				if !strings.Contains(str(got["message"]), "no field") {
					t.Errorf("message %q does not say the body names no field", got["message"])
				}
			})
		}
	}
	if d := cmp.Diff(e.state(f), before); d != "" {
		t.Fatalf("empty PATCHes changed the data (-after +before):\n%s", d)
	}
	for _, path := range paths {
		e.do("PATCH", path, obj{"description": "changed"}, 200)
	}
}

// FuzzDecode sends arbitrary bodies to the WorkOS routes that decode one
// (on the in-memory store, with the fixture seeded). It must never answer
// 5xx, always answer JSON, answer 400 to a body with a string that is not
// text, and never accept a PATCH that names no field.
func FuzzDecode(f *testing.F) {
	e := newEnvOn(f, backend{"memory", memoryStore})
	fx := e.seed()
	routes := []struct{ method, path string }{
		{"POST", "/organizations"},
		{"PUT", "/organizations/" + fx.org},
		{"POST", "/user_management/organization_memberships"},
		{"POST", "/authorization/resources"},
		{"PATCH", "/authorization/resources/" + fx.web},
		{"PATCH", "/authorization/resource_types/project"},
		{"PATCH", "/authorization/roles/org-member"},
		{"PUT", "/authorization/roles/workspace-admin/permissions"},
		{"POST", "/authorization/organization_memberships/" + fx.alice + "/role_assignments"},
		{"POST", "/authorization/organization_memberships/" + fx.alice + "/check"},
	}
	for _, s := range []struct {
		route int
		body  string
	}{
		{0, `{"name": "Globex", "external_id": "globex", "metadata": {"tier": "gold"}}`},
		{0, `{"name": "G\u0000"}`},
		{0, "{\"name\": \"G\xff\"}"},
		{1, `{"name": "Acme 2", "metadata": {"\ud800": "x"}}`},
		{2, fmt.Sprintf(`{"organization_id": %q, "user_id": "user_carol", "role_slug": "org-member"}`, fx.org)},
		{3, fmt.Sprintf(`{"organization_id": %q, "resource_type_slug": "project", "external_id": "api", "name": "API", "parent_resource_id": %q}`, fx.org, fx.eng)},
		{3, fmt.Sprintf(`{"organization_id": %q, "resource_type_slug": "project", "external_id": "\udfff", "name": "API"}`, fx.org)},
		{4, fmt.Sprintf(`{"parent_resource_id": %q}`, fx.ops)},
		{4, `{"parent_resource_id": null}`},
		{4, `{}`},
		{5, `{"parent_type_slugs": ["workspace", "organization"]}`},
		{5, `{"name": ""}`},
		{6, `{"description": null}`},
		{6, ``},
		{7, `{"permissions": ["org:read", "project:edit"]}`},
		{7, `{"permissions": null}`},
		{8, fmt.Sprintf(`{"role_slug": "workspace-admin", "resource_id": %q}`, fx.ops)},
		{9, fmt.Sprintf(`{"permission_slug": "project:edit", "resource_id": %q}`, fx.web)},
		{9, `{"permission_slug": "project:edit", "resource_external_id": "web", "resource_type_slug": "project\u0000"}`},
		{9, `[]`},
		{9, `{"permission_slug": 1}`},
	} {
		f.Add(uint8(s.route), []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		var out obj
		if rec.Code != http.StatusNoContent {
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s %s %q: answer %d is not a JSON object: %q", rt.method, rt.path, body, rec.Code, rec.Body)
			}
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %v", rt.method, rt.path, body, rec.Code, out)
		}
		if rawjson.CheckText(body) != nil && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s %s %q: a string is not text, but the answer is %d %v", rt.method, rt.path, body, rec.Code, out)
		}
		if rt.method == "PATCH" && rec.Code < 300 && !namesAField(body) {
			t.Fatalf("%s %s %q: a PATCH naming no field answered %d", rt.method, rt.path, body, rec.Code)
		}
	})
}

// namesAField reports whether body is a JSON object with at least one key.
func namesAField(body []byte) bool {
	var fields map[string]json.RawMessage
	return json.Unmarshal(body, &fields) == nil && len(fields) > 0
}
