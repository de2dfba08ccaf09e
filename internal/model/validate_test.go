package model

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validDataset returns a small dataset that breaks no rule; each test case
// changes one thing in a fresh copy.
func validDataset() *Dataset {
	return &Dataset{
		Organizations: []Organization{
			{ID: "org_a", Name: "A"},
			{ID: "org_b", Name: "B"},
		},
		ResourceTypes: []ResourceType{
			{Slug: "workspace", ParentTypes: []string{OrganizationType}},
			{Slug: "project", ParentTypes: []string{"workspace"}},
			{Slug: "app", ParentTypes: []string{"workspace", "project"}},
		},
		Permissions: []Permission{
			{Slug: "org:view", ResourceType: OrganizationType},
			{Slug: "workspace:view", ResourceType: "workspace"},
			{Slug: "project:edit", ResourceType: "project"},
			{Slug: "app:deploy", ResourceType: "app"},
		},
		Roles: []Role{
			{Slug: "org-admin", ResourceType: OrganizationType, Permissions: []string{"org:view", "workspace:view", "project:edit", "app:deploy"}},
			{Slug: "member", ResourceType: OrganizationType, Permissions: []string{"org:view"}},
			{Slug: "ws-admin", ResourceType: "workspace", Permissions: []string{"workspace:view", "project:edit", "app:deploy"}},
			{Slug: "proj-editor", ResourceType: "project", Permissions: []string{"project:edit"}},
			{Slug: "billing", ResourceType: OrganizationType, OrganizationID: "org_a", Permissions: []string{"org:view"}},
		},
		Memberships: []Membership{
			{ID: "om_a1", UserID: "user_1", OrganizationID: "org_a", Status: StatusActive, RoleSlugs: []string{"org-admin"}},
			{ID: "om_b1", UserID: "user_2", OrganizationID: "org_b", Status: StatusPending, RoleSlugs: []string{"member"}},
		},
		Resources: []Resource{
			{ID: "r_ws", OrganizationID: "org_a", Type: "workspace", ExternalID: "ws1"},
			{ID: "r_proj", OrganizationID: "org_a", Type: "project", ExternalID: "p1", ParentID: "r_ws"},
			{ID: "r_app", OrganizationID: "org_a", Type: "app", ExternalID: "a1", ParentID: "r_proj"},
			{ID: "r_bws", OrganizationID: "org_b", Type: "workspace", ExternalID: "ws1", ParentID: RootResourceID("org_b")},
		},
		Assignments: []Assignment{
			{ID: "as_1", MembershipID: "om_a1", RoleSlug: "ws-admin", ResourceID: "r_ws"},
			{ID: "as_2", MembershipID: "om_a1", RoleSlug: "billing", ResourceID: RootResourceID("org_a")},
			{ID: "as_3", MembershipID: "om_b1", RoleSlug: "ws-admin", ResourceID: "r_bws"},
		},
	}
}

// where names a problem by what tests assert on.
type where struct{ Entity, Field, Code string }

func problemsOf(t testing.TB, err error) []where {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate() error = %T %v, want *ValidationError", err, err)
	}
	got := make([]where, len(verr.Problems))
	for i, p := range verr.Problems {
		got[i] = where{p.Entity, p.Field, p.Code}
		if p.Message == "" {
			t.Errorf("problem %v has no message", p)
		}
	}
	return got
}

func TestValidateValid(t *testing.T) {
	if err := validDataset().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	if err := (&Dataset{}).Validate(); err != nil {
		t.Fatalf("empty Dataset: Validate() = %v, want nil", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *Dataset)
		want   []where
	}{
		// dataset
		{"negative max depth", func(d *Dataset) { d.MaxDepth = -1 },
			[]where{{"dataset", "max_depth", CodeInvalid}}},

		// text
		{"NUL in a name", func(d *Dataset) { d.Organizations[0].Name = "A\x00" },
			[]where{{"organization org_a", "name", CodeInvalid}}},
		{"invalid UTF-8 in an external id", func(d *Dataset) { d.Resources[0].ExternalID = "ws\xff" },
			[]where{{"resource r_ws", "external_id", CodeInvalid}}},
		{"NUL in an id names the entity by index", func(d *Dataset) { d.Memberships[1].ID = "om_\x00" },
			[]where{{"membership #1", "id", CodeInvalid}, {"assignment as_3", "membership_id", CodeUnknownReference}}},
		{"surrogate in a description", func(d *Dataset) { d.ResourceTypes[0].Description = "\xed\xa0\x80" },
			[]where{{"resource_type workspace", "description", CodeInvalid}}},
		{"NUL in a permission list", func(d *Dataset) { d.Roles[1].Permissions = append(d.Roles[1].Permissions, "org:view\x00") },
			[]where{{"role member", "permissions", CodeInvalid}, {"role member", "permissions", CodeUnknownReference}}},
		{"NUL in an organization role's organization", func(d *Dataset) { d.Roles[4].OrganizationID = "org_a\x00" },
			[]where{{"role #4", "organization_id", CodeInvalid}, {"role org_a\x00/billing", "organization_id", CodeUnknownReference}, {"assignment as_2", "role", CodeUnknownReference}}},
		{"invalid UTF-8 in an assignment's role", func(d *Dataset) { d.Assignments[0].RoleSlug = "\xc0" },
			[]where{{"assignment as_1", "role", CodeInvalid}, {"assignment as_1", "role", CodeUnknownReference}}},

		// organizations
		{"organization id required", func(d *Dataset) { d.Organizations = append(d.Organizations, Organization{Name: "x"}) },
			[]where{{"organization #2", "id", CodeInvalid}}},
		{"organization id unique", func(d *Dataset) { d.Organizations = append(d.Organizations, Organization{ID: "org_b"}) },
			[]where{{"organization org_b", "id", CodeDuplicate}}},
		{"organization root id unique", func(d *Dataset) {
			d.Organizations = append(d.Organizations, Organization{ID: "org_c", RootResourceID: RootResourceID("org_a")})
		}, []where{{"organization org_c", "root_resource_id", CodeDuplicate}}},
		{"resource id must not be a root id", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: RootResourceID("org_a"), OrganizationID: "org_a", Type: "workspace", ExternalID: "x"})
		}, []where{{"resource authz_resource_root_org_a", "id", CodeDuplicate}}},

		// resource types
		{"resource type slug required", func(d *Dataset) {
			d.ResourceTypes = append(d.ResourceTypes, ResourceType{ParentTypes: []string{OrganizationType}})
		}, []where{{"resource_type #3", "slug", CodeInvalid}}},
		{"resource type slug unique", func(d *Dataset) {
			d.ResourceTypes = append(d.ResourceTypes, ResourceType{Slug: "project", ParentTypes: []string{OrganizationType}})
		}, []where{{"resource_type project", "slug", CodeDuplicate}}},
		{"resource type organization reserved", func(d *Dataset) {
			d.ResourceTypes = append(d.ResourceTypes, ResourceType{Slug: OrganizationType, ParentTypes: []string{"workspace"}})
		}, []where{{"resource_type organization", "slug", CodeInvalid}}},
		{"resource type parent types required", func(d *Dataset) { d.ResourceTypes[0].ParentTypes = nil },
			[]where{{"resource_type workspace", "parent_types", CodeInvalid}, {"resource r_ws", "parent_id", CodeParentTypeNotAllowed}, {"resource r_bws", "parent_id", CodeParentTypeNotAllowed}}},
		{"resource type parent type known", func(d *Dataset) { d.ResourceTypes[1].ParentTypes = []string{"workspace", "folder"} },
			[]where{{"resource_type project", "parent_types", CodeUnknownReference}}},
		{"resource type parent type listed once", func(d *Dataset) { d.ResourceTypes[2].ParentTypes = []string{"project", "project"} },
			[]where{{"resource_type app", "parent_types", CodeDuplicate}}},
		{"resource type graph acyclic", func(d *Dataset) {
			d.ResourceTypes = append(d.ResourceTypes,
				ResourceType{Slug: "folder", ParentTypes: []string{OrganizationType, "doc"}},
				ResourceType{Slug: "doc", ParentTypes: []string{"folder"}})
		}, []where{{"resource_type doc", "parent_types", CodeCycle}}},
		{"resource type self parent", func(d *Dataset) { d.ResourceTypes[1].ParentTypes = []string{"workspace", "project"} },
			[]where{{"resource_type project", "parent_types", CodeCycle}}},

		// permissions
		{"permission slug required", func(d *Dataset) { d.Permissions = append(d.Permissions, Permission{ResourceType: "app"}) },
			[]where{{"permission #4", "slug", CodeInvalid}}},
		{"permission slug unique", func(d *Dataset) {
			d.Permissions = append(d.Permissions, Permission{Slug: "org:view", ResourceType: OrganizationType})
		}, []where{{"permission org:view", "slug", CodeDuplicate}}},
		{"permission resource type required", func(d *Dataset) { d.Permissions = append(d.Permissions, Permission{Slug: "x:y"}) },
			[]where{{"permission x:y", "resource_type", CodeInvalid}}},
		{"permission resource type known", func(d *Dataset) {
			d.Permissions = append(d.Permissions, Permission{Slug: "folder:view", ResourceType: "folder"})
		}, []where{{"permission folder:view", "resource_type", CodeUnknownReference}}},

		// roles
		{"role slug required", func(d *Dataset) { d.Roles = append(d.Roles, Role{ResourceType: "app"}) },
			[]where{{"role #5", "slug", CodeInvalid}}},
		{"environment role slug unique", func(d *Dataset) { d.Roles = append(d.Roles, Role{Slug: "member", ResourceType: "app"}) },
			[]where{{"role member", "slug", CodeDuplicate}}},
		{"organization role slug unique in its organization", func(d *Dataset) {
			d.Roles = append(d.Roles, Role{Slug: "billing", ResourceType: OrganizationType, OrganizationID: "org_a"})
		}, []where{{"role org_a/billing", "slug", CodeDuplicate}}},
		{"organization role slug may repeat across organizations", func(d *Dataset) {
			d.Roles = append(d.Roles, Role{Slug: "billing", ResourceType: OrganizationType, OrganizationID: "org_b"})
		}, nil},
		{"organization role slug not an environment role's", func(d *Dataset) {
			d.Roles = append(d.Roles, Role{Slug: "member", ResourceType: OrganizationType, OrganizationID: "org_b"})
		}, []where{{"role org_b/member", "slug", CodeDuplicate}}},
		{"organization role organization exists", func(d *Dataset) {
			d.Roles = append(d.Roles, Role{Slug: "x", ResourceType: OrganizationType, OrganizationID: "org_zz"})
		}, []where{{"role org_zz/x", "organization_id", CodeUnknownReference}}},
		{"role resource type required", func(d *Dataset) { d.Roles[1].ResourceType = "" },
			[]where{{"role member", "resource_type", CodeInvalid}, {"membership om_b1", "role_slugs", CodeRoleTypeMismatch}}},
		{"role resource type known", func(d *Dataset) { d.Roles[3].ResourceType = "folder" },
			[]where{{"role proj-editor", "resource_type", CodeUnknownReference}}},
		{"role permission exists", func(d *Dataset) { d.Roles[3].Permissions = append(d.Roles[3].Permissions, "project:nope") },
			[]where{{"role proj-editor", "permissions", CodeUnknownReference}}},
		{"role permission listed once", func(d *Dataset) { d.Roles[3].Permissions = append(d.Roles[3].Permissions, "project:edit") },
			[]where{{"role proj-editor", "permissions", CodeDuplicate}}},
		{"role permission of an ancestor type", func(d *Dataset) { d.Roles[3].Permissions = append(d.Roles[3].Permissions, "workspace:view") },
			[]where{{"role proj-editor", "permissions", CodePermissionTypeNotAllowed}}},
		{"role permission of the organization type", func(d *Dataset) { d.Roles[2].Permissions = append(d.Roles[2].Permissions, "org:view") },
			[]where{{"role ws-admin", "permissions", CodePermissionTypeNotAllowed}}},
		{"organization role permission of any type", func(d *Dataset) { d.Roles[4].Permissions = append(d.Roles[4].Permissions, "app:deploy") },
			nil},

		// memberships
		{"membership id required", func(d *Dataset) { d.Memberships[1].ID = "" },
			[]where{{"membership #1", "id", CodeInvalid}, {"assignment as_3", "membership_id", CodeUnknownReference}}},
		{"membership id unique", func(d *Dataset) { d.Memberships = append(d.Memberships, d.Memberships[0]) },
			[]where{{"membership om_a1", "id", CodeDuplicate}}},
		{"membership user id required", func(d *Dataset) { d.Memberships[0].UserID = "" },
			[]where{{"membership om_a1", "user_id", CodeInvalid}}},
		{"membership organization required", func(d *Dataset) { d.Memberships[1].OrganizationID = "" },
			[]where{{"membership om_b1", "organization_id", CodeInvalid}}},
		{"membership organization exists", func(d *Dataset) { d.Memberships[1].OrganizationID = "org_zz" },
			[]where{{"membership om_b1", "organization_id", CodeUnknownReference}, {"assignment as_3", "resource_id", CodeCrossOrganization}}},
		{"membership status", func(d *Dataset) { d.Memberships[0].Status = "suspended" },
			[]where{{"membership om_a1", "status", CodeInvalid}}},
		{"membership status required", func(d *Dataset) { d.Memberships[0].Status = "" },
			[]where{{"membership om_a1", "status", CodeInvalid}}},
		{"membership role exists", func(d *Dataset) { d.Memberships[0].RoleSlugs = []string{"owner"} },
			[]where{{"membership om_a1", "role_slugs", CodeUnknownReference}}},
		{"membership role of another organization", func(d *Dataset) { d.Memberships[1].RoleSlugs = []string{"billing"} },
			[]where{{"membership om_b1", "role_slugs", CodeUnknownReference}}},
		{"membership organization role resolves", func(d *Dataset) { d.Memberships[0].RoleSlugs = []string{"billing", "member"} },
			nil},
		{"membership role of organization type", func(d *Dataset) { d.Memberships[0].RoleSlugs = []string{"ws-admin"} },
			[]where{{"membership om_a1", "role_slugs", CodeRoleTypeMismatch}}},
		{"membership role listed once", func(d *Dataset) { d.Memberships[0].RoleSlugs = []string{"member", "member"} },
			[]where{{"membership om_a1", "role_slugs", CodeDuplicate}}},

		// resources
		{"resource id required", func(d *Dataset) { d.Resources[3].ID = "" },
			[]where{{"resource #3", "id", CodeInvalid}, {"assignment as_3", "resource_id", CodeUnknownReference}}},
		{"resource id unique", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_ws", OrganizationID: "org_a", Type: "workspace", ExternalID: "x"})
		},
			[]where{{"resource r_ws", "id", CodeDuplicate}}},
		{"resource organization required", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", Type: "workspace", ExternalID: "x"})
		}, []where{{"resource r_x", "organization_id", CodeInvalid}}},
		{"resource organization exists", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_zz", Type: "workspace", ExternalID: "x"})
		}, []where{{"resource r_x", "organization_id", CodeUnknownReference}}},
		{"resource type required", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_a", ExternalID: "x"})
		}, []where{{"resource r_x", "type", CodeInvalid}}},
		{"resource type known", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_a", Type: "folder", ExternalID: "x"})
		}, []where{{"resource r_x", "type", CodeUnknownReference}}},
		{"resource type not organization", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_a", Type: OrganizationType, ExternalID: "x"})
		}, []where{{"resource r_x", "type", CodeInvalid}}},
		{"resource external id required", func(d *Dataset) { d.Resources[1].ExternalID = "" },
			[]where{{"resource r_proj", "external_id", CodeInvalid}}},
		{"resource external id unique per organization and type", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_a", Type: "workspace", ExternalID: "ws1"})
		}, []where{{"resource r_x", "external_id", CodeDuplicate}}},
		{"resource external id may repeat across types", func(d *Dataset) {
			d.Resources = append(d.Resources, Resource{ID: "r_x", OrganizationID: "org_a", Type: "project", ExternalID: "ws1", ParentID: "r_ws"})
		}, nil},
		{"resource parent exists", func(d *Dataset) { d.Resources[1].ParentID = "r_nope" },
			[]where{{"resource r_proj", "parent_id", CodeUnknownReference}}},
		{"resource parent in the same organization", func(d *Dataset) { d.Resources[1].ParentID = "r_bws" },
			[]where{{"resource r_proj", "parent_id", CodeCrossOrganization}}},
		{"resource parent root of another organization", func(d *Dataset) { d.Resources[0].ParentID = RootResourceID("org_b") },
			[]where{{"resource r_ws", "parent_id", CodeCrossOrganization}}},
		{"resource parent root by id", func(d *Dataset) { d.Resources[0].ParentID = RootResourceID("org_a") },
			nil},
		{"resource parent type allowed", func(d *Dataset) { d.Resources[1].ParentID = "" },
			[]where{{"resource r_proj", "parent_id", CodeParentTypeNotAllowed}}},
		{"resource parent type allowed for a child type", func(d *Dataset) { d.Resources[1].ParentID = "r_app" },
			[]where{{"resource r_proj", "parent_id", CodeParentTypeNotAllowed}, {"resource r_proj", "parent_id", CodeCycle}}},
		{"resource parent cycle", func(d *Dataset) {
			d.Resources = append(d.Resources,
				Resource{ID: "r_w2", OrganizationID: "org_a", Type: "workspace", ExternalID: "w2", ParentID: "r_a2"},
				Resource{ID: "r_a2", OrganizationID: "org_a", Type: "app", ExternalID: "a2", ParentID: "r_w2"})
		}, []where{{"resource r_w2", "parent_id", CodeParentTypeNotAllowed}, {"resource r_w2", "parent_id", CodeCycle}}},
		{"resource own parent", func(d *Dataset) { d.Resources[2].ParentID = "r_app" },
			[]where{{"resource r_app", "parent_id", CodeParentTypeNotAllowed}, {"resource r_app", "parent_id", CodeCycle}}},
		{"resource depth", func(d *Dataset) { d.MaxDepth = 3 },
			[]where{{"resource r_app", "parent_id", CodeDepthExceeded}}},
		{"resource depth at the limit", func(d *Dataset) { d.MaxDepth = 4 },
			nil},

		// assignments
		{"assignment id required", func(d *Dataset) { d.Assignments[0].ID = "" },
			[]where{{"assignment #0", "id", CodeInvalid}}},
		{"assignment id unique", func(d *Dataset) { d.Assignments[1].ID = "as_1" },
			[]where{{"assignment as_1", "id", CodeDuplicate}}},
		{"assignment membership exists", func(d *Dataset) { d.Assignments[0].MembershipID = "om_zz" },
			[]where{{"assignment as_1", "membership_id", CodeUnknownReference}}},
		{"assignment resource exists", func(d *Dataset) { d.Assignments[0].ResourceID = "r_zz" },
			[]where{{"assignment as_1", "resource_id", CodeUnknownReference}}},
		{"assignment in the membership's organization", func(d *Dataset) { d.Assignments[0].ResourceID = "r_bws" },
			[]where{{"assignment as_1", "resource_id", CodeCrossOrganization}}},
		{"assignment on another organization's root", func(d *Dataset) {
			d.Assignments[2] = Assignment{ID: "as_3", MembershipID: "om_b1", RoleSlug: "member", ResourceID: RootResourceID("org_a")}
		}, []where{{"assignment as_3", "resource_id", CodeCrossOrganization}}},
		{"assignment role exists", func(d *Dataset) { d.Assignments[0].RoleSlug = "owner" },
			[]where{{"assignment as_1", "role", CodeUnknownReference}}},
		{"assignment role required", func(d *Dataset) { d.Assignments[0].RoleSlug = "" },
			[]where{{"assignment as_1", "role", CodeInvalid}}},
		{"assignment organization role of another organization", func(d *Dataset) {
			d.Assignments[2] = Assignment{ID: "as_3", MembershipID: "om_b1", RoleSlug: "billing", ResourceID: RootResourceID("org_b")}
		}, []where{{"assignment as_3", "role", CodeUnknownReference}}},
		{"assignment role of the resource's type", func(d *Dataset) { d.Assignments[0].ResourceID = "r_proj" },
			[]where{{"assignment as_1", "role", CodeRoleTypeMismatch}}},
		{"assignment role of organization type on a root", func(d *Dataset) { d.Assignments[1].RoleSlug = "proj-editor" },
			[]where{{"assignment as_2", "role", CodeRoleTypeMismatch}}},
		{"assignment unique", func(d *Dataset) {
			d.Assignments = append(d.Assignments, Assignment{ID: "as_4", MembershipID: "om_a1", RoleSlug: "ws-admin", ResourceID: "r_ws"})
		}, []where{{"assignment as_4", "", CodeDuplicate}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDataset()
			tt.change(d)
			got := problemsOf(t, d.Validate())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateProblemIndex(t *testing.T) {
	d := validDataset()
	d.Resources[2].ParentID = "r_nope"
	d.MaxDepth = -2
	var verr *ValidationError
	if !errors.As(d.Validate(), &verr) {
		t.Fatal("Validate() did not return a *ValidationError")
	}
	var got []int
	for _, p := range verr.Problems {
		got = append(got, p.Index)
	}
	if diff := cmp.Diff([]int{-1, 2}, got); diff != "" {
		t.Errorf("Problem.Index mismatch (-want +got):\n%s", diff)
	}
}

func TestValidationErrorError(t *testing.T) {
	one := &ValidationError{Problems: []Problem{{Entity: "resource r1", Field: "parent_id", Code: CodeCycle, Message: "loop", Line: 7}}}
	if got, want := one.Error(), "invalid dataset: line 7: resource r1: parent_id: loop (cycle)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	many := &ValidationError{}
	for i := range 25 {
		many.Problems = append(many.Problems, Problem{Entity: fmt.Sprintf("resource r%d", i), Code: CodeInvalid, Message: "bad"})
	}
	got := many.Error()
	if !strings.HasPrefix(got, "invalid dataset: 25 problems:\n\tresource r0: bad (invalid)\n") {
		t.Errorf("Error() starts %q", got[:60])
	}
	if !strings.HasSuffix(got, "\n\tresource r19: bad (invalid)\n\tand 5 more") {
		t.Errorf("Error() ends %q", got[len(got)-60:])
	}
}

func TestResolveRole(t *testing.T) {
	// Validate forbids an organization role that shadows an environment
	// role, but resolution must still prefer the organization's own role.
	d := &Dataset{Roles: []Role{
		{Slug: "admin", ResourceType: OrganizationType},
		{Slug: "admin", ResourceType: "workspace", OrganizationID: "org_a"},
		{Slug: "billing", ResourceType: OrganizationType, OrganizationID: "org_a"},
	}}
	idx := NewRoleIndex(d.Roles)
	tests := []struct {
		name      string
		org, slug string
		wantKey   string
		wantOK    bool
	}{
		{"organization role first", "org_a", "admin", "org_a/admin", true},
		{"environment role elsewhere", "org_b", "admin", "admin", true},
		{"environment role without organization", "", "admin", "admin", true},
		{"organization role", "org_a", "billing", "org_a/billing", true},
		{"organization role of another organization", "org_b", "billing", "", false},
		{"unknown", "org_a", "owner", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, resolve := range map[string]func(string, string) (Role, bool){"Dataset.ResolveRole": d.ResolveRole, "RoleIndex.Resolve": idx.Resolve} {
				r, ok := resolve(tt.org, tt.slug)
				if ok != tt.wantOK || (ok && r.Key() != tt.wantKey) {
					t.Errorf("%s(%q, %q) = %q, %v; want %q, %v", name, tt.org, tt.slug, r.Key(), ok, tt.wantKey, tt.wantOK)
				}
			}
		})
	}
}

// chainDataset returns one organization whose n resources form a single
// chain, each of its own type (the type graph may not loop), listed in
// random order so the walk meets them out of order.
func chainDataset(n int) *Dataset {
	d := &Dataset{
		Organizations: []Organization{{ID: "org_a"}},
		ResourceTypes: make([]ResourceType, n),
		Resources:     make([]Resource, n),
	}
	for i := range n {
		typ := fmt.Sprintf("t%d", i)
		d.ResourceTypes[i] = ResourceType{Slug: typ, ParentTypes: []string{OrganizationType}}
		d.Resources[i] = Resource{ID: fmt.Sprintf("r%d", i), OrganizationID: "org_a", Type: typ, ExternalID: "x"}
		if i > 0 {
			d.ResourceTypes[i].ParentTypes = []string{fmt.Sprintf("t%d", i-1)}
			d.Resources[i].ParentID = fmt.Sprintf("r%d", i-1)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(n, func(i, j int) { d.Resources[i], d.Resources[j] = d.Resources[j], d.Resources[i] })
	return d
}

func TestValidateDeepChain(t *testing.T) {
	const n = 100_000
	d := chainDataset(n)
	d.MaxDepth = n + 1
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	d.MaxDepth = n // the chain plus the root is one level too deep
	got := problemsOf(t, d.Validate())
	want := []where{{fmt.Sprintf("resource r%d", n-1), "parent_id", CodeDepthExceeded}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
	// Close the chain into one big cycle: one problem, no recursion.
	for i := range d.Resources {
		if d.Resources[i].ID == "r0" {
			d.Resources[i].ParentID = fmt.Sprintf("r%d", n-1)
			d.ResourceTypes[0].ParentTypes = []string{fmt.Sprintf("t%d", n-1)}
		}
	}
	got = problemsOf(t, d.Validate())
	var codes []string
	for _, p := range got {
		codes = append(codes, p.Code)
	}
	if diff := cmp.Diff([]string{CodeCycle, CodeCycle}, codes); diff != "" {
		t.Errorf("closed chain: problem codes mismatch (-want +got):\n%s", diff)
	}
}

func BenchmarkValidate(b *testing.B) {
	// A million resources: workspaces under roots, projects under them.
	d := &Dataset{
		ResourceTypes: []ResourceType{
			{Slug: "workspace", ParentTypes: []string{OrganizationType}},
			{Slug: "project", ParentTypes: []string{"workspace"}},
		},
	}
	for o := range 1000 {
		d.Organizations = append(d.Organizations, Organization{ID: fmt.Sprintf("org_%d", o)})
	}
	for i := range 1_000_000 {
		org := fmt.Sprintf("org_%d", i%1000)
		r := Resource{ID: fmt.Sprintf("r%d", i), OrganizationID: org, Type: "workspace", ExternalID: fmt.Sprint(i)}
		if i >= 100_000 {
			r.Type = "project"
			r.ParentID = fmt.Sprintf("r%d", i%100_000/1000*1000+i%1000)
		}
		d.Resources = append(d.Resources, r)
	}
	if err := d.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := d.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidateKnownText: Validate reports a string that is not text;
// ValidateKnownText, told every string is text, does not look, but still
// applies the attributes' size rule.
func TestValidateKnownText(t *testing.T) {
	d := validDataset()
	d.Organizations[0].Name = "A\x00"
	d.Resources[0].Attributes = Attributes{"blob": strings.Repeat("x", MaxAttributesBytes)}
	name := where{"organization org_a", "name", CodeInvalid}
	size := where{"resource r_ws", "attributes", CodeInvalid}
	if got, want := problemsOf(t, d.Validate()), []where{name, size}; !cmp.Equal(got, want) {
		t.Errorf("Validate: %v, want %v", got, want)
	}
	if got, want := problemsOf(t, d.ValidateKnownText()), []where{size}; !cmp.Equal(got, want) {
		t.Errorf("ValidateKnownText: %v, want %v", got, want)
	}
}

// TestValidateManyAssignments: with assignments enough to be checked in
// parts, on several goroutines, the problems are those of each assignment,
// in list order.
func TestValidateManyAssignments(t *testing.T) {
	d := validDataset()
	n := 3*minPart + 7
	var want []where
	for i := range n {
		om := fmt.Sprintf("om_x%d", i)
		d.Memberships = append(d.Memberships, Membership{ID: om, UserID: om, OrganizationID: "org_a", Status: StatusActive})
		a := Assignment{ID: fmt.Sprintf("as_x%d", i), MembershipID: om, RoleSlug: "ws-admin", ResourceID: "r_ws"}
		if i%997 == 0 {
			a.ResourceID = "r_missing"
			want = append(want, where{"assignment " + a.ID, "resource_id", CodeUnknownReference})
		}
		d.Assignments = append(d.Assignments, a)
	}
	if got := problemsOf(t, d.Validate()); !cmp.Equal(got, want) {
		t.Errorf("problems (-got +want):\n%s", cmp.Diff(got, want))
	}
}
