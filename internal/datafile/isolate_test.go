package datafile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
)

// badOrgFile has two organizations; org_b's entries break rules (an
// unresolved parent, a role of the wrong type), org_a's do not.
const badOrgFile = `
resource_types:
  - {slug: folder, parent_types: [organization]}
  - {slug: doc, parent_types: [folder]}
permissions:
  - {slug: "doc:read", resource_type: doc}
roles:
  - {slug: reader, resource_type: folder, permissions: ["doc:read"]}
organizations:
  - {id: org_a}
  - {id: org_b}
memberships:
  - {id: om_a, user_id: u1, organization_id: org_a}
  - {id: om_b, user_id: u2, organization_id: org_b, roles: [reader]}
resources:
  - {id: r_a, organization_id: org_a, type: folder, external_id: f1}
  - {id: r_b, organization_id: org_b, type: doc, external_id: d1, parent: "folder:nope"}
assignments:
  - {membership: om_a, role: reader, resource: r_a}
`

func TestParseIsolated(t *testing.T) {
	if _, err := Parse([]byte(badOrgFile), FormatYAML); err == nil {
		t.Fatal("Parse accepted a file that breaks rules")
	}
	got, err := ParseIsolated([]byte(badOrgFile), FormatYAML)
	if err != nil {
		t.Fatalf("ParseIsolated() error = %v", err)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the served dataset is invalid: %v", err)
	}
	var orgs, resources []string
	for _, o := range got.Organizations {
		orgs = append(orgs, o.ID)
	}
	for _, r := range got.Resources {
		resources = append(resources, r.ID)
	}
	if diff := cmp.Diff([2][]string{{"org_a"}, {"r_a"}}, [2][]string{orgs, resources}); diff != "" {
		t.Errorf("served organizations and resources (-want +got):\n%s", diff)
	}
	if len(got.Quarantined) != 1 || got.Quarantined[0].Organization != "org_b" {
		t.Fatalf("Quarantined = %+v, want org_b", got.Quarantined)
	}
	q := got.Quarantined[0]
	var where []string
	for _, p := range q.Problems {
		if p.Line == 0 {
			t.Errorf("problem without a line: %v", p)
		}
		where = append(where, p.Field+" "+p.Code)
	}
	if diff := cmp.Diff([]string{"roles role_type_mismatch", "parent unknown_reference"}, where); diff != "" {
		t.Errorf("org_b's problems (-want +got):\n%s\n%v", diff, q.Problems)
	}
	if diff := cmp.Diff([]string{model.RootResourceID("org_b"), "r_b"}, q.Resources); diff != "" {
		t.Errorf("org_b's resources (-want +got):\n%s", diff)
	}

	// A problem in the shared data still fails, naming every problem.
	shared := strings.Replace(badOrgFile, `permissions: ["doc:read"]}`, `permissions: ["doc:nope"]}`, 1)
	_, err = ParseIsolated([]byte(shared), FormatYAML)
	var verr *model.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "doc:nope") || !strings.Contains(err.Error(), `external_id "nope"`) {
		t.Errorf("ParseIsolated() with a bad environment role: %v", err)
	}
}

// TestLoadIsolatedEarly: the dataset handed out before validation is the
// one returned when the file is valid; when validation holds an
// organization out, another is returned; when a reference does not even
// resolve, none is handed out.
func TestLoadIsolatedEarly(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	valid := strings.NewReplacer(`parent: "folder:nope"`, `parent: "folder:f2"`, "organization_id: org_b, roles: [reader]}", "organization_id: org_b}").Replace(badOrgFile) +
		"  - {membership: om_b, role: reader, resource: r_b2}\n"
	valid = strings.Replace(valid, "resources:\n", "resources:\n  - {id: r_b2, organization_id: org_b, type: folder, external_id: f2}\n", 1)
	// A role assigned on a resource of another type: every reference
	// resolves, and only validation finds it.
	mistyped := strings.Replace(valid, "resource: r_b2}", "resource: r_b}", 1)
	for _, c := range []struct {
		name, body  string
		handed      bool
		same        bool
		quarantined []string
	}{
		{"valid", valid, true, true, nil},
		{"found by validation", mistyped, true, false, []string{"org_b"}},
		{"an unresolved reference", badOrgFile, false, false, []string{"org_b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var early *model.Dataset
			calls := 0
			got, err := LoadIsolatedEarly(write(c.name+".yaml", c.body), func(d *model.Dataset) { early = d; calls++ })
			if err != nil {
				t.Fatal(err)
			}
			if (calls == 1) != c.handed || calls > 1 {
				t.Errorf("handed out %d times, want it %t", calls, c.handed)
			}
			if (got == early) != c.same {
				t.Errorf("the dataset returned is the one handed out: %t, want %t", got == early, c.same)
			}
			var held []string
			for _, q := range got.Quarantined {
				held = append(held, q.Organization)
			}
			if diff := cmp.Diff(c.quarantined, held); diff != "" {
				t.Errorf("quarantined (-want +got):\n%s", diff)
			}
		})
	}
}
