package relstore

import (
	"github.com/trellis-authz/trellis/internal/model"
)

// Groups in compact form. A group is a row of mems (memKind kindGroup)
// whose grants are records like a membership's; its members are link
// records, each in the group's list and in the membership's.

// The kinds of a mems row.
const (
	kindMembership = 0
	kindGroup      = 1
)

// The fields of a link record.
const (
	lnGroup, lnMem               = 0, 1 // rows of mems
	lnNextOfGroup, lnPrevOfGroup = 2, 3 // links
	lnNextOfMem, lnPrevOfMem     = 4, 5 // links
	lnFields                     = 6
)

// memberLink finds the link record of (group, mem), rows.
func (st *state) memberLink(group, mem uint32) uint32 {
	if group == 0 || mem == 0 {
		return 0
	}
	l := &st.links
	return st.linkByPair.find(mix2(group, mem), func(v uint32) bool { return l.at(v, lnGroup) == group && l.at(v, lnMem) == mem })
}

// addLink makes mem a member of group; they must not be linked yet.
func (st *state) addLink(group, mem uint32) {
	l, m := &st.links, &st.mems
	row := st.alloc(l)
	st.set(l, row, lnGroup, group)
	st.set(l, row, lnMem, mem)
	st.insert(&st.linkByPair, row)
	for _, end := range []struct {
		owner      uint32
		next, prev int
	}{{group, lnNextOfGroup, lnPrevOfGroup}, {mem, lnNextOfMem, lnPrevOfMem}} {
		if next := m.at(end.owner, memFirstLink); next != 0 {
			st.set(l, row, end.next, next)
			st.set(l, next, end.prev, row)
		}
		st.set(m, end.owner, memFirstLink, row)
	}
	st.orderLink(row)
}

// dropLink removes link record row from both of its lists.
func (st *state) dropLink(row uint32) {
	l := &st.links
	st.unorderLink(row)
	st.remove(&st.linkByPair, row)
	st.unlistIn(l, row, lnPrevOfGroup, lnNextOfGroup, &st.mems, l.at(row, lnGroup), memFirstLink)
	st.unlistIn(l, row, lnPrevOfMem, lnNextOfMem, &st.mems, l.at(row, lnMem), memFirstLink)
	st.release(l, row)
}

// unlistIn takes record row of table rec out of one of its lists: the one
// linked by its fields prevF and nextF, whose head is field head of row
// owner of table t.
func (st *state) unlistIn(rec *table, row uint32, prevF, nextF int, t *table, owner uint32, head int) {
	prev, next := rec.at(row, prevF), rec.at(row, nextF)
	if prev != 0 {
		st.set(rec, prev, nextF, next)
	} else {
		st.set(t, owner, head, next)
	}
	if next != 0 {
		st.set(rec, next, prevF, prev)
	}
}

// linked calls fn with the other end of each link of mems row: a group's
// members, a membership's groups.
func (st *state) linked(row uint32, fn func(link, other uint32)) {
	l := &st.links
	other, next := lnGroup, lnNextOfMem
	if st.mems.at(row, memKind) == kindGroup {
		other, next = lnMem, lnNextOfGroup
	}
	for ln := st.mems.at(row, memFirstLink); ln != 0; {
		following := l.at(ln, next)
		fn(ln, l.at(ln, other))
		ln = following
	}
}

// linkedIDs is the ids of what mems row is linked to, sorted; never nil.
func (st *state) linkedIDs(row uint32) []any {
	var rows []uint32
	st.linked(row, func(_, other uint32) { rows = append(rows, other) })
	return st.sortedStrs(&st.mems, memID, rows)
}

// dropLinks removes every link of mems row.
func (st *state) dropLinks(row uint32) {
	st.linked(row, func(ln, _ uint32) { st.dropLink(ln) })
}

// putGroup adds a group or renames it. A group cannot move to another
// organization, nor take a membership's id.
func (st *state) putGroup(g model.Group) error {
	entity := model.KindGroup + " " + g.ID
	orow := st.orgNamed(g.OrganizationID)
	if orow == 0 {
		return model.BrokenRule(model.CodeUnknownReference, []string{g.OrganizationID}, entity, "organization_id", "unknown organization %q", g.OrganizationID)
	}
	org := st.orgs.at(orow, orgID)
	id := st.str.intern(g.ID)
	row := st.principal(id)
	switch {
	case row == 0:
		row = st.addMembership(id, org)
		st.set(&st.mems, row, memKind, kindGroup)
		st.set(&st.mems, row, memActive, 1)
	case st.mems.at(row, memKind) != kindGroup:
		return invariant("group %s: id is a membership's", g.ID)
	case st.mems.at(row, memOrg) != org:
		return invariant("group %s: organization %s cannot become %s", g.ID, st.str.str(st.mems.at(row, memOrg)), g.OrganizationID)
	}
	st.set(&st.mems, row, memName, st.str.intern(g.Name))
	return nil
}

// deleteGroup removes group row (0: none), its members and its grants.
func (st *state) deleteGroup(row uint32) {
	if row == 0 {
		return
	}
	st.dropLinks(row)
	st.deleteMembership(row)
}

// groupMember adds or removes a member of a group. Both must exist and be
// of one organization; a delete of a pair that is not linked (a cascade)
// does nothing.
func (st *state) groupMember(gm model.GroupMember, del bool) error {
	group, mem := st.groupNamed(gm.GroupID), st.membershipNamed(gm.MembershipID)
	ln := st.memberLink(group, mem)
	if del {
		if ln != 0 {
			st.dropLink(ln)
		}
		return nil
	}
	entity := model.KindGroupMember + " " + gm.GroupID + " " + gm.MembershipID
	switch {
	case group == 0:
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, "group_id", "unknown group %q", gm.GroupID)
	case mem == 0:
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, "membership_id", "unknown membership %q", gm.MembershipID)
	case st.mems.at(group, memOrg) != st.mems.at(mem, memOrg):
		gOrg, mOrg := st.str.str(st.mems.at(group, memOrg)), st.str.str(st.mems.at(mem, memOrg))
		return model.BrokenRule(model.CodeCrossOrganization, []string{gOrg, mOrg}, entity, "membership_id",
			"membership %q is in organization %q but group %q is in %q", gm.MembershipID, mOrg, gm.GroupID, gOrg)
	case ln == 0:
		st.addLink(group, mem)
	}
	return nil
}

// buildGroups adds ds's groups, before the assignments, which may name
// them.
func (st *state) buildGroups(ds *model.Dataset) error {
	for _, g := range ds.Groups {
		if st.principalNamed(g.ID) != 0 {
			return invariant("group %s: id is used more than once", g.ID)
		}
		if err := st.putGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// buildGroupMembers links ds's group members, once the memberships are in.
func (st *state) buildGroupMembers(ds *model.Dataset) error {
	for _, gm := range ds.GroupMembers {
		if err := st.groupMember(gm, false); err != nil {
			return err
		}
	}
	return nil
}

// groupValue is groups[g]: {org, name, anchors, members}.
func (st *state) groupValue(row uint32) map[string]any {
	return map[string]any{
		"org":     st.str.str(st.mems.at(row, memOrg)),
		"name":    st.str.str(st.mems.at(row, memName)),
		"anchors": st.anchors(row),
		"members": st.linkedIDs(row),
	}
}

// memberGroupsValue is member_groups[om]; false when om is in no group.
func (st *state) memberGroupsValue(row uint32) ([]any, bool) {
	if st.mems.at(row, memFirstLink) == 0 {
		return nil, false
	}
	return st.linkedIDs(row), true
}

// membersOnly adapts the value of a mems row, which may be absent, to
// the rows of memberships only.
func membersOnly[V any](st *state, value func(uint32) (V, bool)) func(uint32) (V, bool) {
	return func(row uint32) (V, bool) {
		if st.mems.at(row, memKind) != kindMembership {
			var zero V
			return zero, false
		}
		return value(row)
	}
}

// groupsOnly adapts the value of a mems row to the rows of groups only.
func groupsOnly[V any](st *state, value func(uint32) V) func(uint32) (V, bool) {
	return func(row uint32) (V, bool) {
		if st.mems.at(row, memKind) != kindGroup {
			var zero V
			return zero, false
		}
		return value(row), true
	}
}

// always adapts a value every row has to one that may be absent.
func always[V any](value func(uint32) V) func(uint32) (V, bool) {
	return func(row uint32) (V, bool) { return value(row), true }
}

// anyValue adapts a typed value to the exporter's.
func anyValue[V any](value func(uint32) (V, bool)) func(uint32) (any, bool) {
	return func(row uint32) (any, bool) { return value(row) }
}

// readGroup reads groups/<g>[/<field>...], materializing only the field
// asked for: a group's members may be many.
func (st *state) readGroup(p []string) (any, []string, bool) {
	row := st.groupNamed(p[0])
	if row == 0 {
		return nil, nil, false
	}
	if len(p) == 1 {
		return st.groupValue(row), nil, true
	}
	var v any
	switch p[1] {
	case "org":
		v = st.str.str(st.mems.at(row, memOrg))
	case "name":
		v = st.str.str(st.mems.at(row, memName))
	case "anchors":
		v = st.anchors(row)
	case "members":
		v = st.linkedIDs(row)
	default:
		return nil, nil, false
	}
	return v, p[2:], true
}
