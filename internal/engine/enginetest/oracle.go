package enginetest

import (
	"fmt"
	"slices"
	"sort"

	"github.com/trellis-authz/trellis/internal/model"
)

// Oracle is the brute-force reference of the decision rules (DESIGN.md §7):
// the dataset in plain maps, with no precomputed ancestry, answering checks
// by walking parent pointers. Its fields are for choosing questions; they
// must not be changed.
type Oracle struct {
	DS        *model.Dataset
	Res       map[string]model.Resource // organization roots included
	ResIDs    []string                  // sorted, roots included
	ByExt     map[[3]string]string      // (org, type, external id) → id
	Mem       map[string]model.Membership
	MemIDs    []string              // sorted
	Roles     map[string]model.Role // by key
	Perms     []string              // every permission slug, sorted
	Known     map[string]bool       // permission slugs
	Grants    map[string][]Grant    // membership → its grants
	OrgMems   map[string][]string   // organization → memberships
	OrgRes    map[string][]string   // organization → resources, root included
	Children  map[string][]string   // resource → its children
	AnchorsOf map[string][]string   // membership → resources it holds grants on
}

// Grant is a role (by index key) held on a resource.
type Grant struct{ Resource, Role string }

// NewOracle indexes ds, which it keeps (DS) and the caller must not change.
func NewOracle(ds *model.Dataset) *Oracle {
	w := &Oracle{
		DS:        ds,
		Res:       map[string]model.Resource{},
		ByExt:     map[[3]string]string{},
		Mem:       map[string]model.Membership{},
		Roles:     map[string]model.Role{},
		Known:     map[string]bool{},
		Grants:    map[string][]Grant{},
		OrgMems:   map[string][]string{},
		OrgRes:    map[string][]string{},
		Children:  map[string][]string{},
		AnchorsOf: map[string][]string{},
	}
	add := func(r model.Resource) {
		w.Res[r.ID] = r
		w.ResIDs = append(w.ResIDs, r.ID)
		w.ByExt[[3]string{r.OrganizationID, r.Type, r.ExternalID}] = r.ID
		w.OrgRes[r.OrganizationID] = append(w.OrgRes[r.OrganizationID], r.ID)
	}
	for _, o := range ds.Organizations {
		add(model.Resource{ID: o.RootID(), OrganizationID: o.ID, Type: model.OrganizationType, ExternalID: o.ID})
	}
	for _, r := range ds.Resources {
		if r.ParentID == "" {
			r.ParentID = model.RootResourceID(r.OrganizationID)
		}
		add(r)
		w.Children[r.ParentID] = append(w.Children[r.ParentID], r.ID)
	}
	sort.Strings(w.ResIDs)
	for _, r := range ds.Roles {
		w.Roles[r.Key()] = r
	}
	for _, p := range ds.Permissions {
		w.Perms = append(w.Perms, p.Slug)
		w.Known[p.Slug] = true
	}
	sort.Strings(w.Perms)
	for _, m := range ds.Memberships {
		w.Mem[m.ID] = m
		w.MemIDs = append(w.MemIDs, m.ID)
		w.OrgMems[m.OrganizationID] = append(w.OrgMems[m.OrganizationID], m.ID)
		for _, slug := range m.RoleSlugs {
			w.addGrant(m.ID, model.RootResourceID(m.OrganizationID), slug)
		}
	}
	sort.Strings(w.MemIDs)
	// A group's assignment is an assignment to each of its members of its
	// organization, as the data model defines it.
	groupOrg := map[string]string{}
	for _, g := range ds.Groups {
		groupOrg[g.ID] = g.OrganizationID
	}
	members := map[string][]string{}
	for _, gm := range ds.GroupMembers {
		if m, ok := w.Mem[gm.MembershipID]; ok && m.OrganizationID == groupOrg[gm.GroupID] {
			members[gm.GroupID] = append(members[gm.GroupID], gm.MembershipID)
		}
	}
	for _, a := range ds.Assignments {
		if a.MembershipID == "" {
			for _, om := range members[a.GroupID] {
				w.addGrant(om, a.ResourceID, a.RoleSlug)
			}
			continue
		}
		w.addGrant(a.MembershipID, a.ResourceID, a.RoleSlug)
	}
	return w
}

func (w *Oracle) addGrant(om, rid, slug string) {
	org := w.Mem[om].OrganizationID
	key := model.RoleKey(org, slug) // an organization role shadows the environment role
	if _, ok := w.Roles[key]; !ok {
		key = slug
	}
	w.Grants[om] = append(w.Grants[om], Grant{rid, key})
	w.AnchorsOf[om] = append(w.AnchorsOf[om], rid)
}

// Path is rid's path: the ids from its organization root down to it, the
// position list_resources pages by.
func (w *Oracle) Path(rid string) []string {
	var path []string
	for cur := rid; cur != ""; cur = w.Res[cur].ParentID {
		path = append(path, cur)
	}
	slices.Reverse(path)
	return path
}

// IsAncestorOrSelf reports whether a is r or one of r's ancestors.
func (w *Oracle) IsAncestorOrSelf(a, r string) bool {
	for cur := r; cur != ""; cur = w.Res[cur].ParentID {
		if cur == a {
			return true
		}
	}
	return false
}

// Allowed is the decision rule: om is active, in rid's organization, and
// holds a role with perm on rid or an ancestor.
func (w *Oracle) Allowed(om, perm, rid string) bool {
	m, ok := w.Mem[om]
	r, rok := w.Res[rid]
	if !ok || !rok || !w.Known[perm] || m.Status != model.StatusActive || m.OrganizationID != r.OrganizationID {
		return false
	}
	for _, g := range w.Grants[om] {
		if slices.Contains(w.Roles[g.Role].Permissions, perm) && w.IsAncestorOrSelf(g.Resource, rid) {
			return true
		}
	}
	return false
}

// TokenClaims is the verified-claims part of the policy input.
type TokenClaims struct {
	Org, Membership string
	Perms           []string
}

// Input returns the claims as the policies read them (input.token).
func (k TokenClaims) Input() map[string]any {
	perms := make([]any, len(k.Perms))
	for i, p := range k.Perms {
		perms[i] = p
	}
	return map[string]any{"org_id": k.Org, "permissions": perms, "membership_id": k.Membership}
}

// AllowedToken is the token-first rule, then the decision rule for the
// token's membership, which must belong to the token's organization.
func (w *Oracle) AllowedToken(k TokenClaims, perm, rid string) bool {
	r, ok := w.Res[rid]
	if !ok || !w.Known[perm] {
		return false
	}
	if k.Org == r.OrganizationID && slices.Contains(k.Perms, perm) {
		return true
	}
	m, ok := w.Mem[k.Membership]
	return ok && m.OrganizationID == k.Org && w.Allowed(k.Membership, perm, rid)
}

// ResourceRef names a resource in policy input: by id, or by type and
// external id with an optional organization.
type ResourceRef struct{ ID, Type, Ext, Org string }

// Input returns the reference as the policies read it (input.resource).
func (r ResourceRef) Input() map[string]any {
	if r.ID != "" {
		return map[string]any{"id": r.ID}
	}
	in := map[string]any{"type": r.Type, "external_id": r.Ext}
	if r.Org != "" {
		in["organization_id"] = r.Org
	}
	return in
}

func (r ResourceRef) String() string {
	if r.ID != "" {
		return r.ID
	}
	return fmt.Sprintf("%s:%s@%q", r.Type, r.Ext, r.Org)
}

// Resolve returns the resource r names, or "" for none; an external
// reference without an organization is in the token's (tokenOrg).
func (w *Oracle) Resolve(r ResourceRef, tokenOrg string) string {
	if _, ok := w.Res[r.ID]; ok {
		return r.ID
	}
	if r.ID != "" {
		return ""
	}
	org := r.Org
	if org == "" {
		org = tokenOrg
	}
	return w.ByExt[[3]string{org, r.Type, r.Ext}]
}

// AllowedDirect is the decision rule restricted to grants on rid itself.
func (w *Oracle) AllowedDirect(om, perm, rid string) bool {
	m, ok := w.Mem[om]
	r, rok := w.Res[rid]
	if !ok || !rok || !w.Known[perm] || m.Status != model.StatusActive || m.OrganizationID != r.OrganizationID {
		return false
	}
	for _, g := range w.Grants[om] {
		if g.Resource == rid && slices.Contains(w.Roles[g.Role].Permissions, perm) {
			return true
		}
	}
	return false
}
