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
//	groups[g]                 {org, name, anchors, members}
//	                                   anchors as a membership's; members
//	                                   the group's memberships, sorted
//	member_groups[om]         [g]      the groups om is a member of,
//	                                   sorted; only memberships in a group.
//	                                   A group's role keys on rid are
//	                                   grants[rid][g], beside its members'
//	                                   own: a check reads grants[anchor][p]
//	                                   for om and each of its groups, so it
//	                                   costs O(depth × groups of om) lookups
//	                                   and never reads a group's members
//	roles[key]                {slug, type, permissions{slug: true}}
//	permissions[slug]         {type}
//	resource_types[slug]      true     the resource types, for lists to
//	                                   refuse a type that does not exist
//	max_depth                 number   the most levels a tree may have, for
//	                                   Patch to refuse a change that breaks it
//	attributes[rid]           object   the resource's attributes, only for
//	                                   resources that have some
//	org_attributes[org]       object   the organization's, likewise
//
// Organizations held out of the data because their data breaks a rule
// (model.Dataset.Quarantined) leave only what recognises requests about
// them, so that the policies answer organization_unavailable:
//
//	quarantined[org]              true
//	quarantined_resources[rid]    org   its resources, root included
//	quarantined_memberships[om]   org
package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Root is the path of the data document in OPA's data tree.
const Root = "trellis_data"

// Document keys, shared with the policies.
const (
	keyRevision      = "revision"
	keyOrgs          = "orgs"
	keyResources     = "resources"
	keyLookup        = "lookup"
	keyChildren      = "children"
	keyGrants        = "grants"
	keyMemberships   = "memberships"
	keyOrgRoles      = "org_roles"
	keyGroups        = "groups"
	keyMemberGroups  = "member_groups"
	keyRoles         = "roles"
	keyPermissions   = "permissions"
	keyResourceTypes = "resource_types"
	keyMaxDepth      = "max_depth"

	keyAttributes    = "attributes"
	keyOrgAttributes = "org_attributes"

	keyQuarantined            = "quarantined"
	keyQuarantinedResources   = "quarantined_resources"
	keyQuarantinedMemberships = "quarantined_memberships"
)

// Build returns the data document for ds as the plain Go values OPA's
// store holds: map[string]any, []any, string, bool and json.Number. The
// dataset must be valid (model.Dataset.Validate, or Isolate, whose
// quarantined organizations Build records); Build still reports references
// it cannot resolve rather than produce a document that silently drops
// them. The caller owns the returned value and must not mutate it once
// it is written to a store. BuildAST returns the same document as OPA AST.
func Build(ds *model.Dataset) (map[string]any, error) {
	b := builder{boxes: map[string]any{}}
	return b.build(ds)
}

// BuildAST returns the data document for ds as an OPA AST object.
func BuildAST(ds *model.Dataset) (ast.Object, error) {
	doc, err := Build(ds)
	if err != nil {
		return nil, err
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, err
	}
	return v.(ast.Object), nil
}

// builder boxes each distinct string value once: an id stored in many
// ancestor chains, keys and grant lists costs one heap object, which is
// less memory and less for the garbage collector to mark on every cycle.
type builder struct {
	boxes map[string]any
}

func (b *builder) box(s string) any {
	if v, ok := b.boxes[s]; ok {
		return v
	}
	var v any = s
	b.boxes[s] = v
	return v
}

// node is a resource (or organization root) while the document is built.
type node struct {
	id            string
	idBox         any
	org, typ, ext any
	parentID      string
	up            *node
	kids          []*node
	anc           []any
}

func (b *builder) build(ds *model.Dataset) (map[string]any, error) {
	nodes := make(map[string]*node, len(ds.Resources)+len(ds.Organizations))
	orgs := make(map[string]any, len(ds.Organizations))
	roots := make(map[string]string, len(ds.Organizations))
	attrs, orgAttrs := map[string]any{}, map[string]any{}
	for _, o := range ds.Organizations {
		if len(o.Attributes) > 0 {
			orgAttrs[o.ID] = map[string]any(o.Attributes)
		}
		root := o.RootID()
		roots[o.ID] = root
		org := b.box(o.ID)
		nodes[root] = &node{id: root, idBox: b.box(root), org: org, typ: b.box(model.OrganizationType), ext: org}
		orgs[o.ID] = map[string]any{"root": nodes[root].idBox}
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = roots[r.OrganizationID]
		}
		if len(r.Attributes) > 0 {
			attrs[r.ID] = map[string]any(r.Attributes)
		}
		nodes[r.ID] = &node{id: r.ID, idBox: b.box(r.ID), org: b.box(r.OrganizationID), typ: b.box(r.Type), ext: r.ExternalID, parentID: parent}
	}
	for _, r := range ds.Resources {
		n := nodes[r.ID]
		if n.up = nodes[n.parentID]; n.up == nil {
			return nil, fmt.Errorf("resource %s: unknown parent %q", r.ID, n.parentID)
		}
		n.up.kids = append(n.up.kids, n)
	}

	resources := make(map[string]any, len(nodes))
	children := map[string]any{}
	lookup := map[string]any{} // org → type → ext → rid
	for _, n := range nodes {
		anc, err := ancestry(n, ds.Depth())
		if err != nil {
			return nil, err
		}
		resources[n.id] = []any{n.org, n.typ, n.ext, anc}
		if len(n.kids) > 0 {
			slices.SortFunc(n.kids, func(x, y *node) int { return strings.Compare(x.id, y.id) })
			kids := make([]any, len(n.kids))
			for i, k := range n.kids {
				kids[i] = k.idBox
			}
			children[n.id] = kids
		}
		org, typ := n.org.(string), n.typ.(string)
		byType, _ := lookup[org].(map[string]any)
		if byType == nil {
			byType = map[string]any{}
			lookup[org] = byType
		}
		exts, _ := byType[typ].(map[string]any)
		if exts == nil {
			exts = map[string]any{}
			byType[typ] = exts
		}
		exts[n.ext.(string)] = n.idBox
	}

	grants, anchors, orgRoles, err := b.grants(ds, nodes, roots)
	if err != nil {
		return nil, err
	}

	memberships := make(map[string]any, len(ds.Memberships))
	for _, m := range ds.Memberships {
		held := anchors[m.ID]
		if held == nil {
			held = []any{}
		}
		memberships[m.ID] = map[string]any{"org": b.box(m.OrganizationID), "active": m.Status == model.StatusActive, "anchors": held}
	}

	groups, memberGroups := b.groups(ds, anchors)

	roles := make(map[string]any, len(ds.Roles))
	for _, r := range ds.Roles {
		roles[r.Key()] = roleValue(r)
	}

	perms := make(map[string]any, len(ds.Permissions))
	for _, p := range ds.Permissions {
		perms[p.Slug] = map[string]any{"type": b.box(p.ResourceType)}
	}

	types := make(map[string]any, len(ds.ResourceTypes))
	for _, t := range ds.ResourceTypes {
		types[t.Slug] = true
	}

	quarantined, qResources, qMemberships := map[string]any{}, map[string]any{}, map[string]any{}
	for _, q := range ds.Quarantined {
		org := b.box(q.Organization)
		quarantined[q.Organization] = true
		for _, id := range q.Resources {
			qResources[id] = org
		}
		for _, id := range q.Memberships {
			qMemberships[id] = org
		}
	}

	return map[string]any{
		keyRevision:               json.Number(strconv.FormatInt(ds.Revision, 10)),
		keyMaxDepth:               json.Number(strconv.Itoa(ds.Depth())),
		keyOrgs:                   orgs,
		keyResources:              resources,
		keyLookup:                 lookup,
		keyChildren:               children,
		keyGrants:                 grants,
		keyMemberships:            memberships,
		keyOrgRoles:               orgRoles,
		keyGroups:                 groups,
		keyMemberGroups:           memberGroups,
		keyRoles:                  roles,
		keyPermissions:            perms,
		keyResourceTypes:          types,
		keyAttributes:             attrs,
		keyOrgAttributes:          orgAttrs,
		keyQuarantined:            quarantined,
		keyQuarantinedResources:   qResources,
		keyQuarantinedMemberships: qMemberships,
	}, nil
}

// ancestry returns (and memoizes) n's ancestor chain, nearest first: it
// walks up to the first node whose chain is known (or the root), then fills
// chains in on the way back down.
func ancestry(n *node, maxDepth int) ([]any, error) {
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
	var tail []any
	if last := path[len(path)-1]; last.anc != nil {
		tail = last.anc
		path = path[:len(path)-1]
	}
	for i := len(path) - 1; i >= 0; i-- {
		chain := make([]any, 0, len(tail)+1)
		chain = append(chain, path[i].idBox)
		chain = append(chain, tail...)
		if len(chain) > maxDepth {
			return nil, fmt.Errorf("resource %v: tree deeper than %d levels", path[i].id, maxDepth)
		}
		path[i].anc = chain
		tail = chain
	}
	return n.anc, nil
}

// grant is one source of a role on a resource for a membership.
type grant struct {
	rid     *node
	om, key string
}

// grants builds grants[rid][om] (role keys sorted, one per source), each
// membership's anchors (sorted) and org_roles. Sorting one slice of grants
// groups them without a map keyed by (resource, membership).
func (b *builder) grants(ds *model.Dataset, nodes map[string]*node, roots map[string]string) (map[string]any, map[string][]any, map[string]any, error) {
	roles := model.NewRoleIndex(ds.Roles)
	resolve := func(org, slug string) (string, error) {
		r, ok := roles.Resolve(org, slug)
		if !ok {
			return "", fmt.Errorf("role %q does not exist in organization %s", slug, org)
		}
		return r.Key(), nil
	}
	all := make([]grant, 0, len(ds.Assignments)+len(ds.Memberships))
	orgRoles := make(map[string]any, len(ds.Memberships))
	memberOrg := make(map[string]string, len(ds.Memberships))
	for _, m := range ds.Memberships {
		memberOrg[m.ID] = m.OrganizationID
		ks := make([]string, 0, len(m.RoleSlugs))
		root := nodes[roots[m.OrganizationID]]
		if root == nil && len(m.RoleSlugs) > 0 {
			return nil, nil, nil, fmt.Errorf("membership %s: organization %q does not exist", m.ID, m.OrganizationID)
		}
		for _, slug := range m.RoleSlugs {
			k, err := resolve(m.OrganizationID, slug)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("membership %s: %w", m.ID, err)
			}
			all = append(all, grant{root, m.ID, k})
			ks = append(ks, k)
		}
		sort.Strings(ks)
		orgRoles[m.ID] = b.boxAll(ks)
	}
	for _, g := range ds.Groups {
		memberOrg[g.ID] = g.OrganizationID
	}
	for _, a := range ds.Assignments {
		org, ok := memberOrg[a.Principal()]
		if !ok {
			return nil, nil, nil, fmt.Errorf("assignment %s: unknown %s %q", a.ID, principalKind(a), a.Principal())
		}
		rn := nodes[a.ResourceID]
		if rn == nil {
			return nil, nil, nil, fmt.Errorf("assignment %s: unknown resource %q", a.ID, a.ResourceID)
		}
		k, err := resolve(org, a.RoleSlug)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("assignment %s: %w", a.ID, err)
		}
		all = append(all, grant{rn, a.Principal(), k})
	}
	slices.SortFunc(all, func(x, y grant) int {
		if c := strings.Compare(x.rid.id, y.rid.id); c != 0 {
			return c
		}
		if c := strings.Compare(x.om, y.om); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})

	// Most grant lists are one of a few role-key lists: each distinct list
	// is stored once and shared, which patches allow, as they replace a
	// list and never change one in place.
	lists := map[string]any{}
	grants := map[string]any{}
	anchors := map[string][]any{}
	var keys []string
	for i := 0; i < len(all); {
		rn := all[i].rid
		byMember := map[string]any{}
		for i < len(all) && all[i].rid == rn {
			om := all[i].om
			keys = keys[:0]
			for ; i < len(all) && all[i].rid == rn && all[i].om == om; i++ {
				keys = append(keys, all[i].key)
			}
			joined := strings.Join(keys, "\x00")
			list, ok := lists[joined]
			if !ok {
				list = b.boxAll(keys)
				lists[joined] = list
			}
			byMember[om] = list
			anchors[om] = append(anchors[om], rn.idBox) // resources come in id order
		}
		grants[rn.id] = byMember
	}
	return grants, anchors, orgRoles, nil
}

// principalKind names who an assignment grants, for errors.
func principalKind(a model.Assignment) string {
	if a.MembershipID == "" && a.GroupID != "" {
		return "group"
	}
	return "membership"
}

// groups builds groups[g] and member_groups[om], both lists sorted.
func (b *builder) groups(ds *model.Dataset, anchors map[string][]any) (map[string]any, map[string]any) {
	members := map[string][]string{}
	ofMember := map[string][]string{}
	for _, gm := range ds.GroupMembers {
		members[gm.GroupID] = append(members[gm.GroupID], gm.MembershipID)
		ofMember[gm.MembershipID] = append(ofMember[gm.MembershipID], gm.GroupID)
	}
	groups := make(map[string]any, len(ds.Groups))
	for _, g := range ds.Groups {
		held := anchors[g.ID]
		if held == nil {
			held = []any{}
		}
		ms := members[g.ID]
		sort.Strings(ms)
		groups[g.ID] = map[string]any{"org": b.box(g.OrganizationID), "name": g.Name, "anchors": held, "members": b.boxAll(ms)}
	}
	memberGroups := make(map[string]any, len(ofMember))
	for om, gs := range ofMember {
		sort.Strings(gs)
		memberGroups[om] = b.boxAll(gs)
	}
	return groups, memberGroups
}

func (b *builder) boxAll(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = b.box(s)
	}
	return out
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
	return ast.NewTerm(ast.MustInterfaceToValue(roleValue(r)))
}

func roleValue(r model.Role) map[string]any {
	perms := make(map[string]any, len(r.Permissions))
	for _, p := range r.Permissions {
		perms[p] = true
	}
	return map[string]any{"slug": r.Slug, "type": r.ResourceType, "permissions": perms}
}
