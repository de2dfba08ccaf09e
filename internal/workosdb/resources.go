package workosdb

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// ---- resources ----

// selectResource reads resources with their API parent: "" when the parent
// is the organization root (and for the root itself).
const selectResource = `SELECT r.id, r.external_id, r.name, r.description, r.type, r.organization_id,
	CASE WHEN p.type = '` + model.OrganizationType + `' THEN '' ELSE coalesce(r.parent_id, '') END AS parent_id,
	r.attributes, r.created_at, r.updated_at
FROM resources r LEFT JOIN resources p ON p.id = r.parent_id`

type resourceRow struct {
	ID             string                    `db:"id"`
	ExternalID     string                    `db:"external_id"`
	Name           string                    `db:"name"`
	Description    string                    `db:"description"`
	Type           string                    `db:"type"`
	OrganizationID string                    `db:"organization_id"`
	ParentID       string                    `db:"parent_id"`
	Attributes     postgres.AttributesColumn `db:"attributes"`
	CreatedAt      time.Time                 `db:"created_at"`
	UpdatedAt      time.Time                 `db:"updated_at"`
}

func (r resourceRow) resource() workos.Resource {
	return workos.Resource{ID: r.ID, ExternalID: r.ExternalID, Name: r.Name, Description: r.Description, TypeSlug: r.Type,
		OrganizationID: r.OrganizationID, ParentID: r.ParentID, Attributes: model.Attributes(r.Attributes),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// resolve finds the resource ref names, organization roots included (a
// root is of type organization with the organization id as external id).
func resolve(ctx context.Context, q sqlx.QueryerContext, ref workos.ResourceRef) (workos.Resource, bool, error) {
	var row resourceRow
	var found bool
	var err error
	if ref.ID != "" {
		found, err = getOne(ctx, q, &row, selectResource+" WHERE r.id = $1", ref.ID)
	} else {
		found, err = getOne(ctx, q, &row, selectResource+" WHERE r.organization_id = $1 AND r.type = $2 AND r.external_id = $3",
			ref.OrganizationID, ref.TypeSlug, ref.ExternalID)
	}
	return row.resource(), found, err
}

func resource(ctx context.Context, q sqlx.QueryerContext, ref workos.ResourceRef) (workos.Resource, error) {
	r, found, err := resolve(ctx, q, ref)
	if err == nil && !found {
		err = workos.NotFound("resource", ref.String())
	}
	return r, err
}

// parentID resolves the parent reference of a resource of organization org
// to the model's ParentID ("" for the root). The write path checks the
// rest (organization, type, cycles, depth).
func parentID(ctx context.Context, q sqlx.QueryerContext, ref workos.ResourceRef, org string) (string, error) {
	if ref.IsZero() {
		return "", nil
	}
	if ref.ID == "" {
		ref.OrganizationID = org
	}
	p, found, err := resolve(ctx, q, ref)
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", unknown("parent_resource_id", "parent resource %s does not exist", ref)
	case p.TypeSlug != model.OrganizationType:
		return p.ID, nil
	case p.OrganizationID != org:
		return "", workos.Invalid("parent_resource_id", model.CodeCrossOrganization, "parent %s is in organization %q, not %q", ref, p.OrganizationID, org)
	}
	return "", nil
}

// CreateResource creates a resource (by default under the organization
// root).
func (s *Store) CreateResource(ctx context.Context, in workos.ResourceInput) (r workos.Resource, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if err := orgReferenced(ctx, tx.SQL(), in.OrganizationID); err != nil {
			return err
		}
		parent, err := parentID(ctx, tx.SQL(), in.Parent, in.OrganizationID)
		if err != nil {
			return err
		}
		var other string
		found, err := getOne(ctx, tx.SQL(), &other, "SELECT id FROM resources WHERE organization_id = $1 AND type = $2 AND external_id = $3",
			in.OrganizationID, in.TypeSlug, in.ExternalID)
		if err != nil {
			return err
		}
		if found {
			return workos.Conflict("resource %s of type %q with external_id %q already exists in organization %q", other, in.TypeSlug, in.ExternalID, in.OrganizationID)
		}
		id := model.NewID(workos.PrefixResource)
		if err := apply(tx, model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: id, OrganizationID: in.OrganizationID,
			Type: in.TypeSlug, ExternalID: in.ExternalID, Name: in.Name, Description: in.Description, ParentID: parent,
			Attributes: in.Attributes}}); err != nil {
			return err
		}
		r, err = resource(ctx, tx.SQL(), workos.ResourceRef{ID: id})
		return err
	})
	return r, rev, err
}

// GetResource returns the resource ref names.
func (s *Store) GetResource(ctx context.Context, ref workos.ResourceRef) (workos.Resource, error) {
	return readOne(ctx, s, resource, ref)
}

// GetResources returns the resources among ids that exist, in the order of
// ids.
func (s *Store) GetResources(ctx context.Context, ids []string) ([]workos.Resource, error) {
	return readInOrder(ctx, s, resourceRow.resource, selectResource+" WHERE r.id = ANY($1)", ids, func(r workos.Resource) string { return r.ID })
}

// ListResources returns one page of resources by id; roots are never
// listed.
func (s *Store) ListResources(ctx context.Context, f workos.ResourceFilter, opts workos.ListOptions) ([]workos.Resource, error) {
	q := listQuery{where: []string{"r.type <> '" + model.OrganizationType + "'"}}
	if f.OrganizationID != "" {
		q.and("r.organization_id = " + q.arg(f.OrganizationID))
	}
	if f.TypeSlug != "" {
		q.and("r.type = " + q.arg(f.TypeSlug))
	}
	if f.ParentID != "" {
		q.and("r.parent_id = " + q.arg(f.ParentID))
	}
	if f.ParentTypeSlug != "" {
		q.and(fmt.Sprintf("p.type = %s AND p.external_id = %s", q.arg(f.ParentTypeSlug), q.arg(f.ParentExternalID)))
	}
	if f.Search != "" {
		// strpos, not LIKE: the search text is matched literally.
		q.and("strpos(lower(r.name), lower(" + q.arg(f.Search) + ")) > 0")
	}
	return readAll(ctx, s, resourceRow.resource, q.sql(selectResource, "r.id", opts), q.args...)
}

// UpdateResource changes (and re-parents) the resource ref names.
func (s *Store) UpdateResource(ctx context.Context, ref workos.ResourceRef, u workos.ResourceUpdate) (r workos.Resource, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := resource(ctx, tx.SQL(), ref)
		if err != nil {
			return err
		}
		if cur.TypeSlug == model.OrganizationType {
			return workos.Invalid("id", model.CodeInvalid, "an organization's root resource cannot be changed")
		}
		next := model.Resource{ID: cur.ID, OrganizationID: cur.OrganizationID, Type: cur.TypeSlug, ExternalID: cur.ExternalID,
			Name: cur.Name, Description: cur.Description, ParentID: cur.ParentID, Attributes: cur.Attributes}
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if u.Parent != nil {
			if next.ParentID, err = parentID(ctx, tx.SQL(), *u.Parent, cur.OrganizationID); err != nil {
				return err
			}
		}
		if u.Attributes != nil {
			next.Attributes = *u.Attributes
		}
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Resource: &next}, "resources", "id", cur.ID); err != nil {
			return err
		}
		r, err = resource(ctx, tx.SQL(), workos.ResourceRef{ID: cur.ID})
		return err
	})
	return r, rev, err
}

// DeleteResource deletes the resource ref names; with cascade, its subtree
// and every assignment on it too.
func (s *Store) DeleteResource(ctx context.Context, ref workos.ResourceRef, cascade bool) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := resource(ctx, tx.SQL(), ref)
		if err != nil {
			return err
		}
		if cur.TypeSlug == model.OrganizationType {
			return workos.Invalid("id", model.CodeInvalid, "an organization's root resource cannot be deleted; delete the organization")
		}
		var opts []postgres.WriteOption
		if cascade {
			opts = append(opts, postgres.CascadeDelete(cur.ID))
		}
		return apply(tx, model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: cur.ID}}, opts...)
	})
}

// ---- role assignments ----

const selectAssignment = `SELECT a.id, a.membership_id, a.role_slug, a.resource_id, r.external_id AS resource_external_id,
	r.type AS resource_type, a.group_assignment_id, a.created_at, a.updated_at
FROM (SELECT id, membership_id, role_slug, resource_id, '' AS group_assignment_id, created_at, updated_at FROM role_assignments) a
JOIN resources r ON r.id = a.resource_id`

// selectMembershipAssignment is selectAssignment with the roles memberships
// hold through their groups: one row per group member and group role
// assignment, under the group role assignment's id (unique among one
// membership's rows, not among all).
const selectMembershipAssignment = `SELECT a.id, a.membership_id, a.role_slug, a.resource_id, r.external_id AS resource_external_id,
	r.type AS resource_type, a.group_assignment_id, a.created_at, a.updated_at
FROM (SELECT id, membership_id, role_slug, resource_id, '' AS group_assignment_id, created_at, updated_at FROM role_assignments
      UNION ALL
      SELECT g.id, gm.membership_id, g.role_slug, g.resource_id, g.id, g.created_at, g.updated_at
      FROM group_role_assignments g JOIN group_members gm ON gm.group_id = g.group_id) a
JOIN resources r ON r.id = a.resource_id`

type assignmentRow struct {
	ID                 string    `db:"id"`
	MembershipID       string    `db:"membership_id"`
	RoleSlug           string    `db:"role_slug"`
	ResourceID         string    `db:"resource_id"`
	ResourceExternalID string    `db:"resource_external_id"`
	ResourceType       string    `db:"resource_type"`
	GroupAssignmentID  string    `db:"group_assignment_id"`
	CreatedAt          time.Time `db:"created_at"`
	UpdatedAt          time.Time `db:"updated_at"`
}

func (r assignmentRow) assignment() workos.Assignment {
	return workos.Assignment{ID: r.ID, MembershipID: r.MembershipID, RoleSlug: r.RoleSlug, ResourceID: r.ResourceID,
		ResourceExternalID: r.ResourceExternalID, ResourceTypeSlug: r.ResourceType, GroupAssignmentID: r.GroupAssignmentID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// assignmentTarget resolves the membership and the resource of an
// assignment request: an unknown membership is ErrNotFound (it is the
// path), an unknown resource a validation problem (it is the body).
func assignmentTarget(ctx context.Context, q sqlx.QueryerContext, om string, ref workos.ResourceRef) (workos.Resource, error) {
	m, err := membership(ctx, q, om)
	if err != nil {
		return workos.Resource{}, err
	}
	if ref.ID == "" {
		ref.OrganizationID = m.OrganizationID
	}
	res, found, err := resolve(ctx, q, ref)
	if err == nil && !found {
		err = unknown("resource_id", "resource %s does not exist", ref)
	}
	return res, err
}

// CreateAssignment gives membership om role roleSlug on the resource ref
// names.
func (s *Store) CreateAssignment(ctx context.Context, om, roleSlug string, ref workos.ResourceRef) (a workos.Assignment, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		res, err := assignmentTarget(ctx, tx.SQL(), om, ref)
		if err != nil {
			return err
		}
		if err := claim(ctx, tx, workos.Conflict("membership %s already has role %q on resource %s", om, roleSlug, res.ID),
			"SELECT 1 FROM role_assignments WHERE membership_id = $1 AND role_slug = $2 AND resource_id = $3", om, roleSlug, res.ID); err != nil {
			return err
		}
		id := model.NewID(workos.PrefixAssignment)
		if err := apply(tx, model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{
			ID: id, MembershipID: om, RoleSlug: roleSlug, ResourceID: res.ID}}); err != nil {
			return err
		}
		var row assignmentRow
		if err := sqlx.GetContext(ctx, tx.SQL(), &row, selectAssignment+" WHERE a.id = $1", id); err != nil {
			return err
		}
		a = row.assignment()
		return nil
	})
	return a, rev, err
}

// ListAssignments returns one page of assignments by id.
func (s *Store) ListAssignments(ctx context.Context, f workos.AssignmentFilter, opts workos.ListOptions) (out []workos.Assignment, err error) {
	err = s.read(ctx, func(tx *sqlx.Tx) error {
		var q listQuery
		base := selectAssignment
		if f.MembershipID != "" {
			if _, err := membership(ctx, tx, f.MembershipID); err != nil {
				return err
			}
			base = selectMembershipAssignment
			q.and("a.membership_id = " + q.arg(f.MembershipID))
		}
		if !f.Resource.IsZero() {
			res, err := resource(ctx, tx, f.Resource)
			if err != nil {
				return err
			}
			q.and("a.resource_id = " + q.arg(res.ID))
		}
		if f.ResourceID != "" {
			q.and("a.resource_id = " + q.arg(f.ResourceID))
		}
		if f.ResourceExternalID != "" {
			q.and("r.external_id = " + q.arg(f.ResourceExternalID))
		}
		if f.ResourceTypeSlug != "" {
			q.and("r.type = " + q.arg(f.ResourceTypeSlug))
		}
		if f.RoleSlug != "" {
			q.and("a.role_slug = " + q.arg(f.RoleSlug))
		}
		out, err = selectRows(ctx, tx, assignmentRow.assignment, q.sql(base, "a.id", opts), q.args...)
		return err
	})
	return out, err
}

// DeleteAssignment deletes assignment id of membership om.
func (s *Store) DeleteAssignment(ctx context.Context, om, id string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		ok, err := exists(ctx, tx.SQL(), "SELECT 1 FROM role_assignments WHERE id = $1 AND membership_id = $2", id, om)
		if err != nil {
			return err
		}
		if !ok {
			return workos.NotFound("role assignment", id)
		}
		return apply(tx, model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: id}})
	})
}

// DeleteAssignmentByRole deletes om's assignment of roleSlug on the
// resource ref names.
func (s *Store) DeleteAssignmentByRole(ctx context.Context, om, roleSlug string, ref workos.ResourceRef) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		res, err := assignmentTarget(ctx, tx.SQL(), om, ref)
		if err != nil {
			return err
		}
		var id string
		found, err := getOne(ctx, tx.SQL(), &id, "SELECT id FROM role_assignments WHERE membership_id = $1 AND role_slug = $2 AND resource_id = $3",
			om, roleSlug, res.ID)
		if err != nil {
			return err
		}
		if !found {
			return workos.NotFound("role assignment", roleSlug+" on "+res.ID)
		}
		return apply(tx, model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: id}})
	})
}
