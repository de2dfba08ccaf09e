package workosdb

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// ---- groups ----

const selectGroup = `SELECT g.id, g.organization_id, g.name, g.description, g.created_at, g.updated_at FROM groups g`

type groupRow struct {
	ID             string    `db:"id"`
	OrganizationID string    `db:"organization_id"`
	Name           string    `db:"name"`
	Description    string    `db:"description"`
	CreatedAt      time.Time `db:"created_at"`
	UpdatedAt      time.Time `db:"updated_at"`
}

func (r groupRow) group() workos.Group {
	return workos.Group{ID: r.ID, OrganizationID: r.OrganizationID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// group returns group id of organization org; org "" matches any
// organization (the /authorization/groups routes name the group alone).
func group(ctx context.Context, q sqlx.QueryerContext, org, id string) (workos.Group, error) {
	var row groupRow
	found, err := getOne(ctx, q, &row, selectGroup+" WHERE g.id = $1 AND ($2 = '' OR g.organization_id = $2)", id, org)
	if err == nil && !found {
		err = workos.NotFound("group", id)
	}
	return row.group(), err
}

// CreateGroup creates a group in organization org.
func (s *Store) CreateGroup(ctx context.Context, org string, in workos.GroupInput) (g workos.Group, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := organization(ctx, tx.SQL(), org); err != nil {
			return err
		}
		id := model.NewID(workos.PrefixGroup)
		if err := apply(tx, model.Change{Op: model.OpUpsert, Group: &model.Group{ID: id, OrganizationID: org,
			Name: in.Name, Description: in.Description}}); err != nil {
			return err
		}
		g, err = group(ctx, tx.SQL(), org, id)
		return err
	})
	return g, rev, err
}

// GetGroup returns group id of organization org.
func (s *Store) GetGroup(ctx context.Context, org, id string) (g workos.Group, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		g, err = group(ctx, q, org, id)
		return err
	})
	return g, err
}

// ListGroups returns one page of org's groups by id.
func (s *Store) ListGroups(ctx context.Context, org string, opts workos.ListOptions) (out []workos.Group, err error) {
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		if _, err := organization(ctx, tx, org); err != nil {
			return err
		}
		var q listQuery
		q.and("g.organization_id = " + q.arg(org))
		out, err = selectRows(ctx, tx, groupRow.group, q.sql(selectGroup, "g.id", opts), q.args...)
		return err
	})
	return out, err
}

// UpdateGroup changes group id's name or description.
func (s *Store) UpdateGroup(ctx context.Context, org, id string, u workos.GroupUpdate) (g workos.Group, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := group(ctx, tx.SQL(), org, id)
		if err != nil {
			return err
		}
		next := model.Group{ID: id, OrganizationID: cur.OrganizationID, Name: cur.Name, Description: cur.Description}
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Group: &next}, "groups", "id", id); err != nil {
			return err
		}
		g, err = group(ctx, tx.SQL(), org, id)
		return err
	})
	return g, rev, err
}

// DeleteGroup deletes group id with its members and role assignments.
func (s *Store) DeleteGroup(ctx context.Context, org, id string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := group(ctx, tx.SQL(), org, id); err != nil {
			return err
		}
		return apply(tx, model.Change{Op: model.OpDelete, Group: &model.Group{ID: id}})
	})
}

// ---- group members ----

// AddGroupMember makes membership om a member of group id.
func (s *Store) AddGroupMember(ctx context.Context, org, id, om string) (g workos.Group, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if g, err = group(ctx, tx.SQL(), org, id); err != nil {
			return err
		}
		return apply(tx, model.Change{Op: model.OpUpsert, GroupMember: &model.GroupMember{GroupID: id, MembershipID: om}})
	})
	return g, rev, err
}

// RemoveGroupMember removes membership om from group id.
func (s *Store) RemoveGroupMember(ctx context.Context, org, id, om string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := group(ctx, tx.SQL(), org, id); err != nil {
			return err
		}
		ok, err := exists(ctx, tx.SQL(), "SELECT 1 FROM group_members WHERE group_id = $1 AND membership_id = $2", id, om)
		if err != nil {
			return err
		}
		if !ok {
			return workos.NotFound("member of group "+id, om)
		}
		return apply(tx, model.Change{Op: model.OpDelete, GroupMember: &model.GroupMember{GroupID: id, MembershipID: om}})
	})
}

// ListGroupMembers returns one page of group id's members by membership id.
func (s *Store) ListGroupMembers(ctx context.Context, org, id string, opts workos.ListOptions) (out []workos.Membership, err error) {
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		if _, err := group(ctx, tx, org, id); err != nil {
			return err
		}
		var q listQuery
		q.and("gm.group_id = " + q.arg(id))
		out, err = selectRows(ctx, tx, membershipRow.membership,
			q.sql(selectMembership+" JOIN group_members gm ON gm.membership_id = m.id", "m.id", opts), q.args...)
		return err
	})
	return out, err
}

// ListMembershipGroups returns one page of the groups of membership om.
func (s *Store) ListMembershipGroups(ctx context.Context, om string, opts workos.ListOptions) (out []workos.Group, err error) {
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		if _, err := membership(ctx, tx, om); err != nil {
			return err
		}
		var q listQuery
		q.and("gm.membership_id = " + q.arg(om))
		out, err = selectRows(ctx, tx, groupRow.group,
			q.sql(selectGroup+" JOIN group_members gm ON gm.group_id = g.id", "g.id", opts), q.args...)
		return err
	})
	return out, err
}

// ---- group role assignments ----

const selectGroupAssignment = `SELECT a.id, a.group_id, a.role_slug, a.resource_id, r.external_id AS resource_external_id,
	r.type AS resource_type, a.created_at, a.updated_at
FROM group_role_assignments a JOIN resources r ON r.id = a.resource_id`

type groupAssignmentRow struct {
	ID                 string    `db:"id"`
	GroupID            string    `db:"group_id"`
	RoleSlug           string    `db:"role_slug"`
	ResourceID         string    `db:"resource_id"`
	ResourceExternalID string    `db:"resource_external_id"`
	ResourceType       string    `db:"resource_type"`
	CreatedAt          time.Time `db:"created_at"`
	UpdatedAt          time.Time `db:"updated_at"`
}

func (r groupAssignmentRow) assignment() workos.GroupAssignment {
	return workos.GroupAssignment{ID: r.ID, GroupID: r.GroupID, RoleSlug: r.RoleSlug, ResourceID: r.ResourceID,
		ResourceExternalID: r.ResourceExternalID, ResourceTypeSlug: r.ResourceType, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// groupTarget resolves the resource of a group assignment request in the
// group's organization org: the organization's root when in names none.
// An unknown resource is a validation problem (it is the body).
func groupTarget(ctx context.Context, q sqlx.QueryerContext, org string, in workos.GroupAssignmentInput) (string, error) {
	ref := in.Target(org)
	res, found, err := resolve(ctx, q, ref)
	if err == nil && !found {
		err = unknown("resource_id", "resource %s does not exist", ref)
	}
	return res.ID, err
}

// groupAssignmentID returns the id of the group's assignment of role on
// resource, found false when there is none.
func groupAssignmentID(ctx context.Context, q sqlx.QueryerContext, groupID, role, resource string) (id string, found bool, err error) {
	found, err = getOne(ctx, q, &id, "SELECT id FROM group_role_assignments WHERE group_id = $1 AND role_slug = $2 AND resource_id = $3",
		groupID, role, resource)
	return id, found, err
}

// assignGroup gives group g role on resource under a new id.
func assignGroup(tx *postgres.Tx, g, role, resource string) (string, error) {
	id := model.NewID(workos.PrefixGroupAssignment)
	return id, apply(tx, model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: id, GroupID: g, RoleSlug: role, ResourceID: resource}})
}

// unassignGroup deletes assignment id of group g.
func unassignGroup(tx *postgres.Tx, g, id string) error {
	return apply(tx, model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: id, GroupID: g}})
}

func groupAssignments(ctx context.Context, q sqlx.QueryerContext, groupID string, opts workos.ListOptions) ([]workos.GroupAssignment, error) {
	var lq listQuery
	lq.and("a.group_id = " + lq.arg(groupID))
	return selectRows(ctx, q, groupAssignmentRow.assignment, lq.sql(selectGroupAssignment, "a.id", opts), lq.args...)
}

// CreateGroupAssignment gives group id a role on a resource.
func (s *Store) CreateGroupAssignment(ctx context.Context, id string, in workos.GroupAssignmentInput) (a workos.GroupAssignment, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		g, err := group(ctx, tx.SQL(), "", id)
		if err != nil {
			return err
		}
		res, err := groupTarget(ctx, tx.SQL(), g.OrganizationID, in)
		if err != nil {
			return err
		}
		if _, dup, err := groupAssignmentID(ctx, tx.SQL(), id, in.RoleSlug, res); err != nil || dup {
			if err == nil {
				err = workos.Conflict("group %s already has role %q on resource %s", id, in.RoleSlug, res)
			}
			return err
		}
		aid, err := assignGroup(tx, id, in.RoleSlug, res)
		if err != nil {
			return err
		}
		var row groupAssignmentRow
		if err := sqlx.GetContext(ctx, tx.SQL(), &row, selectGroupAssignment+" WHERE a.id = $1", aid); err != nil {
			return err
		}
		a = row.assignment()
		return nil
	})
	return a, rev, err
}

// GetGroupAssignment returns assignment aid of group id.
func (s *Store) GetGroupAssignment(ctx context.Context, id, aid string) (a workos.GroupAssignment, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		if _, err := group(ctx, q, "", id); err != nil {
			return err
		}
		var row groupAssignmentRow
		found, err := getOne(ctx, q, &row, selectGroupAssignment+" WHERE a.id = $1 AND a.group_id = $2", aid, id)
		if err == nil && !found {
			err = workos.NotFound("group role assignment", aid)
		}
		a = row.assignment()
		return err
	})
	return a, err
}

// ListGroupAssignments returns one page of group id's assignments by id.
func (s *Store) ListGroupAssignments(ctx context.Context, id string, opts workos.ListOptions) (out []workos.GroupAssignment, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		if _, err := group(ctx, q, "", id); err != nil {
			return err
		}
		out, err = groupAssignments(ctx, q, id, opts)
		return err
	})
	return out, err
}

// ReplaceGroupAssignments makes group id's assignments exactly in.
func (s *Store) ReplaceGroupAssignments(ctx context.Context, id string, in []workos.GroupAssignmentInput) (out []workos.GroupAssignment, rev int64, err error) {
	type key struct{ role, resource string }
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		g, err := group(ctx, tx.SQL(), "", id)
		if err != nil {
			return err
		}
		want := map[key]bool{}
		var order []key
		for _, e := range in {
			res, err := groupTarget(ctx, tx.SQL(), g.OrganizationID, e)
			if err != nil {
				return err
			}
			if k := (key{e.RoleSlug, res}); !want[k] {
				want[k] = true
				order = append(order, k)
			}
		}
		cur, err := groupAssignments(ctx, tx.SQL(), id, workos.ListOptions{})
		if err != nil {
			return err
		}
		have := map[key]bool{}
		for _, a := range cur {
			k := key{a.RoleSlug, a.ResourceID}
			have[k] = true
			if !want[k] {
				if err := unassignGroup(tx, id, a.ID); err != nil {
					return err
				}
			}
		}
		for _, k := range order {
			if !have[k] {
				if _, err := assignGroup(tx, id, k.role, k.resource); err != nil {
					return err
				}
			}
		}
		out, err = groupAssignments(ctx, tx.SQL(), id, workos.ListOptions{})
		return err
	})
	return out, rev, err
}

// DeleteGroupAssignment deletes assignment aid of group id.
func (s *Store) DeleteGroupAssignment(ctx context.Context, id, aid string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := group(ctx, tx.SQL(), "", id); err != nil {
			return err
		}
		ok, err := exists(ctx, tx.SQL(), "SELECT 1 FROM group_role_assignments WHERE id = $1 AND group_id = $2", aid, id)
		if err != nil {
			return err
		}
		if !ok {
			return workos.NotFound("group role assignment", aid)
		}
		return unassignGroup(tx, id, aid)
	})
}

// DeleteGroupAssignmentByRole deletes group id's assignment of the role on
// the resource in names.
func (s *Store) DeleteGroupAssignmentByRole(ctx context.Context, id string, in workos.GroupAssignmentInput) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		g, err := group(ctx, tx.SQL(), "", id)
		if err != nil {
			return err
		}
		res, err := groupTarget(ctx, tx.SQL(), g.OrganizationID, in)
		if err != nil {
			return err
		}
		aid, found, err := groupAssignmentID(ctx, tx.SQL(), id, in.RoleSlug, res)
		if err != nil {
			return err
		}
		if !found {
			return workos.NotFound("group role assignment", in.RoleSlug+" on "+res)
		}
		return unassignGroup(tx, id, aid)
	})
}
