package policies_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/trellis-authz/trellis/policies"
)

// teamExtension and teamTests are what a team outside this repository
// keeps: an extension, and its tests on the core's fixture.
const (
	teamExtension = `package trellis.ext.myext

deny contains {"code": "outside_office", "message": "edits need the office network"} if {
	input.permission == "project:edit"
	not input.context.network == "office"
}
`
	teamTests = `package trellis.ext.myext_test

import data.trellis

# om_bob is project-editor on prj_api (trellis/fixture_test.rego).
edit(ctx) := d if {
	d := trellis.check with data.trellis_data as data.trellis_test.fixture
		with data.trellis.extension_set.names as {"myext"}
		with input as {"subject": {"organization_membership_id": "om_bob"}, "permission": "project:edit", "resource": {"id": data.trellis_test.prj_api}, "context": ctx}
}

test_office if edit({"network": "office"}).allowed

test_elsewhere if {
	d := edit({"network": "cafe"})
	not d.allowed
	d.reason.code == "outside_office"
	d.reason.rule == "data.trellis.ext.myext.deny"
}

test_without_the_extension if {
	trellis.check.allowed with data.trellis_data as data.trellis_test.fixture
		with input as {"subject": {"organization_membership_id": "om_bob"}, "permission": "project:edit", "resource": {"id": data.trellis_test.prj_api}}
}
`
	teamFailing = `package trellis.ext.myext_test

test_wrong if edit({"network": "cafe"}).allowed
`
)

func TestExport(t *testing.T) {
	core := filepath.Join(t.TempDir(), "core")
	got, err := policies.Export(core, false)
	if err != nil {
		t.Fatal(err)
	}
	mods := policies.Modules()
	want := []string{policies.FixtureModule}
	for rel := range mods {
		want = append(want, rel)
	}
	slices.Sort(want)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("written (-got +want):\n%s", diff)
	}
	for rel, src := range mods {
		b, err := os.ReadFile(filepath.Join(core, filepath.FromSlash(rel)))
		if err != nil || string(b) != src {
			t.Errorf("%s: not the module the server compiles (%v)", rel, err)
		}
	}
	fixture, err := os.ReadFile("trellis/fixture_test.rego")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(core, policies.FixtureModule)); string(b) != string(fixture) {
		t.Errorf("%s is not policies/trellis/fixture_test.rego", policies.FixtureModule)
	}

	t.Run("a team's tests pass", func(t *testing.T) {
		team := writeDir(t, map[string]string{"myext.rego": teamExtension, "myext_test.rego": teamTests})
		results := runOPATest(t, core, team)
		for _, name := range []string{"test_office", "test_elsewhere", "test_without_the_extension"} {
			r, ok := results[name]
			switch {
			case !ok:
				t.Errorf("%s did not run: %v", name, results)
			case !r.Pass():
				t.Errorf("%s: %s (error %v)", name, r, r.Error)
			}
		}
	})
	t.Run("a team's failing test fails", func(t *testing.T) {
		team := writeDir(t, map[string]string{"myext.rego": teamExtension, "myext_test.rego": teamTests, "wrong_test.rego": teamFailing})
		results := runOPATest(t, core, team)
		if r, ok := results["test_wrong"]; !ok || !r.Fail {
			t.Errorf("test_wrong: %v, want a failure", r)
		}
		if r := results["test_office"]; r == nil || !r.Pass() {
			t.Errorf("test_office: %v, want a pass beside the failure", r)
		}
	})

	if _, err := policies.Export(core, false); !errors.Is(err, policies.ErrNotEmpty) {
		t.Errorf("a second export: %v, want ErrNotEmpty", err)
	}
	if err := os.WriteFile(filepath.Join(core, policies.FixtureModule), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policies.Export(core, true); err != nil {
		t.Fatalf("force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(core, policies.FixtureModule)); string(b) != string(fixture) {
		t.Error("force did not write over an edited fixture")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policies.Export(file, true); err == nil || !strings.Contains(err.Error(), "export") {
		t.Errorf("a file, not a directory: %v", err)
	}
}

// runOPATest runs OPA's tester over dirs, as `opa test dirs...` does, and
// returns the results of the package trellis.ext.myext_test by test name.
func runOPATest(t testing.TB, dirs ...string) map[string]*tester.Result {
	t.Helper()
	results, err := tester.Run(context.Background(), dirs...)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*tester.Result{}
	for _, r := range results {
		if r.Package == "data.trellis.ext.myext_test" {
			byName[r.Name] = r
		}
	}
	return byName
}
