package index_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

// small is a two-organization dataset that exercises every key of the
// document: a derived and an explicit root id, an external id reused across
// organizations, organization and environment roles, an inactive membership
// and assignments below the root.
func small() *model.Dataset {
	return &model.Dataset{
		Revision: 42,
		Organizations: []model.Organization{
			{ID: "org_a", Name: "A"},
			{ID: "org_b", Name: "B", RootResourceID: "root_b", Attributes: model.Attributes{"plan": "pro"}},
		},
		ResourceTypes: []model.ResourceType{
			{Slug: "workspace", ParentTypes: []string{model.OrganizationType}},
			{Slug: "project", ParentTypes: []string{"workspace"}},
		},
		Permissions: []model.Permission{
			{Slug: "org:view", ResourceType: model.OrganizationType},
			{Slug: "ws:view", ResourceType: "workspace"},
			{Slug: "p:edit", ResourceType: "project"},
		},
		Roles: []model.Role{
			{Slug: "admin", ResourceType: model.OrganizationType, Permissions: []string{"org:view", "ws:view", "p:edit"}},
			{Slug: "ws-admin", ResourceType: "workspace", Permissions: []string{"ws:view", "p:edit"}},
			{Slug: "billing", ResourceType: model.OrganizationType, OrganizationID: "org_a", Permissions: []string{"org:view"}},
		},
		Memberships: []model.Membership{
			{ID: "om_1", UserID: "user_1", OrganizationID: "org_a", Status: model.StatusActive, RoleSlugs: []string{"billing", "admin"}},
			{ID: "om_2", UserID: "user_2", OrganizationID: "org_a", Status: model.StatusInactive},
			{ID: "om_3", UserID: "user_3", OrganizationID: "org_b", Status: model.StatusActive, RoleSlugs: []string{"admin"}},
		},
		Resources: []model.Resource{
			{ID: "r_ws1", OrganizationID: "org_a", Type: "workspace", ExternalID: "w1"},
			{ID: "r_p2", OrganizationID: "org_a", Type: "project", ExternalID: "p2", ParentID: "r_ws1"},
			{ID: "r_p1", OrganizationID: "org_a", Type: "project", ExternalID: "p1", ParentID: "r_ws1", Attributes: model.Attributes{"confidential": true, "level": json.Number("2")}},
			{ID: "r_wsb", OrganizationID: "org_b", Type: "workspace", ExternalID: "w1", ParentID: "root_b"},
		},
		Assignments: []model.Assignment{
			{ID: "ra_1", MembershipID: "om_2", RoleSlug: "ws-admin", ResourceID: "r_ws1"},
			{ID: "ra_2", MembershipID: "om_3", RoleSlug: "ws-admin", ResourceID: "r_wsb"},
		},
	}
}

const rootA = "authz_resource_root_org_a"

// smallDocument is the document small() must become.
const smallDocument = `{
	"revision": 42,
	"orgs": {"org_a": {"root": "authz_resource_root_org_a"}, "org_b": {"root": "root_b"}},
	"resources": {
		"authz_resource_root_org_a": ["org_a", "organization", "org_a", ["authz_resource_root_org_a"]],
		"root_b": ["org_b", "organization", "org_b", ["root_b"]],
		"r_ws1": ["org_a", "workspace", "w1", ["r_ws1", "authz_resource_root_org_a"]],
		"r_p1":  ["org_a", "project", "p1", ["r_p1", "r_ws1", "authz_resource_root_org_a"]],
		"r_p2":  ["org_a", "project", "p2", ["r_p2", "r_ws1", "authz_resource_root_org_a"]],
		"r_wsb": ["org_b", "workspace", "w1", ["r_wsb", "root_b"]]
	},
	"lookup": {
		"org_a": {
			"organization": {"org_a": "authz_resource_root_org_a"},
			"workspace": {"w1": "r_ws1"},
			"project": {"p1": "r_p1", "p2": "r_p2"}
		},
		"org_b": {
			"organization": {"org_b": "root_b"},
			"workspace": {"w1": "r_wsb"}
		}
	},
	"children": {
		"authz_resource_root_org_a": ["r_ws1"],
		"r_ws1": ["r_p1", "r_p2"],
		"root_b": ["r_wsb"]
	},
	"grants": {
		"authz_resource_root_org_a": {"om_1": ["admin", "org_a/billing"]},
		"r_ws1": {"om_2": ["ws-admin"]},
		"root_b": {"om_3": ["admin"]},
		"r_wsb": {"om_3": ["ws-admin"]}
	},
	"memberships": {
		"om_1": {"org": "org_a", "active": true, "anchors": ["authz_resource_root_org_a"]},
		"om_2": {"org": "org_a", "active": false, "anchors": ["r_ws1"]},
		"om_3": {"org": "org_b", "active": true, "anchors": ["r_wsb", "root_b"]}
	},
	"org_roles": {"om_1": ["admin", "org_a/billing"], "om_2": [], "om_3": ["admin"]},
	"groups": {},
	"member_groups": {},
	"roles": {
		"admin": {"slug": "admin", "type": "organization", "permissions": {"org:view": true, "ws:view": true, "p:edit": true}},
		"ws-admin": {"slug": "ws-admin", "type": "workspace", "permissions": {"ws:view": true, "p:edit": true}},
		"org_a/billing": {"slug": "billing", "type": "organization", "permissions": {"org:view": true}}
	},
	"permissions": {"org:view": {"type": "organization"}, "ws:view": {"type": "workspace"}, "p:edit": {"type": "project"}},
	"max_depth": 5,
	"attributes": {"r_p1": {"confidential": true, "level": 2}},
	"org_attributes": {"org_b": {"plan": "pro"}},
	"quarantined": {},
	"quarantined_resources": {},
	"quarantined_memberships": {},
	"resource_types": {"project": true, "workspace": true}
}`

// jsonOf renders an AST value as JSON-shaped data for cmp.
func jsonOf(t testing.TB, v ast.Value) any {
	t.Helper()
	out, err := ast.JSON(v)
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return out
}

func build(t testing.TB, ds *model.Dataset) ast.Object {
	t.Helper()
	if err := ds.Validate(); err != nil {
		t.Fatalf("the test dataset is invalid: %v", err)
	}
	doc, err := index.BuildAST(ds)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return doc
}

func TestBuild(t *testing.T) {
	got := build(t, small())
	want := ast.MustParseTerm(smallDocument).Value
	if diff := cmp.Diff(jsonOf(t, got), jsonOf(t, want)); diff != "" {
		t.Errorf("document (-got +want):\n%s", diff)
	}
}

// at reads doc[path...] as JSON-shaped data; nil when absent.
func at(t testing.TB, doc ast.Object, path ...string) any {
	t.Helper()
	var v ast.Value = doc
	for _, k := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil
		}
		term := obj.Get(ast.StringTerm(k))
		if term == nil {
			return nil
		}
		v = term.Value
	}
	return jsonOf(t, v)
}

// chain is a dataset of one organization whose resources form a single
// path of n resources below the root: r1 under the root, r2 under r1, …
func chain(n, maxDepth int) *model.Dataset {
	ds := &model.Dataset{
		MaxDepth:      maxDepth,
		Organizations: []model.Organization{{ID: "org_c"}},
		ResourceTypes: []model.ResourceType{{Slug: "t1", ParentTypes: []string{model.OrganizationType}}},
	}
	parent := ""
	for i := 1; i <= n; i++ {
		typ := "t" + string(rune('0'+i))
		if i > 1 {
			ds.ResourceTypes = append(ds.ResourceTypes, model.ResourceType{Slug: typ, ParentTypes: []string{"t" + string(rune('0'+i-1))}})
		}
		id := "r" + string(rune('0'+i))
		ds.Resources = append(ds.Resources, model.Resource{ID: id, OrganizationID: "org_c", Type: typ, ExternalID: id, ParentID: parent})
		parent = id
	}
	return ds
}

func TestAncestorChains(t *testing.T) {
	const rootC = "authz_resource_root_org_c"
	tests := []struct {
		name string
		ds   *model.Dataset
		rid  string
		want []any
	}{
		{"root", small(), rootA, []any{rootA}},
		{"explicit root id", small(), "root_b", []any{"root_b"}},
		{"child of the root", small(), "r_ws1", []any{"r_ws1", rootA}},
		{"grandchild", small(), "r_p1", []any{"r_p1", "r_ws1", rootA}},
		{"at the default depth limit", chain(4, 0), "r4", []any{"r4", "r3", "r2", "r1", rootC}},
		{"middle of a deep chain", chain(4, 0), "r2", []any{"r2", "r1", rootC}},
		{"at a configured depth limit", chain(7, 8), "r7", []any{"r7", "r6", "r5", "r4", "r3", "r2", "r1", rootC}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := build(t, tc.ds)
			if diff := cmp.Diff(at(t, doc, "resources", tc.rid).([]any)[3], tc.want); diff != "" {
				t.Errorf("anc (-got +want):\n%s", diff)
			}
		})
	}
}

func TestChildren(t *testing.T) {
	doc := build(t, chain(3, 0))
	tests := []struct {
		name string
		rid  string
		want any
	}{
		{"root", "authz_resource_root_org_c", []any{"r1"}},
		{"inner node", "r2", []any{"r3"}},
		{"leaf has no entry", "r3", nil},
		{"unknown resource has no entry", "nope", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(at(t, doc, "children", tc.rid), tc.want); diff != "" {
				t.Errorf("children (-got +want):\n%s", diff)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	// Two organizations with an organization role of the same slug: each
	// membership's grant names its own organization's role.
	ds := small()
	ds.Roles = append(ds.Roles, model.Role{Slug: "billing", ResourceType: model.OrganizationType, OrganizationID: "org_b", Permissions: []string{"org:view"}})
	ds.Memberships = append(ds.Memberships, model.Membership{ID: "om_4", UserID: "user_4", OrganizationID: "org_b", Status: model.StatusPending, RoleSlugs: []string{"billing"}})
	ds.Assignments = append(ds.Assignments, model.Assignment{ID: "ra_3", MembershipID: "om_1", RoleSlug: "ws-admin", ResourceID: "r_ws1"})
	doc := build(t, ds)

	tests := []struct {
		name string
		path []string
		want any
	}{
		{"organization roles are grants on the root", []string{"grants", rootA, "om_1"}, []any{"admin", "org_a/billing"}},
		{"an organization role resolves in the membership's organization", []string{"grants", "root_b", "om_4"}, []any{"org_b/billing"}},
		{"assignments on one resource share its object", []string{"grants", "r_ws1"}, map[string]any{"om_1": []any{"ws-admin"}, "om_2": []any{"ws-admin"}}},
		{"anchors are the resources with grants, sorted", []string{"memberships", "om_1", "anchors"}, []any{rootA, "r_ws1"}},
		{"a pending membership is inactive", []string{"memberships", "om_4"}, map[string]any{"org": "org_b", "active": false, "anchors": []any{"root_b"}}},
		{"org_roles lists the organization roles only", []string{"org_roles", "om_1"}, []any{"admin", "org_a/billing"}},
		{"no grants below a leaf without assignments", []string{"grants", "r_p1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(at(t, doc, tc.path...), tc.want); diff != "" {
				t.Errorf("%s (-got +want):\n%s", strings.Join(tc.path, "."), diff)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*model.Dataset)
		want   string // substring of the error
	}{
		{"cycle", func(ds *model.Dataset) {
			ds.Resources = append(ds.Resources,
				model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "workspace", ExternalID: "x", ParentID: "r_y"},
				model.Resource{ID: "r_y", OrganizationID: "org_a", Type: "workspace", ExternalID: "y", ParentID: "r_x"})
		}, "cyclic"},
		{"own parent", func(ds *model.Dataset) {
			ds.Resources = append(ds.Resources, model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "workspace", ExternalID: "x", ParentID: "r_x"})
		}, "r_x"},
		{"too deep", func(ds *model.Dataset) { *ds = *chain(5, 0) }, "deeper than 5 levels"},
		{"too deep for a configured limit", func(ds *model.Dataset) { ds.MaxDepth = 2 }, "deeper than 2 levels"},
		{"unknown parent", func(ds *model.Dataset) { ds.Resources[1].ParentID = "r_nope" }, `resource r_p2: unknown parent "r_nope"`},
		{"unknown organization", func(ds *model.Dataset) { ds.Resources[0].OrganizationID = "org_nope" }, "resource r_ws1: unknown parent"},
		{"unknown organization role", func(ds *model.Dataset) { ds.Memberships[0].RoleSlugs = []string{"nope"} }, `membership om_1: role "nope" does not exist in organization org_a`},
		{"another organization's role", func(ds *model.Dataset) { ds.Memberships[2].RoleSlugs = []string{"billing"} }, `membership om_3: role "billing" does not exist in organization org_b`},
		{"a membership of no organization", func(ds *model.Dataset) { ds.Memberships[2].OrganizationID = "org_nope" }, `membership om_3: organization "org_nope" does not exist`},
		{"unknown assigned role", func(ds *model.Dataset) { ds.Assignments[0].RoleSlug = "nope" }, `assignment ra_1: role "nope" does not exist`},
		{"assignment of an unknown membership", func(ds *model.Dataset) { ds.Assignments[0].MembershipID = "om_nope" }, `assignment ra_1: unknown membership "om_nope"`},
		{"assignment on an unknown resource", func(ds *model.Dataset) { ds.Assignments[0].ResourceID = "r_nope" }, `assignment ra_1: unknown resource "r_nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := small()
			tc.mutate(ds)
			doc, err := index.BuildAST(ds)
			if err == nil {
				t.Fatalf("no error; document %v", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if doc != nil {
				t.Error("a document returned with the error")
			}
		})
	}
}

func TestRevision(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    int64
		wantErr bool
	}{
		{"set", `{"revision": 42}`, 42, false},
		{"zero", `{"revision": 0}`, 0, false},
		{"large", `{"revision": 9007199254740993}`, 9007199254740993, false},
		{"missing", `{}`, 0, true},
		{"a string", `{"revision": "42"}`, 0, true},
		{"fractional", `{"revision": 4.5}`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := index.Revision(ast.MustParseTerm(tc.doc).Value.(ast.Object))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if got, err := index.Revision(build(t, small())); err != nil || got != 42 {
		t.Errorf("Revision(Build(small)) = %d, %v; want 42", got, err)
	}
}

func TestRoleTerm(t *testing.T) {
	got := index.RoleTerm(model.Role{Slug: "r", ResourceType: "project", OrganizationID: "org_a", Permissions: []string{"p:edit", "p:view"}})
	want := ast.MustParseTerm(`{"slug": "r", "type": "project", "permissions": {"p:edit": true, "p:view": true}}`)
	if diff := cmp.Diff(jsonOf(t, got.Value), jsonOf(t, want.Value)); diff != "" {
		t.Errorf("role (-got +want):\n%s", diff)
	}
}
