package workosdb

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// ---- resource types ----

// selectResourceType leaves out the built-in organization type, which the
// API neither lists nor changes.
const selectResourceType = `SELECT t.slug, t.name, t.description, t.created_at, t.updated_at,
	coalesce((SELECT array_agg(p.parent_type ORDER BY p.parent_type COLLATE "C") FROM resource_type_parents p
	          WHERE p.resource_type = t.slug), '{}') AS parent_type_slugs
FROM resource_types t`

const notOrganizationType = "t.slug <> '" + model.OrganizationType + "'"

type typeRow struct {
	Slug        string         `db:"slug"`
	Name        string         `db:"name"`
	Description string         `db:"description"`
	Parents     pq.StringArray `db:"parent_type_slugs"`
	CreatedAt   time.Time      `db:"created_at"`
	UpdatedAt   time.Time      `db:"updated_at"`
}

func (r typeRow) resourceType() workos.ResourceType {
	return workos.ResourceType{Slug: r.Slug, Name: r.Name, Description: r.Description, ParentTypeSlugs: []string(r.Parents),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func resourceType(ctx context.Context, q sqlx.QueryerContext, slug string) (workos.ResourceType, error) {
	var row typeRow
	found, err := getOne(ctx, q, &row, selectResourceType+" WHERE "+notOrganizationType+" AND t.slug = $1", slug)
	if err == nil && !found {
		err = workos.NotFound("resource type", slug)
	}
	return row.resourceType(), err
}

// CreateResourceType creates a resource type.
func (s *Store) CreateResourceType(ctx context.Context, in workos.ResourceTypeInput) (t workos.ResourceType, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if err := claim(ctx, tx, workos.Conflict("resource type %q already exists", in.Slug),
			"SELECT 1 FROM resource_types WHERE slug = $1", in.Slug); err != nil {
			return err
		}
		if err := apply(tx, model.Change{Op: model.OpUpsert, ResourceType: &model.ResourceType{
			Slug: in.Slug, Name: in.Name, Description: in.Description, ParentTypes: nonNil(in.ParentTypeSlugs)}}); err != nil {
			return err
		}
		t, err = resourceType(ctx, tx.SQL(), in.Slug)
		return err
	})
	return t, rev, err
}

// GetResourceType returns resource type slug.
func (s *Store) GetResourceType(ctx context.Context, slug string) (workos.ResourceType, error) {
	return readOne(ctx, s, resourceType, slug)
}

// ListResourceTypes returns one page of resource types by slug.
func (s *Store) ListResourceTypes(ctx context.Context, opts workos.ListOptions) ([]workos.ResourceType, error) {
	q := listQuery{where: []string{notOrganizationType}}
	return readAll(ctx, s, typeRow.resourceType, q.sql(selectResourceType, "t.slug", opts), q.args...)
}

// UpdateResourceType changes resource type slug. Dropping a parent type
// that a resource of the type is still under is a conflict (move the
// resource first).
func (s *Store) UpdateResourceType(ctx context.Context, slug string, u workos.ResourceTypeUpdate) (t workos.ResourceType, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := resourceType(ctx, tx.SQL(), slug)
		if err != nil {
			return err
		}
		next := model.ResourceType{Slug: slug, Name: cur.Name, Description: cur.Description, ParentTypes: cur.ParentTypeSlugs}
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if u.ParentTypeSlugs != nil {
			next.ParentTypes = nonNil(*u.ParentTypeSlugs)
			var row struct {
				ID   string `db:"id"`
				Type string `db:"type"`
			}
			found, err := getOne(ctx, tx.SQL(), &row, `SELECT r.id, p.type FROM resources r JOIN resources p ON p.id = r.parent_id
				WHERE r.type = $1 AND NOT (p.type = ANY($2)) LIMIT 1`, slug, pq.Array(next.ParentTypes))
			if err != nil {
				return err
			}
			if found {
				return workos.Conflict("resource %s of type %q is under a %q; move it before removing that parent type", row.ID, slug, row.Type)
			}
		}
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, ResourceType: &next}, "resource_types", "slug", slug); err != nil {
			return err
		}
		t, err = resourceType(ctx, tx.SQL(), slug)
		return err
	})
	return t, rev, err
}

// DeleteResourceType deletes resource type slug: only a leaf type with no
// resources, permissions or roles.
func (s *Store) DeleteResourceType(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := resourceType(ctx, tx.SQL(), slug); err != nil {
			return err
		}
		var what string
		found, err := getOne(ctx, tx.SQL(), &what, `
			SELECT 'is a parent type of ' || resource_type FROM resource_type_parents WHERE parent_type = $1
			UNION ALL SELECT 'still has resources' FROM resources WHERE type = $1
			UNION ALL SELECT 'still has permission ' || slug FROM permissions WHERE resource_type = $1
			UNION ALL SELECT 'still has role ' || slug FROM roles WHERE resource_type = $1
			LIMIT 1`, slug)
		if err != nil {
			return err
		}
		if found {
			return workos.Conflict("resource type %q %s", slug, what)
		}
		return apply(tx, model.Change{Op: model.OpDelete, ResourceType: &model.ResourceType{Slug: slug}})
	})
}

// ---- permissions ----

const selectPermission = `SELECT id, slug, name, description, resource_type, created_at, updated_at FROM permissions`

type permissionRow struct {
	ID           string    `db:"id"`
	Slug         string    `db:"slug"`
	Name         string    `db:"name"`
	Description  string    `db:"description"`
	ResourceType string    `db:"resource_type"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

func (r permissionRow) permission() workos.Permission {
	return workos.Permission{ID: r.ID, Slug: r.Slug, Name: r.Name, Description: r.Description, ResourceTypeSlug: r.ResourceType,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func permission(ctx context.Context, q sqlx.QueryerContext, slug string) (workos.Permission, error) {
	var row permissionRow
	found, err := getOne(ctx, q, &row, selectPermission+" WHERE slug = $1", slug)
	if err == nil && !found {
		err = workos.NotFound("permission", slug)
	}
	return row.permission(), err
}

// CreatePermission creates a permission (its perm_ id is minted by the
// write path).
func (s *Store) CreatePermission(ctx context.Context, in workos.PermissionInput) (p workos.Permission, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if err := claim(ctx, tx, workos.Conflict("permission %q already exists", in.Slug),
			"SELECT 1 FROM permissions WHERE slug = $1", in.Slug); err != nil {
			return err
		}
		if err := apply(tx, model.Change{Op: model.OpUpsert, Permission: &model.Permission{
			Slug: in.Slug, Name: in.Name, Description: in.Description, ResourceType: in.ResourceTypeSlug}}); err != nil {
			return err
		}
		p, err = permission(ctx, tx.SQL(), in.Slug)
		return err
	})
	return p, rev, err
}

// GetPermission returns permission slug.
func (s *Store) GetPermission(ctx context.Context, slug string) (workos.Permission, error) {
	return readOne(ctx, s, permission, slug)
}

// GetPermissions returns the permissions among slugs that exist, in the
// order of slugs.
func (s *Store) GetPermissions(ctx context.Context, slugs []string) ([]workos.Permission, error) {
	return readInOrder(ctx, s, permissionRow.permission, selectPermission+" WHERE slug = ANY($1)", slugs, func(p workos.Permission) string { return p.Slug })
}

// ListPermissions returns one page of permissions by id.
func (s *Store) ListPermissions(ctx context.Context, opts workos.ListOptions) ([]workos.Permission, error) {
	var q listQuery
	return readAll(ctx, s, permissionRow.permission, q.sql(selectPermission, "id", opts), q.args...)
}

// UpdatePermission changes permission slug's name and description.
func (s *Store) UpdatePermission(ctx context.Context, slug string, u workos.PermissionUpdate) (p workos.Permission, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := permission(ctx, tx.SQL(), slug)
		if err != nil {
			return err
		}
		next := model.Permission{Slug: slug, Name: cur.Name, Description: cur.Description, ResourceType: cur.ResourceTypeSlug}
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Permission: &next}, "permissions", "slug", slug); err != nil {
			return err
		}
		p, err = permission(ctx, tx.SQL(), slug)
		return err
	})
	return p, rev, err
}

// DeletePermission deletes permission slug; the schema removes it from
// every role.
func (s *Store) DeletePermission(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := permission(ctx, tx.SQL(), slug); err != nil {
			return err
		}
		return apply(tx, model.Change{Op: model.OpDelete, Permission: &model.Permission{Slug: slug}})
	})
}

// ---- roles ----

const selectRole = `SELECT r.id, r.slug, r.name, r.description, r.resource_type, coalesce(r.organization_id, '') AS organization_id,
	r.created_at, r.updated_at,
	coalesce((SELECT array_agg(p.slug ORDER BY rp.position, p.slug) FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id
	          WHERE rp.role_id = r.id), '{}') AS permissions
FROM roles r`

type roleRow struct {
	ID             string         `db:"id"`
	Slug           string         `db:"slug"`
	Name           string         `db:"name"`
	Description    string         `db:"description"`
	ResourceType   string         `db:"resource_type"`
	OrganizationID string         `db:"organization_id"`
	Permissions    pq.StringArray `db:"permissions"`
	CreatedAt      time.Time      `db:"created_at"`
	UpdatedAt      time.Time      `db:"updated_at"`
}

func (r roleRow) role() workos.Role {
	return workos.Role{ID: r.ID, Slug: r.Slug, Name: r.Name, Description: r.Description, ResourceTypeSlug: r.ResourceType,
		OrganizationID: r.OrganizationID, Permissions: []string(r.Permissions), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// orgExists fails with ErrNotFound unless orgID is "" or exists.
func orgExists(ctx context.Context, q sqlx.QueryerContext, orgID string) error {
	if orgID == "" {
		return nil
	}
	_, err := organization(ctx, q, orgID)
	return err
}

// role returns the role slug of orgID ("" for an environment role); with
// fallback, an environment role stands in for a missing custom one.
func role(ctx context.Context, q sqlx.QueryerContext, orgID, slug string, fallback bool) (workos.Role, error) {
	if err := orgExists(ctx, q, orgID); err != nil {
		return workos.Role{}, err
	}
	cond := "r.organization_id IS NOT DISTINCT FROM nullif($2, '')"
	if fallback {
		cond = "(" + cond + " OR r.organization_id IS NULL)"
	}
	var row roleRow
	found, err := getOne(ctx, q, &row, selectRole+" WHERE r.slug = $1 AND "+cond+" ORDER BY r.organization_id NULLS LAST LIMIT 1", slug, orgID)
	switch {
	case err != nil:
		return workos.Role{}, err
	case !found && orgID != "" && !fallback:
		return workos.Role{}, workos.NotFound("organization role", slug)
	case !found:
		return workos.Role{}, workos.NotFound("role", slug)
	}
	return row.role(), nil
}

// CreateRole creates an environment role (orgID "") or a custom role of
// orgID.
func (s *Store) CreateRole(ctx context.Context, orgID string, in workos.RoleInput) (r workos.Role, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if err := orgExists(ctx, tx.SQL(), orgID); err != nil {
			return err
		}
		// Environment and custom role slugs may not clash.
		if err := claim(ctx, tx, workos.Conflict("role slug %q is already used", in.Slug),
			`SELECT 1 FROM roles WHERE slug = $1 AND (organization_id IS NULL OR $2 = '' OR organization_id = $2)`, in.Slug, orgID); err != nil {
			return err
		}
		if err := apply(tx, model.Change{Op: model.OpUpsert, Role: &model.Role{Slug: in.Slug, Name: in.Name, Description: in.Description,
			ResourceType: in.ResourceTypeSlug, OrganizationID: orgID, Permissions: []string{}}}); err != nil {
			return err
		}
		r, err = role(ctx, tx.SQL(), orgID, in.Slug, false)
		return err
	})
	return r, rev, err
}

// GetRole returns role slug: orgID's custom role, else the environment
// role.
func (s *Store) GetRole(ctx context.Context, orgID, slug string) (workos.Role, error) {
	return readOne(ctx, s, func(ctx context.Context, q sqlx.QueryerContext, slug string) (workos.Role, error) {
		return role(ctx, q, orgID, slug, true)
	}, slug)
}

// ListRoles returns the environment roles, then orgID's custom roles, each
// in priority order (migration 0013_role_priority).
func (s *Store) ListRoles(ctx context.Context, orgID string) (out []workos.Role, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		out, err = listRoles(ctx, q, orgID)
		return err
	})
	return out, err
}

func listRoles(ctx context.Context, q sqlx.QueryerContext, orgID string) ([]workos.Role, error) {
	if err := orgExists(ctx, q, orgID); err != nil {
		return nil, err
	}
	return selectRows(ctx, q, roleRow.role, selectRole+` WHERE r.organization_id IS NULL OR r.organization_id = nullif($1, '')
		ORDER BY r.organization_id NULLS FIRST, r.priority, r.id COLLATE "C"`, orgID)
}

// ReorderRoles gives the roles of the scope new priorities from
// role_priority_seq in the order of slugs.
func (s *Store) ReorderRoles(ctx context.Context, orgID string, slugs []string) (out []workos.Role, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		roles, err := listRoles(ctx, tx.SQL(), orgID)
		if err != nil {
			return err
		}
		roles = slices.DeleteFunc(roles, func(r workos.Role) bool { return r.OrganizationID != orgID })
		if err := workos.CheckOrder(roles, slugs); err != nil {
			return err
		}
		for _, slug := range slugs {
			if _, err := tx.SQL().ExecContext(ctx, `UPDATE roles SET priority = nextval('role_priority_seq')
				WHERE slug = $1 AND organization_id IS NOT DISTINCT FROM nullif($2, '')`, slug, orgID); err != nil {
				return err
			}
		}
		out, err = listRoles(ctx, tx.SQL(), orgID)
		return err
	})
	return out, rev, err
}

// DefaultRole returns the environment role marked is_default.
func (s *Store) DefaultRole(ctx context.Context) (slug string, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		_, err := getOne(ctx, q, &slug, "SELECT slug FROM roles WHERE is_default")
		return err
	})
	return slug, err
}

// SetDefaultRole moves the is_default mark to environment role slug.
func (s *Store) SetDefaultRole(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if slug != "" {
			r, err := role(ctx, tx.SQL(), "", slug, false)
			switch {
			case errors.Is(err, workos.ErrNotFound):
				return unknown("role_slug", "environment role %q does not exist", slug)
			case err != nil:
				return err
			case r.ResourceTypeSlug != model.OrganizationType:
				return workos.Invalid("role_slug", model.CodeInvalid,
					"role %q is a %s role; the default role must be an organization-level role", slug, r.ResourceTypeSlug)
			}
		}
		return tx.SetDefaultRole(ctx, slug)
	})
}

// UpdateRole changes the role slug of orgID (only a custom role when orgID
// is not "").
func (s *Store) UpdateRole(ctx context.Context, orgID, slug string, u workos.RoleUpdate) (r workos.Role, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := role(ctx, tx.SQL(), orgID, slug, false)
		if err != nil {
			return err
		}
		next := model.Role{Slug: slug, Name: cur.Name, Description: cur.Description, ResourceType: cur.ResourceTypeSlug,
			OrganizationID: orgID, Permissions: slices.Clone(cur.Permissions)}
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if u.SetPermissions != nil {
			next.Permissions = slices.Clone(*u.SetPermissions)
		}
		for _, p := range u.AddPermissions {
			if !slices.Contains(next.Permissions, p) {
				next.Permissions = append(next.Permissions, p)
			}
		}
		for _, p := range u.RemovePermissions {
			if !slices.Contains(next.Permissions, p) {
				return workos.NotFound("permission of role "+slug, p)
			}
			next.Permissions = slices.DeleteFunc(next.Permissions, func(x string) bool { return x == p })
		}
		next.Permissions = nonNil(next.Permissions)
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Role: &next}, "roles", "id", cur.ID); err != nil {
			return err
		}
		r, err = role(ctx, tx.SQL(), orgID, slug, false)
		return err
	})
	return r, rev, err
}

// DeleteRole deletes the role as UpdateRole names it; the schema removes
// its assignments and membership roles, and the memberships it leaves
// without a role get fallback.
func (s *Store) DeleteRole(ctx context.Context, orgID, slug, fallback string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		r, err := role(ctx, tx.SQL(), orgID, slug, false)
		if err != nil {
			return err
		}
		// Checked here, in the transaction, so that a concurrent
		// SetDefaultRole of this role cannot slip in between.
		if err := claim(ctx, tx, workos.Conflict("role %q is the default role, which every membership falls back to: make another role the default first", slug),
			"SELECT 1 FROM roles WHERE id = $1 AND is_default", r.ID); err != nil {
			return err
		}
		var orphans []string
		if fallback != "" {
			if err := sqlx.SelectContext(ctx, tx.SQL(), &orphans, `SELECT mr.membership_id FROM membership_roles mr
				WHERE mr.role_id = $1 AND NOT EXISTS (SELECT 1 FROM membership_roles o WHERE o.membership_id = mr.membership_id AND o.role_id <> $1)
				ORDER BY 1`, r.ID); err != nil {
				return err
			}
		}
		if err := apply(tx, model.Change{Op: model.OpDelete, Role: &model.Role{Slug: slug, OrganizationID: orgID}}); err != nil {
			return err
		}
		for _, id := range orphans {
			m, err := membership(ctx, tx.SQL(), id)
			if err != nil {
				return err
			}
			if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: id, UserID: m.UserID,
				OrganizationID: m.OrganizationID, Status: m.Status, RoleSlugs: []string{fallback}}}, "organization_memberships", "id", id); err != nil {
				return err
			}
		}
		return nil
	})
}
