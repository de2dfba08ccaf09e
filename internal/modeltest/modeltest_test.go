package modeltest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/modeltest"
)

// demoTests is the example shipped next to the demo data.
var demoTests = filepath.Join("..", "datafile", "demo.test.yaml")

// TestDemoFile: the shipped example passes, every assertion.
func TestDemoFile(t *testing.T) {
	results, out := runFile(t, demoTests)
	for _, res := range results {
		if res.Failure != "" || len(results) < 10 {
			t.Fatalf("%d results:\n%s", len(results), out)
		}
	}
}

// run runs a test file given inline, on the embedded demo data.
func run(t *testing.T, content string) ([]modeltest.Result, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return runFile(t, path)
}

// runFile runs the test file at path and returns its results and report.
func runFile(t *testing.T, path string) ([]modeltest.Result, string) {
	t.Helper()
	f, ds, err := modeltest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	results, err := modeltest.Run(context.Background(), f, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	modeltest.Report(&out, filepath.Base(path), results)
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
