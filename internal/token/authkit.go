package token

import (
	"fmt"
	"slices"

	"github.com/trellis-authz/trellis/internal/model"
)

// AuthKitClaims returns the session token claims AuthKit issues for membership om
// of ds: sub, org_id, organization_membership_id, role (the highest-priority
// organization role, the first in ds.Roles order), roles, and permissions
// (the union of the roles', sorted).
func AuthKitClaims(ds *model.Dataset, om string) (map[string]any, error) {
	i := slices.IndexFunc(ds.Memberships, func(m model.Membership) bool { return m.ID == om })
	if i < 0 {
		return nil, fmt.Errorf("membership %q is not in the data", om)
	}
	m := ds.Memberships[i]
	var roles, perms []string
	for _, r := range ds.Roles { // priority order
		held := slices.Contains(m.RoleSlugs, r.Slug) && (r.OrganizationID == "" || r.OrganizationID == m.OrganizationID)
		if !held {
			continue
		}
		roles = append(roles, r.Slug)
		for _, p := range r.Permissions {
			if !slices.Contains(perms, p) {
				perms = append(perms, p)
			}
		}
	}
	slices.Sort(perms)
	claims := map[string]any{
		"sub": m.UserID, "org_id": m.OrganizationID, "organization_membership_id": m.ID,
		"roles": nonNil(roles), "permissions": nonNil(perms),
	}
	if len(roles) > 0 {
		claims["role"] = roles[0]
	}
	return claims, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
