// Package loadtest drives an authorization server over HTTP and checks every
// answer: a request mix built from a model.Dataset, with each request's
// expected decision computed by a brute-force Oracle that shares no code with
// the policies; a closed-loop (N connections) or open-loop (fixed rate) load
// generator; latency percentiles; and the server process's RSS and CPU read
// from /proc. It only ever talks to loopback addresses.
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
	}
	for _, org := range ds.Organizations {
		o.res[org.RootID()] = model.Resource{ID: org.RootID(), OrganizationID: org.ID, Type: model.OrganizationType}
	}
	for _, r := range ds.Resources {
		if r.ParentID == "" {
			r.ParentID = model.RootResourceID(r.OrganizationID)
		}
		o.res[r.ID] = r
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
	// An organization role shadows the environment role of the same slug.
	key := model.RoleKey(o.mem[om].OrganizationID, slug)
	if _, ok := o.roles[key]; !ok {
		key = slug
	}
	o.grants[om] = append(o.grants[om], oracleGrant{rid, key})
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
