package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/pgtest"
)

// call sends a JSON request with an API key and extra header pairs, and
// decodes the JSON answer (nil for an empty body).
func call(t testing.TB, method, url, apiKey string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	a := send(t, method, url, apiKey, body, headers...)
	return a.status, a.body
}

// answer is what a client reads of a response.
type answer struct {
	status     int
	retryAfter string
	body       map[string]any // nil for an empty body
}

// send sends a JSON request with an API key and extra header pairs.
func send(t testing.TB, method, url, apiKey string, body any, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, url, resp.StatusCode, raw)
		}
	}
	return a
}

const testSchema = `
resource_types:
  - {slug: workspace, name: Workspace}
  - {slug: project, name: Project, parent_types: [workspace]}
permissions:
  - {slug: "org:read", name: Read the organization, resource_type: organization}
  - {slug: "project:edit", name: Edit projects, resource_type: project}
roles:
  - {slug: member, name: Member, resource_type: organization, permissions: ["org:read"]}
  - {slug: workspace-admin, name: Workspace admin, resource_type: workspace, permissions: ["project:edit"]}
`

// TestServeWorkOS drives the WorkOS-compatible API as `trellis serve
// --database-url` mounts it: the schema declared with `trellis schema
// apply`, an organization, a membership with the --default-role, a resource
// tree and an assignment written through the WorkOS routes, and a check
// that reads them with X-Trellis-Consistency: full.
func TestServeWorkOS(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"schema", "apply", writeFile(t, t.TempDir(), "schema.yaml", []byte(testSchema)), "--database-url", dsn}, &out, &out); err != nil {
		t.Fatalf("schema apply: %v\n%s", err, out.String())
	}
	url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-1-0123456789", "--api-key", "test-api-key-2-0123456789", "--default-role", "member", "--poll-interval", "50ms"))

	if status, got := call(t, "GET", url+"/organizations", "", nil); status != http.StatusUnauthorized || got["code"] != "unauthorized" {
		t.Fatalf("no key: %d %v", status, got)
	}
	status, org := call(t, "POST", url+"/organizations", "test-api-key-2-0123456789", map[string]any{"name": "Acme"})
	if status != http.StatusCreated {
		t.Fatalf("create organization: %d %v", status, org)
	}
	orgID := org["id"].(string)
	status, om := call(t, "POST", url+"/user_management/organization_memberships", "test-api-key-1-0123456789", map[string]any{"organization_id": orgID, "user_id": "user_1"})
	if status != http.StatusCreated || !cmp.Equal(om["roles"], []any{map[string]any{"slug": "member"}}) {
		t.Fatalf("create membership with the default role: %d %v", status, om)
	}
	omID := om["id"].(string)
	for _, r := range []map[string]any{
		{"organization_id": orgID, "resource_type_slug": "workspace", "external_id": "eng", "name": "Engineering"},
		{"organization_id": orgID, "resource_type_slug": "project", "external_id": "web", "name": "Web",
			"parent_resource_external_id": "eng", "parent_resource_type_slug": "workspace"},
	} {
		if status, got := call(t, "POST", url+"/authorization/resources", "test-api-key-1-0123456789", r); status != http.StatusCreated {
			t.Fatalf("create resource: %d %v", status, got)
		}
	}
	check := func(perm string, headers ...string) bool {
		t.Helper()
		status, got := call(t, "POST", url+"/authorization/organization_memberships/"+omID+"/check", "test-api-key-1-0123456789",
			map[string]any{"permission_slug": perm, "resource_external_id": "web", "resource_type_slug": "project"}, headers...)
		if status != http.StatusOK {
			t.Fatalf("check %s: %d %v", perm, status, got)
		}
		return got["authorized"] == true
	}
	if !check("org:read") {
		t.Error("the default role's org:read is not inherited from the root")
	}
	if check("project:edit") {
		t.Error("project:edit allowed before any assignment")
	}
	if status, got := call(t, "POST", url+"/authorization/organization_memberships/"+omID+"/role_assignments", "test-api-key-1-0123456789",
		map[string]any{"role_slug": "workspace-admin", "resource_external_id": "eng", "resource_type_slug": "workspace"}); status != http.StatusCreated {
		t.Fatalf("assign: %d %v", status, got)
	}
	if !check("project:edit", "X-Trellis-Consistency", "full") {
		t.Error("X-Trellis-Consistency: full does not see the assignment")
	}
	// The native API is still served next to it.
	if status, got := call(t, "GET", url+"/health", "", nil); status != http.StatusOK {
		t.Errorf("/health: %d %v", status, got)
	}
}

// TestServeWorkOSWithoutDatabase: without --database-url the WorkOS routes
// answer 501 no_database, and --default-role is refused.
func TestServeWorkOSWithoutDatabase(t *testing.T) {
	url := startService(t, testConfig(t, "--api-key", "test-api-key-k-0123456789"))
	for _, path := range []string{"/organizations", "/user_management/organization_memberships", "/authorization/permissions"} {
		status, got := call(t, "GET", url+path, "test-api-key-k-0123456789", nil)
		if status != http.StatusNotImplemented || got["code"] != "no_database" || got["message"] == "" {
			t.Errorf("GET %s: %d %v", path, status, got)
		}
	}
	if _, err := parseServe([]string{"--default-role", "member"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Errorf("--default-role without a database: %v", err)
	}
}

func TestSchemaApply(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	apply := func(t *testing.T, content string, extra ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append([]string{"schema", "apply", writeFile(t, t.TempDir(), "schema.yaml", []byte(content)), "--database-url", dsn}, extra...), &out, &out)
		return out.String(), err
	}
	lines := func(out string) []string {
		var ls []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, "applied ") {
				ls = append(ls, l)
			}
		}
		return ls
	}
	// v2 renames a role, drops project:edit from it and declares neither
	// project:edit nor project.
	const v2 = `
resource_types:
  - {slug: workspace, name: Workspace}
permissions:
  - {slug: "org:read", name: Read the organization, resource_type: organization}
roles:
  - {slug: member, name: Organization member, resource_type: organization, permissions: ["org:read"]}
  - {slug: workspace-admin, name: Workspace admin, resource_type: workspace}
`
	for _, tc := range []struct {
		name    string
		content string
		prune   bool
		want    []string
	}{
		{"create", testSchema, false, []string{
			"created resource type workspace", "created resource type project",
			"created permission org:read", "created permission project:edit",
			"created role member", "created role workspace-admin"}},
		{"again changes nothing", testSchema, false, []string{"schema is up to date: nothing changed"}},
		{"update without prune keeps the rest", v2, false, []string{"updated role member", "updated role workspace-admin"}},
		{"prune deletes what the file does not name", v2, true, []string{"deleted permission project:edit", "deleted resource type project"}},
		{"pruned again changes nothing", v2, true, []string{"schema is up to date: nothing changed"}},
		{"back to the first", testSchema, false, []string{
			"created resource type project", "created permission project:edit", "updated role member", "updated role workspace-admin"}},
		{"default role", "default_role: member\n" + testSchema, false, []string{"set default role member"}},
		{"default role again changes nothing", "default_role: member\n" + testSchema, false, []string{"schema is up to date: nothing changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.prune {
				extra = append(extra, "--prune")
			}
			out, err := apply(t, tc.content, extra...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if d := cmp.Diff(lines(out), tc.want); d != "" {
				t.Fatalf("output (-got +want):\n%s", d)
			}
		})
	}

	t.Run("a failed prune changes nothing", func(t *testing.T) {
		// A resource of type project: pruning the type must fail, and the
		// role update in the same run must not happen either.
		url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-k-0123456789"))
		_, org := call(t, "POST", url+"/organizations", "test-api-key-k-0123456789", map[string]any{"name": "Acme"})
		for _, r := range []map[string]any{
			{"organization_id": org["id"], "resource_type_slug": "workspace", "external_id": "eng", "name": "Engineering"},
			{"organization_id": org["id"], "resource_type_slug": "project", "external_id": "web", "name": "Web",
				"parent_resource_external_id": "eng", "parent_resource_type_slug": "workspace"},
		} {
			if status, got := call(t, "POST", url+"/authorization/resources", "test-api-key-k-0123456789", r); status != http.StatusCreated {
				t.Fatalf("create resource: %d %v", status, got)
			}
		}
		out, err := apply(t, v2, "--prune")
		if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("prune of a type in use: %v\n%s", err, out)
		}
		_, role := call(t, "GET", url+"/authorization/roles/member", "test-api-key-k-0123456789", nil)
		if role["name"] != "Member" {
			t.Errorf("role member after a failed apply: %v", role)
		}
		if _, def := call(t, "GET", url+"/authorization/default_role", "test-api-key-k-0123456789", nil); def["role_slug"] != "member" {
			t.Errorf("the default role set by schema apply, read through the API: %v", def)
		}
	})

	t.Run("rejects data sections", func(t *testing.T) {
		out, err := apply(t, testSchema+"organizations:\n  - {id: org_a, name: A}\n")
		if err == nil || !strings.Contains(err.Error(), "trellis load") {
			t.Fatalf("a schema file with organizations: %v\n%s", err, out)
		}
	})
}
