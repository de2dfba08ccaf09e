package postgres

import "github.com/trellis-authz/trellis/internal/model"

// applyGroups writes a change to a group, a group member or a group role
// assignment (an Assignment with GroupID set). Every refusal names the
// field and why, and writes nothing: a member of another organization, an
// unknown group or membership, a duplicate member, a role whose type is not
// the resource's. A group belongs to one organization for good; a member
// is also held to the group's organization by the tables' foreign keys
// (0008_groups.sql), so the rule holds per commit.
func (w *writer) applyGroups(i int, c model.Change, up bool) error {
	switch {
	case c.Group != nil && up:
		return w.upsertGroup(i, c.Group)
	case c.Group != nil:
		return w.deleteBy(i, model.KindGroup, c.Group.ID, "DELETE FROM groups WHERE id = $1", c.Group.ID)
	case c.GroupMember != nil && up:
		return w.addGroupMember(i, c.GroupMember)
	case c.GroupMember != nil:
		key := c.GroupMember.GroupID + " " + c.GroupMember.MembershipID
		return w.deleteBy(i, model.KindGroupMember, key, "DELETE FROM group_members WHERE group_id = $1 AND membership_id = $2",
			c.GroupMember.GroupID, c.GroupMember.MembershipID)
	case up:
		return w.upsertGroupAssignment(i, c.Assignment)
	default:
		return w.deleteBy(i, model.KindAssignment, c.Assignment.ID, "DELETE FROM group_role_assignments WHERE id = $1", c.Assignment.ID)
	}
}

func (w *writer) upsertGroup(i int, g *model.Group) error {
	const kind = model.KindGroup
	switch {
	case g.ID == "":
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	case g.Name == "":
		return problem(i, kind, g.ID, "name", model.CodeInvalid, "name is required")
	}
	var org string
	found, err := w.get(&org, "SELECT organization_id FROM groups WHERE id = $1", g.ID)
	if err != nil {
		return translate0(i, kind, g.ID, err)
	}
	if found && org != g.OrganizationID {
		return problem(i, kind, g.ID, "organization_id", model.CodeInvalid, "the group is in organization %q and cannot move", org)
	}
	if err := w.requireOrg(i, kind, g.ID, g.OrganizationID); err != nil {
		return err
	}
	_, err = w.exec(`INSERT INTO groups (id, organization_id, name, description) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, updated_at = now()
		WHERE (groups.name, groups.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)`,
		g.ID, g.OrganizationID, g.Name, g.Description)
	return translate0(i, kind, g.ID, err)
}

func (w *writer) addGroupMember(i int, gm *model.GroupMember) error {
	const kind = model.KindGroupMember
	key := gm.GroupID + " " + gm.MembershipID
	var gOrg, mOrg string
	found, err := w.get(&gOrg, "SELECT organization_id FROM groups WHERE id = $1", gm.GroupID)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	if !found {
		return problem(i, kind, key, "group_id", model.CodeUnknownReference, "unknown group %q", gm.GroupID)
	}
	found, err = w.get(&mOrg, "SELECT organization_id FROM organization_memberships WHERE id = $1", gm.MembershipID)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	switch {
	case !found:
		return problem(i, kind, key, "membership_id", model.CodeUnknownReference, "unknown membership %q", gm.MembershipID)
	case mOrg != gOrg:
		return problem(i, kind, key, "membership_id", model.CodeCrossOrganization,
			"membership %q is in organization %q but group %q is in %q", gm.MembershipID, mOrg, gm.GroupID, gOrg)
	}
	n, err := w.exec(`INSERT INTO group_members (group_id, membership_id, organization_id) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, gm.GroupID, gm.MembershipID, gOrg)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	if n == 0 {
		return problem(i, kind, key, "membership_id", model.CodeDuplicate, "membership %q is already a member of group %q", gm.MembershipID, gm.GroupID)
	}
	return nil
}

func (w *writer) upsertGroupAssignment(i int, a *model.Assignment) error {
	const kind = model.KindAssignment
	switch {
	case a.ID == "":
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	case a.MembershipID != "":
		return problem(i, kind, a.ID, "group_id", model.CodeInvalid, "an assignment names a membership or a group, not both")
	case a.ResourceID == "":
		return problem(i, kind, a.ID, "resource_id", model.CodeInvalid, "resource_id is required")
	case a.RoleSlug == "":
		return problem(i, kind, a.ID, "role", model.CodeInvalid, "role is required")
	}
	var gOrg string
	found, err := w.get(&gOrg, "SELECT organization_id FROM groups WHERE id = $1", a.GroupID)
	if err != nil {
		return translate0(i, kind, a.ID, err)
	}
	if !found {
		return problem(i, kind, a.ID, "group_id", model.CodeUnknownReference, "unknown group %q", a.GroupID)
	}
	roleID, err := w.assignmentRole(i, a, "group", a.GroupID, gOrg)
	if err != nil {
		return err
	}
	_, err = w.exec(`INSERT INTO group_role_assignments (id, group_id, role_id, resource_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET group_id = EXCLUDED.group_id, role_id = EXCLUDED.role_id,
			resource_id = EXCLUDED.resource_id, updated_at = now()
		WHERE (group_role_assignments.group_id, group_role_assignments.role_id, group_role_assignments.resource_id)
			IS DISTINCT FROM (EXCLUDED.group_id, EXCLUDED.role_id, EXCLUDED.resource_id)`,
		a.ID, a.GroupID, roleID, a.ResourceID)
	return translate0(i, kind, a.ID, err)
}
