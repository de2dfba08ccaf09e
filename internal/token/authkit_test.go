package token_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
)

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
	got, err := token.AuthKitClaims(ds, "om_1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sub": "user_1", "org_id": "org_a", "organization_membership_id": "om_1", "role": "admin",
		"roles": []string{"admin", "member", "billing"}, "permissions": []string{"billing:view", "org:manage", "org:view"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if _, err := token.AuthKitClaims(ds, "om_x"); err == nil {
		t.Error("claims of an unknown membership")
	}
}
