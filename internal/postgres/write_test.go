package postgres_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestWriteRejects: the write path rejects what the data model forbids,
// with the model's code, and leaves the database unchanged.
func TestWriteRejects(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	res := func(id, org, typ, parent string) model.Change {
		return upsert(&model.Resource{ID: id, OrganizationID: org, Type: typ, ExternalID: id, Name: id, ParentID: parent})
	}
	// A deeper schema for the depth cases: org 1 > eng 2 > f1 3 > s1 4 > l1 5,
	// and org 1 > eng 2 > api 3 > f2 4 > s2 5.
	setup := []model.Change{
		upsert(&model.ResourceType{Slug: "folder", Name: "Folder", ParentTypes: []string{"project", "workspace"}}),
		upsert(&model.ResourceType{Slug: "subfolder", Name: "Subfolder", ParentTypes: []string{"folder"}}),
		upsert(&model.ResourceType{Slug: "leaf", Name: "Leaf", ParentTypes: []string{"subfolder"}}),
		res("authz_resource_f1", "org_acme", "folder", "authz_resource_acme_eng"),
		res("authz_resource_s1", "org_acme", "subfolder", "authz_resource_f1"),
		res("authz_resource_l1", "org_acme", "leaf", "authz_resource_s1"),
		res("authz_resource_f2", "org_acme", "folder", "authz_resource_acme_api"),
		res("authz_resource_s2", "org_acme", "subfolder", "authz_resource_f2"),
	}
	if _, err := s.Write(ctx, setup); err != nil {
		t.Fatal(err)
	}
	ok := upsert(&model.Assignment{ID: "role_assignment_ok", MembershipID: "om_carol", RoleSlug: "project-editor", ResourceID: "authz_resource_acme_api"})
	cases := []struct {
		name    string
		changes []model.Change
		opts    []postgres.WriteOption
		code    string
	}{
		{"cycle", []model.Change{res("authz_resource_acme_eng", "org_acme", "workspace", "authz_resource_acme_api")}, nil, model.CodeCycle},
		{"cycle through a subtree", []model.Change{res("authz_resource_f1", "org_acme", "folder", "authz_resource_l1")}, nil, model.CodeCycle},
		{"self parent", []model.Change{res("authz_resource_f1", "org_acme", "folder", "authz_resource_f1")}, nil, model.CodeCycle},
		{"cross-organization parent", []model.Change{res("authz_resource_x", "org_acme", "project", "authz_resource_globex_rnd")}, nil, model.CodeCrossOrganization},
		{"disallowed parent type", []model.Change{res("authz_resource_x", "org_acme", "project", "")}, nil, model.CodeParentTypeNotAllowed},
		{"depth over the limit", []model.Change{res("authz_resource_l2", "org_acme", "leaf", "authz_resource_s2")}, nil, model.CodeDepthExceeded},
		{"re-parent pushes the subtree too deep", []model.Change{res("authz_resource_f1", "org_acme", "folder", "authz_resource_acme_api")}, nil, model.CodeDepthExceeded},
		{"unknown parent", []model.Change{res("authz_resource_x", "org_acme", "workspace", "authz_resource_nope")}, nil, model.CodeUnknownReference},
		{"assignment role type mismatch", []model.Change{upsert(&model.Assignment{ID: "role_assignment_x", MembershipID: "om_carol", RoleSlug: "workspace-admin", ResourceID: "authz_resource_acme_api"})}, nil, model.CodeRoleTypeMismatch},
		{"assignment across organizations", []model.Change{upsert(&model.Assignment{ID: "role_assignment_x", MembershipID: "om_erin", RoleSlug: "project-editor", ResourceID: "authz_resource_acme_api"})}, nil, model.CodeCrossOrganization},
		{"membership role not of organization type", []model.Change{upsert(&model.Membership{ID: "om_bob", UserID: "user_bob", OrganizationID: "org_acme", Status: "active", RoleSlugs: []string{"project-editor"}})}, nil, model.CodeRoleTypeMismatch},
		{"role permission of an ancestor type", []model.Change{upsert(&model.Role{Slug: "project-x", Name: "X", ResourceType: "project", Permissions: []string{"workspace:view"}})}, nil, model.CodePermissionTypeNotAllowed},
		{"organization role reusing an environment slug", []model.Change{upsert(&model.Role{Slug: "org-admin", Name: "X", ResourceType: "organization", OrganizationID: "org_acme"})}, nil, model.CodeDuplicate},
		{"duplicate external id", []model.Change{res("authz_resource_x", "org_acme", "workspace", ""), res("authz_resource_y", "org_acme", "workspace", "")}, nil, ""},
		{"type cycle", []model.Change{upsert(&model.ResourceType{Slug: "project", Name: "Project", ParentTypes: []string{"workspace", "subfolder"}})}, nil, model.CodeCycle},
		{"removing a used parent type", []model.Change{upsert(&model.ResourceType{Slug: "folder", Name: "Folder", ParentTypes: []string{"project"}})}, nil, model.CodeParentTypeNotAllowed},
		{"type cycle via a new parent", []model.Change{upsert(&model.ResourceType{Slug: "folder", Name: "Folder", ParentTypes: []string{"project", "workspace", "leaf"}})}, nil, model.CodeCycle},
		{"delete with children, no cascade", []model.Change{del(&model.Resource{ID: "authz_resource_acme_eng"})}, nil, postgres.CodeHasDependents},
		{"delete unknown", []model.Change{del(&model.Assignment{ID: "role_assignment_nope"})}, nil, postgres.CodeNotFound},
		{"valid change, then a bad one", []model.Change{ok, res("authz_resource_x", "org_acme", "project", "")}, nil, model.CodeParentTypeNotAllowed},
	}
	// "duplicate external id": both get external id = their own id, so make the second clash.
	cases[13].changes[1].Resource.ExternalID = "authz_resource_x"
	cases[13].code = model.CodeDuplicate

	before, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Write(ctx, tc.changes, tc.opts...)
			var ve *postgres.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Write error = %v, want a *ValidationError", err)
			}
			if ve.Code != tc.code {
				t.Errorf("code = %q (%v), want %q", ve.Code, ve, tc.code)
			}
			after, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sortDataset(before), sortDataset(after)); diff != "" {
				t.Errorf("database changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAdminHandler(t *testing.T) {
	s := demoStore(t)
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: s, Authorize: func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer k"
	}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key, body string
		status          int
		contains        string
	}{
		{"no key", "", `{"changes":[]}`, 401, `"unauthorized"`},
		{"malformed", "k", `{"changes":[{"op":"upsert","resource":`, 400, `"invalid_request"`},
		{"unknown field", "k", `{"changes":[{"op":"upsert","widget":{}}]}`, 400, `"invalid_request"`},
		{"invalid", "k", `{"changes":[{"op":"upsert","resource":{"id":"authz_resource_x","organization_id":"org_acme","type":"project","external_id":"x","name":"X"}}]}`, 422, `"parent_type_not_allowed"`},
		{"conflict", "k", `{"changes":[{"op":"delete","resource":{"id":"authz_resource_acme_eng"}}]}`, 409, `"has_dependents"`},
		{"ok", "k", `{"changes":[{"op":"upsert","assignment":{"id":"role_assignment_h","membership_id":"om_carol","role":"project-editor","resource_id":"authz_resource_acme_api"}}]}`, 200, `"revision":`},
		{"cascade", "k", `{"changes":[{"op":"delete","resource":{"id":"authz_resource_acme_eng"},"cascade_delete":true}]}`, 200, `"revision":`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, postgres.AdminPath, strings.NewReader(tc.body))
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("got %d %s, want %d containing %s", rec.Code, rec.Body, tc.status, tc.contains)
			}
		})
	}
}

// TestImportRefusesRoleSlugClash: a dataset valid on its own whose
// organization role has the slug of an environment role already in the
// database is refused, and nothing of it is written.
func TestImportRefusesRoleSlugClash(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t) // environment role org-admin
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds := &model.Dataset{
		Organizations: []model.Organization{{ID: "org_new", Name: "New"}},
		Roles:         []model.Role{{Slug: "org-admin", Name: "Admin", ResourceType: model.OrganizationType, OrganizationID: "org_new"}},
	}
	if err := ds.Validate(); err != nil {
		t.Fatalf("the dataset is not valid on its own: %v", err)
	}
	if _, err := s.Import(ctx, ds); err == nil || !strings.Contains(err.Error(), `role slug "org-admin"`) {
		t.Fatalf("Import error = %v, want the role slug clash", err)
	}
	var orgs int
	if err := s.DB().GetContext(ctx, &orgs, "SELECT count(*) FROM organizations WHERE id = 'org_new'"); err != nil || orgs != 0 {
		t.Errorf("%d organizations org_new (%v) after a refused import, want 0", orgs, err)
	}
	if h, _ := s.Head(ctx); h != head {
		t.Errorf("head %d after a refused import, want %d", h, head)
	}
}
