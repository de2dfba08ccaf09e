// Package index shapes relationship data into the OPA data document the
// policies under policies/ read. It is the one index builder every data source
// shares: the data file and PostgreSQL both hand it a model.Dataset.
//
// The document (rooted at data.trellis_data) is shaped so that a check costs
// O(depth) keyed lookups:
//
//	revision                  number   the data revision this document reflects
//	orgs[org]                 {root}   the organization's root resource id
//	resources[rid]            {org, type, ext, anc}
//	                                   anc lists the resource and its ancestors,
//	                                   nearest first, the root last
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
	"sort"

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
	b := builder{terms: make(map[string]*ast.Term, len(ds.Resources)+len(ds.Organizations))}
	return b.build(ds)
}

// builder interns one *ast.Term per id so that a resource id stored in many
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

type node struct {
	org, typ, ext, parent string
	anc                   *ast.Term
}

func (b *builder) build(ds *model.Dataset) (ast.Object, error) {
	nodes := make(map[string]*node, len(ds.Resources)+len(ds.Organizations))
	orgs := ast.NewObject()
	lookup := map[string]map[string]ast.Object{} // org → type → ext → rid
	addLookup := func(org, typ, ext, rid string) {
		byType := lookup[org]
		if byType == nil {
			byType = map[string]ast.Object{}
			lookup[org] = byType
		}
		obj := byType[typ]
		if obj == nil {
			obj = ast.NewObject()
			byType[typ] = obj
		}
		obj.Insert(b.term(ext), b.term(rid))
	}
	for _, o := range ds.Organizations {
		root := o.RootID()
		nodes[root] = &node{org: o.ID, typ: model.OrganizationType, ext: o.ID}
		orgs.Insert(b.term(o.ID), ast.ObjectTerm(ast.Item(ast.InternedTerm("root"), b.term(root))))
		addLookup(o.ID, model.OrganizationType, o.ID, root)
	}
	roots := make(map[string]string, len(ds.Organizations))
	for _, o := range ds.Organizations {
		roots[o.ID] = o.RootID()
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = roots[r.OrganizationID]
		}
		nodes[r.ID] = &node{org: r.OrganizationID, typ: r.Type, ext: r.ExternalID, parent: parent}
		addLookup(r.OrganizationID, r.Type, r.ExternalID, r.ID)
	}

	children := map[string][]*ast.Term{}
	for _, r := range ds.Resources {
		p := nodes[r.ID].parent
		if _, ok := nodes[p]; !ok {
			return nil, fmt.Errorf("resource %s: unknown parent %q", r.ID, p)
		}
		children[p] = append(children[p], b.term(r.ID))
	}

	resources := ast.NewObjectWithCapacity(len(nodes))
	for id := range nodes {
		anc, err := b.ancestry(nodes, id, ds.Depth())
		if err != nil {
			return nil, err
		}
		n := nodes[id]
		resources.Insert(b.term(id), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("org"), b.term(n.org)),
			ast.Item(ast.InternedTerm("type"), b.term(n.typ)),
			ast.Item(ast.InternedTerm("ext"), b.term(n.ext)),
			ast.Item(ast.InternedTerm("anc"), anc),
		))
	}

	childObj := ast.NewObjectWithCapacity(len(children))
	for id, cs := range children {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Value.Compare(cs[j].Value) < 0 })
		childObj.Insert(b.term(id), ast.ArrayTerm(cs...))
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

	lookupObj := ast.NewObjectWithCapacity(len(lookup))
	for org, byType := range lookup {
		typeObj := ast.NewObjectWithCapacity(len(byType))
		for typ, exts := range byType {
			typeObj.Insert(b.term(typ), ast.NewTerm(exts))
		}
		lookupObj.Insert(b.term(org), ast.NewTerm(typeObj))
	}

	return ast.NewObject(
		ast.Item(ast.InternedTerm(keyRevision), ast.IntNumberTerm(int(ds.Revision))),
		ast.Item(ast.InternedTerm(keyOrgs), ast.NewTerm(orgs)),
		ast.Item(ast.InternedTerm(keyResources), ast.NewTerm(resources)),
		ast.Item(ast.InternedTerm(keyLookup), ast.NewTerm(lookupObj)),
		ast.Item(ast.InternedTerm(keyChildren), ast.NewTerm(childObj)),
		ast.Item(ast.InternedTerm(keyGrants), ast.NewTerm(grants)),
		ast.Item(ast.InternedTerm(keyMemberships), ast.NewTerm(memberships)),
		ast.Item(ast.InternedTerm(keyOrgRoles), ast.NewTerm(orgRoles)),
		ast.Item(ast.InternedTerm(keyRoles), ast.NewTerm(roles)),
		ast.Item(ast.InternedTerm(keyPermissions), ast.NewTerm(perms)),
	), nil
}

// ancestry returns (and memoizes) the ancestor chain of id, nearest first.
// Chains share no array storage but share the interned id terms.
func (b *builder) ancestry(nodes map[string]*node, id string, maxDepth int) (*ast.Term, error) {
	n := nodes[id]
	if n.anc != nil {
		return n.anc, nil
	}
	// Walk up to the first node whose chain is known (or the root), then
	// fill chains in on the way back down.
	path := []string{id}
	for cur := n; cur.parent != "" && cur.anc == nil; {
		if len(path) > maxDepth {
			return nil, fmt.Errorf("resource %s: tree deeper than %d levels or cyclic", id, maxDepth)
		}
		path = append(path, cur.parent)
		cur = nodes[cur.parent]
	}
	var tail []*ast.Term
	last := nodes[path[len(path)-1]]
	if last.anc != nil {
		tail = termsOf(last.anc)
		path = path[:len(path)-1]
	}
	for i := len(path) - 1; i >= 0; i-- {
		chain := make([]*ast.Term, 0, len(tail)+1)
		chain = append(chain, b.term(path[i]))
		chain = append(chain, tail...)
		if len(chain) > maxDepth {
			return nil, fmt.Errorf("resource %s: tree deeper than %d levels", path[i], maxDepth)
		}
		nodes[path[i]].anc = ast.ArrayTerm(chain...)
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

// grants builds grants[rid][om], each membership's anchors and org_roles.
func (b *builder) grants(ds *model.Dataset, nodes map[string]*node, roots map[string]string) (ast.Object, map[string][]*ast.Term, ast.Object, error) {
	type pair struct{ rid, om string }
	keys := map[pair][]string{}
	var order []pair
	add := func(rid, om, roleKey string) {
		p := pair{rid, om}
		if _, ok := keys[p]; !ok {
			order = append(order, p)
		}
		keys[p] = append(keys[p], roleKey)
	}
	roles := model.NewRoleIndex(ds.Roles)
	resolve := func(org, slug string) (string, error) {
		r, ok := roles.Resolve(org, slug)
		if !ok {
			return "", fmt.Errorf("role %q does not exist in organization %s", slug, org)
		}
		return r.Key(), nil
	}
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
			add(roots[m.OrganizationID], m.ID, k)
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
		if _, ok := nodes[a.ResourceID]; !ok {
			return nil, nil, nil, fmt.Errorf("assignment %s: unknown resource %q", a.ID, a.ResourceID)
		}
		k, err := resolve(org, a.RoleSlug)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("assignment %s: %w", a.ID, err)
		}
		add(a.ResourceID, a.MembershipID, k)
	}

	byResource := map[string]ast.Object{}
	anchors := map[string][]*ast.Term{}
	for _, p := range order {
		obj := byResource[p.rid]
		if obj == nil {
			obj = ast.NewObject()
			byResource[p.rid] = obj
		}
		ks := keys[p]
		sort.Strings(ks)
		obj.Insert(b.term(p.om), b.strings(ks))
		anchors[p.om] = append(anchors[p.om], b.term(p.rid))
	}
	for _, ts := range anchors {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Value.Compare(ts[j].Value) < 0 })
	}
	grants := ast.NewObjectWithCapacity(len(byResource))
	for rid, obj := range byResource {
		grants.Insert(b.term(rid), ast.NewTerm(obj))
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
