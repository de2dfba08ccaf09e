package datafile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
)

// smallWant is what testdata/small.yaml and small.json hold.
func smallWant() *model.Dataset {
	docID := DeriveResourceID("org_a", "doc", "007")
	bf1 := DeriveResourceID("org_b", "folder", "f1")
	return &model.Dataset{
		MaxDepth: 4,
		ResourceTypes: []model.ResourceType{
			{Slug: "folder", Name: "Folder", ParentTypes: []string{"organization"}},
			{Slug: "doc", Name: "Document", Description: "A document in a folder.", ParentTypes: []string{"folder"}},
		},
		Permissions: []model.Permission{
			{Slug: "org:view", Name: "View org", ResourceType: "organization"},
			{Slug: "doc:read", Name: "Read doc", ResourceType: "doc"},
		},
		Roles: []model.Role{
			{Slug: "admin", Name: "Admin", ResourceType: "organization", Permissions: []string{"org:view", "doc:read"}},
			{Slug: "reader", ResourceType: "folder", Permissions: []string{"doc:read"}},
			{Slug: "auditor", ResourceType: "organization", OrganizationID: "org_a", Permissions: []string{"org:view"}},
		},
		Organizations: []model.Organization{
			{ID: "org_a", Name: "A"},
			{ID: "org_b", Name: "B", RootResourceID: "authz_resource_b_root", Attributes: model.Attributes{"plan": "pro", "seats": json.Number("25")}},
		},
		Memberships: []model.Membership{
			{ID: "om_1", UserID: "user_1", OrganizationID: "org_a", Status: "active", RoleSlugs: []string{"admin", "auditor"}},
			{ID: "om_2", UserID: "user_2", OrganizationID: "org_b", Status: "pending"},
		},
		Resources: []model.Resource{
			{ID: docID, OrganizationID: "org_a", Type: "doc", ExternalID: "007", Name: "Plan", ParentID: "authz_resource_f1",
				Attributes: model.Attributes{"confidential": true, "tags": []any{"q3", "1.5"}, "score": json.Number("1.25")}},
			{ID: "authz_resource_f1", OrganizationID: "org_a", Type: "folder", ExternalID: "f1", Name: "Folder one"},
			{ID: bf1, OrganizationID: "org_b", Type: "folder", ExternalID: "f1"},
			{ID: "authz_resource_b_f2", OrganizationID: "org_b", Type: "folder", ExternalID: "f2", ParentID: "authz_resource_b_root"},
		},
		Assignments: []model.Assignment{
			{ID: "role_assignment_1", MembershipID: "om_1", RoleSlug: "reader", ResourceID: "authz_resource_f1"},
			{ID: DeriveAssignmentID("om_1", "auditor", "authz_resource_root_org_a"), MembershipID: "om_1", RoleSlug: "auditor", ResourceID: "authz_resource_root_org_a"},
			{ID: DeriveAssignmentID("om_2", "reader", bf1), MembershipID: "om_2", RoleSlug: "reader", ResourceID: bf1},
		},
	}
}

func TestLoadSmall(t *testing.T) {
	for _, name := range []string{"small.yaml", "small.json"} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if diff := cmp.Diff(smallWant(), got); diff != "" {
				t.Errorf("Load() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	yamlData := readFile(t, "testdata/small.yaml")
	jsonData := readFile(t, "testdata/small.json")
	tests := []struct {
		name   string
		data   []byte
		format string
	}{
		{"yaml", yamlData, FormatYAML},
		{"yml", yamlData, "yml"},
		{"sniffed yaml", yamlData, ""},
		{"json", jsonData, FormatJSON},
		{"sniffed json", jsonData, ""},
		{"sniffed json with a byte order mark", append([]byte("\uFEFF\n  "), jsonData...), ""},
		{"json read as yaml", jsonData, FormatYAML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data, tt.format)
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(smallWant(), got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeriveIDsAreStable(t *testing.T) {
	// Derived ids may be stored outside Trellis: they must never change.
	if got, want := DeriveResourceID("org_acme", "workspace", "acme-eng"), "authz_resource_65854228a51d1290"; got != want {
		t.Errorf("DeriveResourceID() = %q, want %q", got, want)
	}
	if got, want := DeriveAssignmentID("om_bob", "workspace-admin", "authz_resource_acme_eng"), "role_assignment_ef06048a75ef3713"; got != want {
		t.Errorf("DeriveAssignmentID() = %q, want %q", got, want)
	}
	if DeriveResourceID("a", "b:c", "d") == DeriveResourceID("a", "b", "c:d") {
		t.Error("DeriveResourceID() does not separate its parts")
	}
}

func TestParseDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		format string
		data   string
		want   string // substring of the error
	}{
		{"unknown format", "toml", "a = 1", `unknown data file format "toml"`},
		{"yaml empty", "", "", "yaml: the data file is empty"},
		{"yaml unknown top-level key", FormatYAML, "max_depth: 3\nresource_type: []\n",
			`yaml: line 2: unknown field "resource_type" in the top level (known fields: max_depth, default_role, resource_types,`},
		{"yaml unknown entry key", FormatYAML, "resources:\n  - id: x\n    parnet: y\n",
			`yaml: line 3: unknown field "parnet" in a resources entry (known fields: id, organization_id, type, external_id, name, description, parent, attributes)`},
		{"yaml model key instead of file key", FormatYAML, "memberships:\n  - id: om_1\n    role_slugs: [admin]\n",
			`line 3: unknown field "role_slugs" in a memberships entry`},
		{"yaml repeated key", FormatYAML, "organizations:\n  - id: a\n    id: b\n",
			`line 3: mapping key "id" already defined at line 2`},
		{"yaml wrong type", FormatYAML, "max_depth: deep\n",
			"yaml: line 1: cannot unmarshal !!str `deep` into int"},
		{"yaml list expected", FormatYAML, "roles:\n  slug: admin\n",
			"yaml: line 2: cannot unmarshal !!map into the roles list"},
		{"yaml not a mapping", FormatYAML, "- a\n- b\n",
			"yaml: line 1: cannot unmarshal !!seq into the top level"},
		{"yaml two documents", FormatYAML, "max_depth: 3\n---\nmax_depth: 4\n",
			"yaml: line 2: a data file holds one YAML document"},
		{"yaml syntax", FormatYAML, "roles: [\n", "yaml: line"},
		{"json unknown top-level key", FormatJSON, "{\n  \"max_depth\": 3,\n  \"resource_type\": []\n}",
			`json: line 3: unknown field "resource_type" in the top level (known fields: max_depth,`},
		{"json unknown entry key", FormatJSON, "{\"resources\": [\n  {\"id\": \"x\"},\n  {\"id\": \"y\",\n   \"parnet\": \"z\"}\n]}",
			`json: line 4: unknown field "parnet" in resources[1] (known fields: id, organization_id,`},
		{"json key in another case", FormatJSON, `{"Organizations": []}`,
			`json: line 1: unknown field "Organizations" in the top level`},
		{"json repeated key", FormatJSON, "{\"organizations\": [{\"id\": \"a\",\n \"id\": \"b\"}]}",
			`json: line 2: field "id" appears twice in organizations[0]`},
		{"json wrong type", FormatJSON, "{\"resources\": [\n  {\"external_id\": 7}\n]}",
			`json: line 2: field resources.external_id: want a string, got a JSON number`},
		{"json syntax", FormatJSON, "{\"roles\": [\n  {\"slug\": \"a\",}\n]}",
			"json: line 2, column 16: invalid character '}'"},
		{"json truncated", FormatJSON, "{\"roles\": [\n", "json: line 2: unexpected end of input"},
		{"json trailing data", FormatJSON, "{}\n{}", "json: line 2: unexpected data after the top-level object"},
		{"json not an object", FormatJSON, "[1, 2]", "json: line 1: the top level must be an object"},
		{"json null", FormatJSON, "null", "json: line 1: the top level must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data), tt.format)
			if err == nil {
				t.Fatalf("Parse() = %+v, nil; want an error containing %q", d, tt.want)
			}
			if d != nil {
				t.Errorf("Parse() returned a dataset with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error = %q, want it to contain %q", err, tt.want)
			}
			var verr *model.ValidationError
			if errors.As(err, &verr) {
				t.Errorf("Parse() error is a ValidationError, want a decoding error")
			}
		})
	}
}

// header is a valid start for reference tests: types, roles, two
// organizations, one membership in each.
const header = `resource_types:
  - slug: workspace
  - slug: project
    parent_types: [workspace]
roles:
  - {slug: member, resource_type: organization}
  - {slug: ws-admin, resource_type: workspace}
organizations:
  - {id: org_a}
  - {id: org_b}
memberships:
  - {id: om_a, user_id: user_a, organization_id: org_a, roles: [member]}
  - {id: om_b, user_id: user_b, organization_id: org_b}
resources:
  - {id: r_ws, organization_id: org_a, type: workspace, external_id: ws}
  - {id: r_bws, organization_id: org_b, type: workspace, external_id: bws}
` // line 17 is the next one

// TestParseGroups: groups, their members and group role assignments, a
// type:external_id resource looked up in the group's organization.
func TestParseGroups(t *testing.T) {
	more := `groups:
  - {id: group_a, organization_id: org_a, name: Platform, description: The platform team}
group_members:
  - {group: group_a, membership: om_a}
assignments:
  - {id: as_1, group: group_a, role: ws-admin, resource: "workspace:ws"}
`
	ds, err := Parse([]byte(header+more), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{ds.Groups, ds.GroupMembers, ds.Assignments}
	want := []any{
		[]model.Group{{ID: "group_a", OrganizationID: "org_a", Name: "Platform", Description: "The platform team"}},
		[]model.GroupMember{{GroupID: "group_a", MembershipID: "om_a"}},
		[]model.Assignment{{ID: "as_1", GroupID: "group_a", RoleSlug: "ws-admin", ResourceID: "r_ws"}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("groups (-got +want):\n%s", diff)
	}
}

func TestParseProblems(t *testing.T) {
	type where struct {
		Entity, Field, Code string
		Line                int
	}
	projID := DeriveResourceID("org_a", "project", "p")
	tests := []struct {
		name string
		more string // appended to header; its first line is line 17
		want []where
	}{
		{"parent type:external_id unknown",
			"  - {organization_id: org_a, type: project, external_id: p, parent: \"workspace:nope\"}\n",
			[]where{{"resource " + projID, "parent", model.CodeUnknownReference, 17}}},
		{"parent type:external_id in another organization",
			"  - {organization_id: org_a, type: project, external_id: p, parent: \"workspace:bws\"}\n",
			[]where{{"resource " + projID, "parent", model.CodeUnknownReference, 17}}},
		{"parent id in another organization",
			"  - {organization_id: org_a, type: project, external_id: p, parent: r_bws}\n",
			[]where{{"resource " + projID, "parent", model.CodeCrossOrganization, 17}}},
		{"parent id unknown",
			"  - {organization_id: org_a, type: project, external_id: p, parent: r_nope}\n",
			[]where{{"resource " + projID, "parent", model.CodeUnknownReference, 17}}},
		{"parent type not allowed",
			"  - {organization_id: org_a, type: project, external_id: p}\n",
			[]where{{"resource " + projID, "parent", model.CodeParentTypeNotAllowed, 17}}},
		{"assignment resource type:external_id unknown",
			"assignments:\n  - {id: as_1, membership: om_a, role: ws-admin, resource: \"workspace:bws\"}\n",
			[]where{{"assignment as_1", "resource", model.CodeUnknownReference, 18}}},
		{"assignment membership unknown",
			"assignments:\n  - {id: as_1, membership: om_x, role: ws-admin, resource: \"workspace:ws\"}\n",
			[]where{
				{"assignment as_1", "resource", model.CodeUnknownReference, 18},
				{"assignment as_1", "membership", model.CodeUnknownReference, 18},
			}},
		{"assignment role type mismatch on the root",
			"assignments:\n  - {id: as_1, membership: om_a, role: ws-admin, resource: organization}\n",
			[]where{{"assignment as_1", "role", model.CodeRoleTypeMismatch, 18}}},
		{"assignment on another organization's resource",
			"assignments:\n  - {id: as_1, membership: om_a, role: ws-admin, resource: r_bws}\n",
			[]where{{"assignment as_1", "resource", model.CodeCrossOrganization, 18}}},
		{"group member of another organization",
			"groups:\n  - {id: group_a, organization_id: org_a, name: A}\ngroup_members:\n  - {group: group_a, membership: om_b}\n",
			[]where{{"group_member group_a om_b", "membership", model.CodeCrossOrganization, 20}}},
		{"group member of an unknown group, and a duplicate member",
			"groups:\n  - {id: group_a, organization_id: org_a, name: A}\ngroup_members:\n  - {group: group_x, membership: om_a}\n  - {group: group_a, membership: om_a}\n  - {group: group_a, membership: om_a}\n",
			[]where{
				{"group_member group_x om_a", "group", model.CodeUnknownReference, 20},
				{"group_member group_a om_a", "", model.CodeDuplicate, 22},
			}},
		{"group assignment of a role of another type, and of an unknown group",
			"groups:\n  - {id: group_a, organization_id: org_a, name: A}\nassignments:\n  - {id: as_1, group: group_a, role: ws-admin, resource: organization}\n  - {id: as_2, group: group_x, role: ws-admin, resource: r_ws}\n",
			[]where{
				{"assignment as_1", "role", model.CodeRoleTypeMismatch, 20},
				{"assignment as_2", "group", model.CodeUnknownReference, 21},
			}},
		{"group assignment on another organization's resource",
			"groups:\n  - {id: group_a, organization_id: org_a, name: A}\nassignments:\n  - {id: as_1, group: group_a, role: ws-admin, resource: \"workspace:bws\"}\n",
			[]where{{"assignment as_1", "resource", model.CodeUnknownReference, 20}}},
		{"max_depth",
			"max_depth: -1\n",
			[]where{{"dataset", "max_depth", model.CodeInvalid, 17}}},
		{"default_role unknown",
			"default_role: nope\n",
			[]where{{"dataset", "default_role", model.CodeUnknownReference, 17}}},
		{"default_role of a workspace role",
			"max_depth: 4\ndefault_role: ws-admin\n",
			[]where{{"dataset", "default_role", model.CodeInvalid, 18}}},
		{"duplicate derived assignment",
			"assignments:\n  - {membership: om_a, role: ws-admin, resource: r_ws}\n  - {membership: om_a, role: ws-admin, resource: \"workspace:ws\"}\n",
			[]where{{"assignment " + DeriveAssignmentID("om_a", "ws-admin", "r_ws"), "id", model.CodeDuplicate, 19}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(header+tt.more), FormatYAML)
			var verr *model.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse() error = %v, want a *model.ValidationError", err)
			}
			var got []where
			for _, p := range verr.Problems {
				got = append(got, where{p.Entity, p.Field, p.Code, p.Line})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestParseProblemsInFileOrder(t *testing.T) {
	// The membership's problem comes from Validate, the resource's from
	// reference resolution; they are reported in file order either way.
	tests := []struct {
		name, format, data string
	}{
		{"yaml", FormatYAML, `memberships:
  - {id: om_c, user_id: user_c, organization_id: org_a, roles: [owner]}
organizations:
  - {id: org_a}
resource_types:
  - slug: workspace
resources:
  - {organization_id: org_a, type: workspace, external_id: w, parent: "workspace:nope"}
`},
		{"json", FormatJSON, `{
  "memberships": [
    {"id": "om_c", "user_id": "user_c", "organization_id": "org_a", "roles": ["owner"]}
  ],
  "organizations": [{"id": "org_a"}],
  "resource_types": [{"slug": "workspace"}],
  "resources": [
    {"organization_id": "org_a", "type": "workspace", "external_id": "w",
     "parent": "workspace:nope"}
  ]
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), tt.format)
			var verr *model.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse() error = %v, want a *model.ValidationError", err)
			}
			var got []string
			for _, p := range verr.Problems {
				got = append(got, p.String())
			}
			want := []string{
				`line 2: membership om_c: roles: unknown role "owner" in organization "org_a" (unknown_reference)`,
				`line 8: resource ` + DeriveResourceID("org_a", "workspace", "w") + `: parent: no resource of type "workspace" with external_id "nope" in organization "org_a" (unknown_reference)`,
			}
			if tt.format == FormatJSON {
				want[0] = strings.Replace(want[0], "line 2:", "line 3:", 1)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseText: a NUL byte or invalid UTF-8 in any string stops loading
// with the line and the key, however it is written.
func TestParseText(t *testing.T) {
	const yamlHead = "organizations:\n  - id: org_a\n"
	const jsonHead = "{\"organizations\": [\n  {\"id\": \"org_a\",\n"
	tests := []struct {
		name, format, data string
		want               string // the whole message of a decoding error, or one problem's String
	}{
		{"yaml escaped NUL", FormatYAML, yamlHead + "    name: \"A\\0B\"\n",
			`line 2: organization org_a: name: name contains a NUL byte (invalid)`},
		{"yaml escaped NUL in an id", FormatYAML, yamlHead + "memberships:\n  - {id: \"om_\\0\", user_id: user_1, organization_id: org_a}\n",
			`line 4: membership #0: id: id contains a NUL byte (invalid)`},
		{"yaml escaped NUL in a list", FormatYAML, "resource_types:\n  - {slug: w, parent_types: [\"organization\\0\"]}\n",
			`line 2: resource_type w: parent_types: a value of parent_types contains a NUL byte (invalid)`},
		{"yaml raw NUL", FormatYAML, yamlHead + "    name: A\x00B\n",
			`yaml: line 3: organizations[0].name contains a NUL byte`},
		{"yaml invalid UTF-8", FormatYAML, yamlHead + "resources:\n  - id: x\n    external_id: \"e\xff\"\n",
			`yaml: line 5: resources[0].external_id is not valid UTF-8`},
		{"yaml invalid UTF-8 in a comment", FormatYAML, "# \xfe\n" + yamlHead,
			`yaml: line 1: the file is not valid UTF-8`},
		{"json escaped NUL", FormatJSON, jsonHead + "   \"name\": \"A\\u0000B\"}\n]}",
			`json: line 3: organizations[0].name contains a NUL byte`},
		{"json invalid UTF-8", FormatJSON, jsonHead + "   \"name\": \"A\xc3\"}\n]}",
			`json: line 3: organizations[0].name is not valid UTF-8`},
		{"json lone surrogate", FormatJSON, jsonHead + "   \"name\": \"\\udbff\"}\n]}",
			`json: line 3: organizations[0].name is not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data), tt.format)
			if err == nil {
				t.Fatalf("Parse() = %+v, want an error", d)
			}
			var verr *model.ValidationError
			if errors.As(err, &verr) {
				var got []string
				for _, p := range verr.Problems {
					got = append(got, p.String())
				}
				if !slices.Contains(got, tt.want) {
					t.Fatalf("problems %q do not include %q", got, tt.want)
				}
				return
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse() error = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadErrorNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.yml")
	if err := os.WriteFile(path, []byte("organizations:\n  - {name: nameless}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := "load data file " + path + `: invalid dataset: line 2: organization #0: id: id is required (invalid)`
	if err == nil || err.Error() != want {
		t.Errorf("Load() error = %v, want %q", err, want)
	}
	var verr *model.ValidationError
	if !errors.As(err, &verr) {
		t.Errorf("Load() error does not wrap a *model.ValidationError")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestLoadFormatFromExtension(t *testing.T) {
	// A JSON file named .yaml is read as YAML (which accepts this JSON); a
	// YAML file named .json is rejected as JSON.
	dir := t.TempDir()
	yamlAsJSON := filepath.Join(dir, "data.json")
	if err := os.WriteFile(yamlAsJSON, []byte("organizations: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(yamlAsJSON); err == nil || !strings.Contains(err.Error(), "json: line 1") {
		t.Errorf("Load(%s) error = %v, want a JSON syntax error", yamlAsJSON, err)
	}
	sniffed := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(sniffed, []byte(`{"organizations": [{"id": "org_a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := Load(sniffed); err != nil || len(d.Organizations) != 1 {
		t.Errorf("Load(%s) = %v, %v; want one organization", sniffed, d, err)
	}
}

func TestParseParentTypes(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		data    string
		want    []string
		wantErr string
	}{
		{"yaml absent", FormatYAML, "resource_types: [{slug: w}]", []string{"organization"}, ""},
		{"yaml null", FormatYAML, "resource_types: [{slug: w, parent_types: null}]", []string{"organization"}, ""},
		{"yaml empty", FormatYAML, "resource_types: [{slug: w, parent_types: []}]", nil, "at least one parent type is required"},
		{"json absent", FormatJSON, `{"resource_types": [{"slug": "w"}]}`, []string{"organization"}, ""},
		{"json empty", FormatJSON, `{"resource_types": [{"slug": "w", "parent_types": []}]}`, nil, "at least one parent type is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data), tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, d.ResourceTypes[0].ParentTypes); diff != "" {
				t.Errorf("parent types mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
