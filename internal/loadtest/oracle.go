// Package loadtest drives an authorization server over HTTP and checks every
// answer: a request mix built from a model.Dataset (checks with cached and
// fresh tokens, by assignment at varied depth, denies, batches and
// list-resources pages), with each expected decision and page computed by a
// brute-force Oracle that shares no code with the policies; a closed-loop (N
// connections) or open-loop (fixed rate) load generator; latency
// percentiles, overall and per kind; and the server process's RSS (its
// spread over the run) and CPU read from /proc. It only ever talks to
// loopback addresses.
package loadtest

import (
	"slices"

	"github.com/trellis-authz/trellis/internal/model"
)

// Claims are the token claims a decision depends on: the organization, the
// permissions the token carries and the membership it names.
type Claims struct {
	OrgID        string
	Permissions  []string
	MembershipID string
}

// Oracle answers checks by brute force over a dataset: it walks parent
// pointers and scans a membership's grants, with no precomputed ancestry.
// It is deliberately independent of package index and the Rego policies, so
// a bug there shows up as a disagreement. Build it with NewOracle; it is
// safe for concurrent use and does not see later changes to the dataset.
type Oracle struct {
	res    map[string]model.Resource // organization roots included
	mem    map[string]model.Membership
	roles  map[string]model.Role    // by model.Role.Key
	known  map[string]bool          // permission slugs
	grants map[string][]oracleGrant // membership → its grants
	orgRes map[string][]string      // organization → its resource ids, root included, sorted
}

type oracleGrant struct{ resource, roleKey string }

// NewOracle indexes ds. ds should be valid (model.Dataset.Validate); on an
// invalid dataset the answers are unspecified but Allowed never panics.
func NewOracle(ds *model.Dataset) *Oracle {
	o := &Oracle{
		res:    make(map[string]model.Resource, len(ds.Resources)+len(ds.Organizations)),
		mem:    make(map[string]model.Membership, len(ds.Memberships)),
		roles:  make(map[string]model.Role, len(ds.Roles)),
		known:  make(map[string]bool, len(ds.Permissions)),
		grants: make(map[string][]oracleGrant),
		orgRes: make(map[string][]string, len(ds.Organizations)),
	}
	for _, org := range ds.Organizations {
		o.res[org.RootID()] = model.Resource{ID: org.RootID(), OrganizationID: org.ID, Type: model.OrganizationType}
		o.orgRes[org.ID] = append(o.orgRes[org.ID], org.RootID())
	}
	for _, r := range ds.Resources {
		if r.ParentID == "" {
			r.ParentID = model.RootResourceID(r.OrganizationID)
		}
		o.res[r.ID] = r
		o.orgRes[r.OrganizationID] = append(o.orgRes[r.OrganizationID], r.ID)
	}
	for _, ids := range o.orgRes { // in tree order, as lists page
		slices.SortFunc(ids, func(a, b string) int { return slices.Compare(o.path(a), o.path(b)) })
	}
	for _, r := range ds.Roles {
		o.roles[r.Key()] = r
	}
	for _, p := range ds.Permissions {
		o.known[p.Slug] = true
	}
	for _, m := range ds.Memberships {
		o.mem[m.ID] = m
		for _, slug := range m.RoleSlugs {
			o.addGrant(m.ID, model.RootResourceID(m.OrganizationID), slug)
		}
	}
	for _, a := range ds.Assignments {
		o.addGrant(a.MembershipID, a.ResourceID, a.RoleSlug)
	}
	return o
}

func (o *Oracle) addGrant(om, rid, slug string) {
	o.grants[om] = append(o.grants[om], oracleGrant{rid, o.roleKey(o.mem[om].OrganizationID, slug)})
}

// roleKey returns the key of the role slug names in organization org: an
// organization role shadows the environment role of the same slug.
func (o *Oracle) roleKey(org, slug string) string {
	key := model.RoleKey(org, slug)
	if _, ok := o.roles[key]; !ok {
		key = slug
	}
	return key
}

// Claims returns the claims an AuthKit-style session token for membership
// id carries: its organization, the membership and the permissions of its
// organization roles, sorted. It reports false for an unknown membership.
func (o *Oracle) Claims(id string) (Claims, bool) {
	m, ok := o.mem[id]
	if !ok {
		return Claims{}, false
	}
	var perms []string
	for _, slug := range m.RoleSlugs {
		perms = append(perms, o.roles[o.roleKey(m.OrganizationID, slug)].Permissions...)
	}
	slices.Sort(perms)
	return Claims{OrgID: m.OrganizationID, Permissions: slices.Compact(perms), MembershipID: id}, true
}

// Allowed reports whether a verified token with claims c may do perm on the
// resource with id rid:
//   - the permission and the resource exist; then
//   - token rule: c.OrgID is the resource's organization and c.Permissions
//     holds perm; or
//   - data rule: membership c.MembershipID exists, is active, belongs to the
//     resource's organization and to c.OrgID, and holds a role containing
//     perm on the resource or one of its ancestors (its organization roles
//     count as held on the organization root).
func (o *Oracle) Allowed(c Claims, perm, rid string) bool {
	r, ok := o.res[rid]
	if !ok || !o.known[perm] {
		return false
	}
	if c.OrgID == r.OrganizationID && slices.Contains(c.Permissions, perm) {
		return true
	}
	m, ok := o.mem[c.MembershipID]
	if !ok || m.Status != model.StatusActive || m.OrganizationID != r.OrganizationID || m.OrganizationID != c.OrgID {
		return false
	}
	for _, g := range o.grants[m.ID] {
		if !slices.Contains(o.roles[g.roleKey].Permissions, perm) {
			continue
		}
		if o.isAncestorOrSelf(g.resource, rid) {
			return true
		}
	}
	return false
}

// List returns the first page of the resources a verified token with
// claims c may do perm on, as listed with no type, parent or cursor: the
// resources of c's organization (its root included) for which Allowed
// holds, in tree order (depth first, children by id), at most limit of them, and whether more
// follow. An unknown permission lists nothing; limit must be positive.
//
// It gives the answers of Allowed over every resource of the organization,
// without calling it per resource: the grants that carry perm are found
// once, then each resource walks its parents to one of them.
func (o *Oracle) List(c Claims, perm string, limit int) (ids []string, more bool) {
	if !o.known[perm] {
		return nil, false
	}
	all := slices.Contains(c.Permissions, perm) // the token rule
	anchors := map[string]bool{}
	if m, ok := o.mem[c.MembershipID]; ok && m.Status == model.StatusActive && m.OrganizationID == c.OrgID {
		for _, g := range o.grants[m.ID] {
			if slices.Contains(o.roles[g.roleKey].Permissions, perm) {
				anchors[g.resource] = true
			}
		}
	}
	for _, rid := range o.orgRes[c.OrgID] {
		if !all && !o.underAny(anchors, rid) {
			continue
		}
		if len(ids) == limit {
			return ids, true
		}
		ids = append(ids, rid)
	}
	return ids, false
}

// path is rid's ids from its organization root down, the key of tree
// order (a bounded walk, as isAncestorOrSelf's).
func (o *Oracle) path(rid string) []string {
	var p []string
	for cur := rid; cur != "" && len(p) < 256; cur = o.res[cur].ParentID {
		p = append(p, cur)
	}
	slices.Reverse(p)
	return p
}

// underAny reports whether r or one of its ancestors is in anchors, with
// the bounded walk of isAncestorOrSelf.
func (o *Oracle) underAny(anchors map[string]bool, r string) bool {
	if len(anchors) == 0 {
		return false
	}
	cur := r
	for range 256 {
		if cur == "" {
			return false
		}
		if anchors[cur] {
			return true
		}
		cur = o.res[cur].ParentID
	}
	return false
}

// isAncestorOrSelf reports whether a is r or an ancestor of r. The walk is
// bounded so that a (invalid) parent cycle cannot hang it.
func (o *Oracle) isAncestorOrSelf(a, r string) bool {
	cur := r
	for range 256 {
		if cur == a {
			return true
		}
		if cur == "" {
			return false
		}
		cur = o.res[cur].ParentID
	}
	return false
}

// depth returns the level of resource rid: 1 for an organization root.
func (o *Oracle) depth(rid string) int {
	d := 0
	for cur := rid; cur != "" && d < 256; cur = o.res[cur].ParentID {
		d++
	}
	return d
}
