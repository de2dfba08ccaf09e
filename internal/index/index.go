// Package index shapes relationship data into the OPA data document the
// policies under policies/ read. It is the one index builder every data source
// shares: the data file and PostgreSQL both hand it a model.Dataset.
//
// The document (rooted at data.trellis_data) is shaped so that a check costs
// O(depth) keyed lookups:
//
//	revision                  number   the data revision this document reflects
//	orgs[org]                 {root}   the organization's root resource id
//	resources[rid]            [org, type, ext, anc]
//	                                   an array, not an object: half the
//	                                   memory and a third of the build time
//	                                   at a million resources; anc lists the
//	                                   resource and its ancestors, nearest
//	                                   first, the root last
//	lookup[org][type][ext]    rid      external id → resource id
//	children[rid]             [rid]    only resources that have children
//	grants[rid][om]           [role]   role keys assigned to om on rid,
//	                                   sorted, once per source; a
//	                                   membership's organization roles are
//	                                   grants on the organization root
//	memberships[om]           {org, active, anchors}
//	                                   anchors lists the resources om holds
//	                                   grants on, sorted
//	org_roles[om]             [role]  the role keys of om's organization
//	                                   roles (also in its root grants), so a
//	                                   roles change can replace just those
//	roles[key]                {slug, type, permissions{slug: true}}
//	permissions[slug]         {type}
package index

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Root is the path of the data document in OPA's data tree.
const Root = "trellis_data"

// Document keys, shared with the policies.
const (
	keyRevision    = "revision"
	keyOrgs        = "orgs"
	keyResources   = "resources"
	keyLookup      = "lookup"
	keyChildren    = "children"
	keyGrants      = "grants"
	keyMemberships = "memberships"
	keyOrgRoles    = "org_roles"
	keyRoles       = "roles"
	keyPermissions = "permissions"
)

// Build returns the data document for ds. The dataset must be valid
// (model.Dataset.Validate); Build still reports references it cannot resolve
// rather than produce a document that silently drops them. The caller owns
// the returned value and must not mutate it once it is written to a store.
func Build(ds *model.Dataset) (ast.Object, error) {
	b := builder{terms: map[string]*ast.Term{}}
	return b.build(ds)
}

// builder interns one *ast.Term per organization, type, membership and role
// key; resource ids are interned in their nodes. An id stored in many
// ancestor chains, keys and grant lists costs its memory once.
type builder struct {
	terms map[string]*ast.Term
}

func (b *builder) term(s string) *ast.Term {
	if t, ok := b.terms[s]; ok {
		return t
	}
	t := ast.StringTerm(s)
	b.terms[s] = t
	return t
}

// node is a resource (or organization root) while the document is built.
type node struct {
	id, org, typ, ext *ast.Term
	parentID          string
	up                *node
	kids              []*ast.Term
	anc               *ast.Term
}

func (b *builder) build(ds *model.Dataset) (ast.Object, error) {
	nodes := make(map[string]*node, len(ds.Resources)+len(ds.Organizations))
	orgs := ast.NewObjectWithCapacity(len(ds.Organizations))
	roots := make(map[string]string, len(ds.Organizations))
	for _, o := range ds.Organizations {
		root := o.RootID()
		roots[o.ID] = root
		org := b.term(o.ID)
		nodes[root] = &node{id: ast.StringTerm(root), org: org, typ: b.term(model.OrganizationType), ext: org}
		orgs.Insert(org, ast.ObjectTerm(ast.Item(ast.InternedTerm("root"), nodes[root].id)))
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = roots[r.OrganizationID]
		}
		nodes[r.ID] = &node{id: ast.StringTerm(r.ID), org: b.term(r.OrganizationID), typ: b.term(r.Type), ext: ast.StringTerm(r.ExternalID), parentID: parent}
	}
	for _, r := range ds.Resources {
		n := nodes[r.ID]
		if n.up = nodes[n.parentID]; n.up == nil {
			return nil, fmt.Errorf("resource %s: unknown parent %q", r.ID, n.parentID)
		}
		n.up.kids = append(n.up.kids, n.id)
	}

	resources := ast.NewObjectWithCapacity(len(nodes))
	children := ast.NewObject()
	lookup := map[*ast.Term]map[*ast.Term]ast.Object{} // org → type → ext → rid
	for _, n := range nodes {
		anc, err := ancestry(n, ds.Depth())
		if err != nil {
			return nil, err
		}
		resources.Insert(n.id, ast.ArrayTerm(n.org, n.typ, n.ext, anc))
		if len(n.kids) > 0 {
			sortTerms(n.kids)
			children.Insert(n.id, ast.ArrayTerm(n.kids...))
		}
		byType := lookup[n.org]
		if byType == nil {
			byType = map[*ast.Term]ast.Object{}
			lookup[n.org] = byType
		}
		exts := byType[n.typ]
		if exts == nil {
			exts = ast.NewObject()
			byType[n.typ] = exts
		}
		exts.Insert(n.ext, n.id)
	}
	lookupObj := ast.NewObjectWithCapacity(len(lookup))
	for org, byType := range lookup {
		typeObj := ast.NewObjectWithCapacity(len(byType))
		for typ, exts := range byType {
			typeObj.Insert(typ, ast.NewTerm(exts))
		}
		lookupObj.Insert(org, ast.NewTerm(typeObj))
	}

	grants, anchors, orgRoles, err := b.grants(ds, nodes, roots)
	if err != nil {
		return nil, err
	}

	memberships := ast.NewObjectWithCapacity(len(ds.Memberships))
	for _, m := range ds.Memberships {
		memberships.Insert(b.term(m.ID), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("org"), b.term(m.OrganizationID)),
			ast.Item(ast.InternedTerm("active"), ast.InternedTerm(m.Status == model.StatusActive)),
			ast.Item(ast.InternedTerm("anchors"), ast.ArrayTerm(anchors[m.ID]...)),
		))
	}

	roles := ast.NewObjectWithCapacity(len(ds.Roles))
	for _, r := range ds.Roles {
		roles.Insert(b.term(r.Key()), RoleTerm(r))
	}

	perms := ast.NewObjectWithCapacity(len(ds.Permissions))
	for _, p := range ds.Permissions {
		perms.Insert(ast.StringTerm(p.Slug), ast.ObjectTerm(ast.Item(ast.InternedTerm("type"), b.term(p.ResourceType))))
	}

	return ast.NewObject(
		ast.Item(ast.InternedTerm(keyRevision), ast.IntNumberTerm(int(ds.Revision))),
		ast.Item(ast.InternedTerm(keyOrgs), ast.NewTerm(orgs)),
		ast.Item(ast.InternedTerm(keyResources), ast.NewTerm(resources)),
		ast.Item(ast.InternedTerm(keyLookup), ast.NewTerm(lookupObj)),
		ast.Item(ast.InternedTerm(keyChildren), ast.NewTerm(children)),
		ast.Item(ast.InternedTerm(keyGrants), ast.NewTerm(grants)),
		ast.Item(ast.InternedTerm(keyMemberships), ast.NewTerm(memberships)),
		ast.Item(ast.InternedTerm(keyOrgRoles), ast.NewTerm(orgRoles)),
		ast.Item(ast.InternedTerm(keyRoles), ast.NewTerm(roles)),
		ast.Item(ast.InternedTerm(keyPermissions), ast.NewTerm(perms)),
	), nil
}

// ancestry returns (and memoizes) n's ancestor chain, nearest first: it
// walks up to the first node whose chain is known (or the root), then fills
// chains in on the way back down.
func ancestry(n *node, maxDepth int) (*ast.Term, error) {
	if n.anc != nil {
		return n.anc, nil
	}
	path := []*node{n}
	for cur := n; cur.up != nil && cur.anc == nil; cur = cur.up {
		if len(path) > maxDepth {
			return nil, fmt.Errorf("resource %v: tree deeper than %d levels or cyclic", n.id, maxDepth)
		}
		path = append(path, cur.up)
	}
	var tail []*ast.Term
	if last := path[len(path)-1]; last.anc != nil {
		tail = termsOf(last.anc)
		path = path[:len(path)-1]
	}
	for i := len(path) - 1; i >= 0; i-- {
		chain := make([]*ast.Term, 0, len(tail)+1)
		chain = append(chain, path[i].id)
		chain = append(chain, tail...)
		if len(chain) > maxDepth {
			return nil, fmt.Errorf("resource %v: tree deeper than %d levels", path[i].id, maxDepth)
		}
		path[i].anc = ast.ArrayTerm(chain...)
		tail = chain
	}
	return n.anc, nil
}

func termsOf(t *ast.Term) []*ast.Term {
	arr := t.Value.(*ast.Array)
	out := make([]*ast.Term, arr.Len())
	for i := range out {
		out[i] = arr.Elem(i)
	}
	return out
}

func sortTerms(ts []*ast.Term) {
	slices.SortFunc(ts, func(a, b *ast.Term) int { return a.Value.Compare(b.Value) })
}

// grant is one source of a role on a resource for a membership.
type grant struct {
	rid     *node
	om, key string
}

// grants builds grants[rid][om] (role keys sorted, one per source), each
// membership's anchors (sorted) and org_roles. Sorting one slice of grants
// groups them without a map keyed by (resource, membership).
func (b *builder) grants(ds *model.Dataset, nodes map[string]*node, roots map[string]string) (ast.Object, map[string][]*ast.Term, ast.Object, error) {
	roles := model.NewRoleIndex(ds.Roles)
	resolve := func(org, slug string) (string, error) {
		r, ok := roles.Resolve(org, slug)
		if !ok {
			return "", fmt.Errorf("role %q does not exist in organization %s", slug, org)
		}
		return r.Key(), nil
	}
	all := make([]grant, 0, len(ds.Assignments)+len(ds.Memberships))
	orgRoles := ast.NewObjectWithCapacity(len(ds.Memberships))
	memberOrg := make(map[string]string, len(ds.Memberships))
	for _, m := range ds.Memberships {
		memberOrg[m.ID] = m.OrganizationID
		ks := make([]string, 0, len(m.RoleSlugs))
		for _, slug := range m.RoleSlugs {
			k, err := resolve(m.OrganizationID, slug)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("membership %s: %w", m.ID, err)
			}
			all = append(all, grant{nodes[roots[m.OrganizationID]], m.ID, k})
			ks = append(ks, k)
		}
		sort.Strings(ks)
		orgRoles.Insert(b.term(m.ID), b.strings(ks))
	}
	for _, a := range ds.Assignments {
		org, ok := memberOrg[a.MembershipID]
		if !ok {
			return nil, nil, nil, fmt.Errorf("assignment %s: unknown membership %q", a.ID, a.MembershipID)
		}
		rn := nodes[a.ResourceID]
		if rn == nil {
			return nil, nil, nil, fmt.Errorf("assignment %s: unknown resource %q", a.ID, a.ResourceID)
		}
		k, err := resolve(org, a.RoleSlug)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("assignment %s: %w", a.ID, err)
		}
		all = append(all, grant{rn, a.MembershipID, k})
	}
	slices.SortFunc(all, func(x, y grant) int {
		if c := strings.Compare(string(x.rid.id.Value.(ast.String)), string(y.rid.id.Value.(ast.String))); c != 0 {
			return c
		}
		if c := strings.Compare(x.om, y.om); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})

	grants := ast.NewObject()
	anchors := map[string][]*ast.Term{}
	for i := 0; i < len(all); {
		rn := all[i].rid
		byMember := ast.NewObject()
		for i < len(all) && all[i].rid == rn {
			om := all[i].om
			var keys []*ast.Term
			for ; i < len(all) && all[i].rid == rn && all[i].om == om; i++ {
				keys = append(keys, b.term(all[i].key))
			}
			byMember.Insert(b.term(om), ast.ArrayTerm(keys...))
			anchors[om] = append(anchors[om], rn.id) // resources come in id order
		}
		grants.Insert(rn.id, ast.NewTerm(byMember))
	}
	return grants, anchors, orgRoles, nil
}

func (b *builder) strings(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = b.term(s)
	}
	return ast.ArrayTerm(ts...)
}

// Revision returns the revision recorded in doc.
func Revision(doc ast.Object) (int64, error) {
	if t := doc.Get(ast.InternedTerm(keyRevision)); t != nil {
		if n, ok := t.Value.(ast.Number); ok {
			if rev, ok := n.Int64(); ok {
				return rev, nil
			}
		}
	}
	return 0, errors.New("index: document has no integer revision")
}

// RoleTerm returns a role's entry in the roles object.
func RoleTerm(r model.Role) *ast.Term {
	perms := ast.NewObjectWithCapacity(len(r.Permissions))
	for _, p := range r.Permissions {
		perms.Insert(ast.StringTerm(p), ast.InternedTerm(true))
	}
	return ast.ObjectTerm(
		ast.Item(ast.InternedTerm("slug"), ast.StringTerm(r.Slug)),
		ast.Item(ast.InternedTerm("type"), ast.StringTerm(r.ResourceType)),
		ast.Item(ast.InternedTerm("permissions"), ast.NewTerm(perms)),
	)
}
