package modeltest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/modeltest"
)

// demoTests is the example shipped next to the demo data.
var demoTests = filepath.Join("..", "datafile", "demo.test.yaml")

// TestDemoFile: the shipped example passes, every assertion.
func TestDemoFile(t *testing.T) {
	f, ds, err := modeltest.Load(demoTests)
	if err != nil {
		t.Fatal(err)
	}
	results, err := modeltest.Run(context.Background(), f, ds)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if failed := modeltest.Report(&out, demoTests, results); failed > 0 || len(results) < 10 {
		t.Fatalf("%d failed of %d:\n%s", failed, len(results), out.String())
	}
}

// run runs a test file given inline, next to the demo data.
func run(t *testing.T, content string) ([]modeltest.Result, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, ds, err := modeltest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	results, err := modeltest.Run(context.Background(), f, ds)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	modeltest.Report(&out, "t.yaml", results)
	return results, out.String()
}

// TestWrongAssertionsFail: each kind of assertion fails when the data says
// otherwise, and the report names what differs.
func TestWrongAssertionsFail(t *testing.T) {
	results, out := run(t, `
tokens: {carol: {membership: om_carol}}
tests:
  - name: wrong
    check:
      - {membership: om_carol, permission: "project:edit", resource: "project:api", allowed: true}
      - {token: carol, permission: "workspace:view", resource: "workspace:acme-eng", allowed: true, decided_by: assignment}
      - {membership: om_carol, permission: "project:edit", resource: "project:web"}
      - {token: nobody, permission: "org:view", resource: "organization:org_acme", allowed: true}
    list_resources:
      - {membership: om_carol, permission: "project:edit", resource_type: project, want: ["project:api"]}
    list_memberships:
      - {permission: "project:edit", resource: "project:web", organization: org_acme, want: [om_carol]}
    effective_permissions:
      - {membership: om_carol, resource: "project:web", want: ["project:view"]}
`)
	wantIn := []string{
		"allowed = false, want true",
		"decided_by = token, want assignment",
		"no expectation",
		`no token "nobody"`,
		"- missing: project:api\n        + unexpected: project:web",
		"+ unexpected: om_alice, om_bob",
		"+ unexpected:",
	}
	if len(results) != len(wantIn) {
		t.Fatalf("%d results, want %d:\n%s", len(results), len(wantIn), out)
	}
	for i, res := range results {
		if !strings.Contains(res.Failure, strings.ReplaceAll(wantIn[i], "\n        ", "\n  ")) {
			t.Errorf("assertion %d (%s) failure %q, want it to contain %q", i, res.Assertion, res.Failure, wantIn[i])
		}
	}
	if !strings.Contains(out, "t.yaml: 0 of 7 assertions passed") || !strings.Contains(out, "FAIL  wrong: check om_carol project:edit project:api") {
		t.Errorf("report:\n%s", out)
	}
}

func TestParseRefusesUnknownKeys(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key":   "tests:\n  - name: x\n    chek: []\n",
		"no tests":      "data: demo.yaml\n",
		"unknown token": "tokens: {bob: {member: om_bob}}\ntests: [{name: x}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := modeltest.Parse([]byte(content)); err == nil {
				t.Fatal("parsed")
			}
		})
	}
}

// TestClaims: a membership's token claims as AuthKit builds them: its
// highest-priority role first, the union of its roles' permissions.
func TestClaims(t *testing.T) {
	ds := &model.Dataset{
		Roles: []model.Role{
			{Slug: "admin", ResourceType: model.OrganizationType, Permissions: []string{"org:manage", "org:view"}},
			{Slug: "member", ResourceType: model.OrganizationType, Permissions: []string{"org:view"}},
			{Slug: "billing", ResourceType: model.OrganizationType, OrganizationID: "org_a", Permissions: []string{"billing:view"}},
		},
		Memberships: []model.Membership{{ID: "om_1", UserID: "user_1", OrganizationID: "org_a", RoleSlugs: []string{"billing", "member", "admin"}}},
	}
	got, err := modeltest.Claims(ds, "om_1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sub": "user_1", "org_id": "org_a", "organization_membership_id": "om_1", "role": "admin",
		"roles": []string{"admin", "member", "billing"}, "permissions": []string{"billing:view", "org:manage", "org:view"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if _, err := modeltest.Claims(ds, "om_x"); err == nil {
		t.Error("claims of an unknown membership")
	}
}
