package index

import "strings"

// Organization returns the part of a document, in its JSON form, that one
// organization's decisions read: its root, lookups, resources with their
// children and grants (its groups' included), its memberships and groups,
// the environment roles and its own
// roles, every permission, and the attributes of it and its resources. ok is false when doc has no such
// organization. doc is not modified; the result shares its leaves.
func Organization(doc map[string]any, org string) (sub map[string]any, ok bool) {
	section := func(name string) map[string]any {
		m, _ := doc[name].(map[string]any)
		return m
	}
	orgs := section(keyOrgs)
	if _, ok := orgs[org]; !ok {
		return nil, false
	}
	lookup, _ := section(keyLookup)[org].(map[string]any)
	resources, children, grants, attrs := map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
	allResources, allChildren, allGrants, allAttrs := section(keyResources), section(keyChildren), section(keyGrants), section(keyAttributes)
	for _, byExt := range lookup {
		exts, _ := byExt.(map[string]any)
		for _, rid := range exts {
			id, _ := rid.(string)
			resources[id] = allResources[id]
			if c, ok := allChildren[id]; ok {
				children[id] = c
			}
			if g, ok := allGrants[id]; ok {
				grants[id] = g
			}
			if a, ok := allAttrs[id]; ok {
				attrs[id] = a
			}
		}
	}
	memberships := map[string]any{}
	for id, m := range section(keyMemberships) {
		if mm, _ := m.(map[string]any); mm["org"] == org {
			memberships[id] = m
		}
	}
	groups, memberGroups := map[string]any{}, map[string]any{}
	for id, g := range section(keyGroups) {
		if gg, _ := g.(map[string]any); gg["org"] == org {
			groups[id] = g
		}
	}
	for om, gs := range section(keyMemberGroups) {
		if _, ok := memberships[om]; ok {
			memberGroups[om] = gs // a membership's groups are of its organization
		}
	}
	roles := map[string]any{}
	for key, r := range section(keyRoles) {
		if !strings.Contains(key, "/") || strings.HasPrefix(key, org+"/") {
			roles[key] = r
		}
	}
	sub = map[string]any{
		keyRevision:      doc[keyRevision],
		keyOrgs:          map[string]any{org: orgs[org]},
		keyLookup:        map[string]any{org: lookup},
		keyResources:     resources,
		keyChildren:      children,
		keyGrants:        grants,
		keyMemberships:   memberships,
		keyGroups:        groups,
		keyMemberGroups:  memberGroups,
		keyRoles:         roles,
		keyPermissions:   doc[keyPermissions],
		keyResourceTypes: doc[keyResourceTypes],
		keyAttributes:    attrs,
	}
	if a, ok := section(keyOrgAttributes)[org]; ok {
		sub[keyOrgAttributes] = map[string]any{org: a}
	}
	return sub, true
}

// Quarantined reports whether doc, in its JSON form, holds organization
// org as quarantined (model.Quarantine): its data is out of service.
func Quarantined(doc map[string]any, org string) bool {
	q, _ := doc[keyQuarantined].(map[string]any)
	_, ok := q[org]
	return ok
}
