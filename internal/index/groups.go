package index

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Groups in the document: groups[g] = {org, name, anchors, members} and
// member_groups[om] = [g], both lists sorted; a group's grants are
// grants[rid][g].

// principalKey is the collection of principal id: keyGroups for a group
// in the document, else keyMemberships.
func (p patcher) principalKey(id string) (string, error) {
	_, ok, err := p.s.Get(keyGroups, id)
	if err != nil || !ok {
		return keyMemberships, err
	}
	return keyGroups, nil
}

func groupValue(org, name string, anchors, members []string) ast.Value {
	return ast.NewObject(
		ast.Item(ast.InternedTerm("org"), ast.StringTerm(org)),
		ast.Item(ast.InternedTerm("name"), ast.StringTerm(name)),
		ast.Item(ast.InternedTerm("anchors"), ast.NewTerm(stringsValue(anchors))),
		ast.Item(ast.InternedTerm("members"), ast.NewTerm(stringsValue(members))),
	)
}

// putGroup adds a group or renames it, keeping its grants and members.
func (p patcher) putGroup(g model.Group) error {
	entity := model.KindGroup + " " + g.ID
	if _, err := p.rootOf(g.OrganizationID, entity, "organization_id"); err != nil {
		return err
	}
	anchors, err := p.list(keyGroups, g.ID, "anchors")
	if err != nil {
		return err
	}
	members, err := p.list(keyGroups, g.ID, "members")
	if err != nil {
		return err
	}
	return p.s.Put(groupValue(g.OrganizationID, g.Name, anchors, members), keyGroups, g.ID)
}

// deleteGroup removes a group, its grants and its members' entries of it.
func (p patcher) deleteGroup(id string) error {
	anchors, err := p.list(keyGroups, id, "anchors")
	if err != nil {
		return err
	}
	members, err := p.list(keyGroups, id, "members")
	if err != nil {
		return err
	}
	for _, a := range anchors {
		if err := p.s.Delete(keyGrants, a, id); err != nil {
			return err
		}
		if err := p.dropIfEmpty(keyGrants, a); err != nil {
			return err
		}
	}
	for _, om := range members {
		if err := p.editList(func(gs []string) []string { return without(gs, id) }, keyMemberGroups, om); err != nil {
			return err
		}
	}
	return p.s.Delete(keyGroups, id)
}

// groupMember adds or removes a member of a group of its organization.
func (p patcher) groupMember(gm model.GroupMember, del bool) error {
	if del {
		if err := p.editList(func(ms []string) []string { return without(ms, gm.MembershipID) }, keyGroups, gm.GroupID, "members"); err != nil {
			return err
		}
		return p.editList(func(gs []string) []string { return without(gs, gm.GroupID) }, keyMemberGroups, gm.MembershipID)
	}
	entity := model.KindGroupMember + " " + gm.GroupID + " " + gm.MembershipID
	gOrg, gok, err := p.s.Get(keyGroups, gm.GroupID, "org")
	if err != nil {
		return err
	}
	mOrg, mok, err := p.s.Get(keyMemberships, gm.MembershipID, "org")
	switch {
	case err != nil:
		return err
	case !gok:
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, "group_id", "unknown group %q", gm.GroupID)
	case !mok:
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, "membership_id", "unknown membership %q", gm.MembershipID)
	case gOrg.Compare(mOrg) != 0:
		g, m := string(gOrg.(ast.String)), string(mOrg.(ast.String))
		return model.BrokenRule(model.CodeCrossOrganization, []string{g, m}, entity, "membership_id",
			"membership %q is in organization %q but group %q is in %q", gm.MembershipID, m, gm.GroupID, g)
	}
	if err := p.editList(func(ms []string) []string { return with(ms, gm.MembershipID) }, keyGroups, gm.GroupID, "members"); err != nil {
		return err
	}
	return p.editList(func(gs []string) []string { return with(gs, gm.GroupID) }, keyMemberGroups, gm.MembershipID)
}

// leaveGroups takes membership om out of every group it is in.
func (p patcher) leaveGroups(om string) error {
	groups, err := p.list(keyMemberGroups, om)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := p.editList(func(ms []string) []string { return without(ms, om) }, keyGroups, g, "members"); err != nil {
			return err
		}
	}
	return p.s.Delete(keyMemberGroups, om)
}
