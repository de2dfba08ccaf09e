package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// WriteOption adjusts a Write.
type WriteOption func(*writeOptions)

type writeOptions struct {
	cascade map[string]bool
}

// CascadeDelete lets the batch's deletes of the named resources also delete
// their subtrees and every assignment on them. Without it, deleting a
// resource that has children or assignments fails with CodeHasDependents.
func CascadeDelete(resourceIDs ...string) WriteOption {
	return func(o *writeOptions) {
		for _, id := range resourceIDs {
			o.cascade[id] = true
		}
	}
}

// Write applies changes, in order, in one database transaction, and returns
// the revision the transaction produced (the head revision when nothing
// changed). Each change is validated against the data as the earlier
// changes left it: ids and keys present, references exist, parent type
// allowed, same organization, no cycle, depth at most the Store's MaxDepth,
// a role's permissions of its type or a descendant type, an assignment's
// role of the resource's type, a membership's roles of the organization
// type, slugs and resource types immutable, attributes within
// model.CheckAttributes. A violation returns a
// *ValidationError and nothing is written. The checks hold at commit,
// whatever concurrent writes do: the transaction is SERIALIZABLE and is run
// again when it conflicts with one (see WriteTx and the package doc).
//
// Upserts carry whole state: a membership's RoleSlugs and a role's
// Permissions replace the stored ones (and keep their order), and so do a
// resource's or organization's Attributes (nil clears them). Deletes need
// only the key (ID, or Slug and OrganizationID for a role). Resource ids
// are required; permission and role ids (perm_…, role_…) are generated.
func (s *Store) Write(ctx context.Context, changes []model.Change, opts ...WriteOption) (int64, error) {
	rev, err := s.WriteTx(ctx, func(tx *Tx) error { return tx.Apply(changes, opts...) })
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return 0, ve
		}
		return 0, fmt.Errorf("postgres: write: %w", err)
	}
	return rev, nil
}

// Tx is a write transaction of WriteTx. It is not safe for concurrent use
// and is valid only until fn returns.
type Tx struct {
	w *writer
	n int // changes applied so far: the Index of the next problem
}

// Apply validates and applies changes as Write does, inside the
// transaction. A *ValidationError leaves the transaction usable only for
// returning it: the caller should return the error so that WriteTx rolls
// back. Indexes in problems count every change applied in the transaction.
// opts (CascadeDelete) hold for this and every later Apply of the
// transaction.
func (t *Tx) Apply(changes []model.Change, opts ...WriteOption) error {
	for _, opt := range opts {
		opt(&t.w.opts)
	}
	for _, c := range changes {
		if err := t.w.apply(t.n, c); err != nil {
			return err
		}
		t.n++
	}
	return nil
}

// SQL returns the underlying transaction, for reads in the same snapshot as
// the writes and for the columns the data model does not carry (external
// ids, metadata, timestamps). Relationship data must be changed with Apply
// only, so that it is validated; the caller must not commit or roll back.
func (t *Tx) SQL() *sqlx.Tx { return t.w.tx }

// SetDefaultRole makes environment role slug the environment's default
// role ("": none; migration 0013_role_priority). The role must exist and be
// of resource type organization, else the database refuses it.
func (t *Tx) SetDefaultRole(ctx context.Context, slug string) error {
	return setDefaultRole(ctx, t.w.tx, slug)
}

func setDefaultRole(ctx context.Context, tx *sqlx.Tx, slug string) error {
	// Two statements: the unique index on the mark is checked row by row,
	// so moving it in one UPDATE fails when the new row comes first.
	for _, q := range []string{
		`UPDATE roles SET is_default = false WHERE is_default AND NOT (slug = $1 AND organization_id IS NULL)`,
		`UPDATE roles SET is_default = true WHERE slug = $1 AND organization_id IS NULL AND NOT is_default`,
	} {
		if _, err := tx.ExecContext(ctx, q, slug); err != nil {
			return fmt.Errorf("set the default role %q: %w", slug, err)
		}
	}
	return nil
}

// defaultRole returns the environment's default role, "" when none is set.
func defaultRole(ctx context.Context, tx *sqlx.Tx) (string, error) {
	var slug string
	err := tx.GetContext(ctx, &slug, "SELECT coalesce((SELECT slug FROM roles WHERE is_default), '')")
	return slug, err
}

// WriteTx runs fn in one SERIALIZABLE database transaction and returns the
// revision it produced (the head revision when nothing changed). It commits
// when fn returns nil and rolls back otherwise. Use it to read, check and
// write in one transaction; opts apply to every Apply.
//
// When PostgreSQL aborts the transaction to keep concurrent writes
// serializable, WriteTx runs it again, fn included, on a fresh snapshot (see
// the package doc): fn may run several times and must have no effect outside
// tx other than setting variables it sets again on every run (its results).
// Errors: fn's own error of the last run as it is (a *ValidationError from
// Apply, or the caller's); when the database is unavailable, or the write
// could not be serialized within the retries, an error wrapping
// ErrUnavailable; anything else is an internal failure.
func (s *Store) WriteTx(ctx context.Context, fn func(tx *Tx) error, opts ...WriteOption) (int64, error) {
	var txid string
	var fnErr error
	err := writeTx(ctx, s.db, func(tx *sqlx.Tx) error {
		o := writeOptions{cascade: map[string]bool{}}
		for _, opt := range opts {
			opt(&o)
		}
		t := &Tx{w: &writer{ctx: ctx, tx: tx, maxDepth: s.maxDepth, opts: o}}
		if fnErr = fn(t); fnErr != nil {
			return fnErr
		}
		return tx.GetContext(ctx, &txid, "SELECT pg_current_xact_id()::text")
	})
	switch {
	case err == nil:
	case fnErr != nil && errors.Is(err, fnErr):
		return 0, err // fnErr, or a wrapping of it that says why it failed
	default:
		return 0, fmt.Errorf("postgres: write: %w", err)
	}
	// The revision is allocated at commit (see the package doc). The write
	// is committed: a failure to read it back is not ErrUnavailable, which
	// would tell the client that it may retry.
	var rev int64
	switch err := s.db.GetContext(ctx, &rev, "SELECT revision FROM change_revisions WHERE txid = $1::xid8", txid); {
	case errors.Is(err, sql.ErrNoRows):
		return s.Head(ctx)
	case err != nil:
		return 0, fmt.Errorf("postgres: read the revision of a committed write: %w", err)
	}
	return rev, nil
}

// writer applies one batch inside a transaction.
type writer struct {
	ctx      context.Context
	tx       *sqlx.Tx
	maxDepth int
	opts     writeOptions
}

func (w *writer) exec(query string, args ...any) (int64, error) {
	res, err := w.tx.ExecContext(w.ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// get runs a one-row query; found is false on no rows.
func (w *writer) get(dest any, query string, args ...any) (found bool, err error) {
	err = w.tx.GetContext(w.ctx, dest, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (w *writer) apply(i int, c model.Change) error {
	n := 0
	for _, set := range []bool{c.Organization != nil, c.Membership != nil, c.ResourceType != nil,
		c.Permission != nil, c.Role != nil, c.Resource != nil, c.Assignment != nil, c.Group != nil, c.GroupMember != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return problem(i, "change", "", "", model.CodeInvalid, "exactly one entity must be set, not %d", n)
	}
	if c.Op != model.OpUpsert && c.Op != model.OpDelete {
		return problem(i, "change", "", "op", model.CodeInvalid, "op %q is not %q or %q", c.Op, model.OpUpsert, model.OpDelete)
	}
	up := c.Op == model.OpUpsert
	switch {
	case c.Organization != nil && up:
		return w.upsertOrganization(i, c.Organization)
	case c.Organization != nil:
		return w.deleteBy(i, model.KindOrganization, c.Organization.ID, "DELETE FROM organizations WHERE id = $1", c.Organization.ID)
	case c.ResourceType != nil && up:
		return w.upsertResourceType(i, c.ResourceType)
	case c.ResourceType != nil:
		if c.ResourceType.Slug == model.OrganizationType {
			return problem(i, model.KindResourceType, c.ResourceType.Slug, "slug", model.CodeInvalid, "the organization type is built in")
		}
		return w.deleteBy(i, model.KindResourceType, c.ResourceType.Slug, "DELETE FROM resource_types WHERE slug = $1", c.ResourceType.Slug)
	case c.Permission != nil && up:
		return w.upsertPermission(i, c.Permission)
	case c.Permission != nil:
		return w.deleteBy(i, model.KindPermission, c.Permission.Slug, "DELETE FROM permissions WHERE slug = $1", c.Permission.Slug)
	case c.Role != nil && up:
		return w.upsertRole(i, c.Role)
	case c.Role != nil:
		return w.deleteBy(i, model.KindRole, c.Role.Key(),
			"DELETE FROM roles WHERE slug = $1 AND organization_id IS NOT DISTINCT FROM nullif($2, '')", c.Role.Slug, c.Role.OrganizationID)
	case c.Membership != nil && up:
		return w.upsertMembership(i, c.Membership)
	case c.Membership != nil:
		return w.deleteBy(i, model.KindMembership, c.Membership.ID, "DELETE FROM organization_memberships WHERE id = $1", c.Membership.ID)
	case c.Resource != nil && up:
		return w.upsertResource(i, c.Resource)
	case c.Resource != nil:
		return w.deleteResource(i, c.Resource.ID)
	case c.Group != nil || c.GroupMember != nil || (c.Assignment != nil && c.Assignment.GroupID != ""):
		return w.applyGroups(i, c, up)
	case c.Assignment != nil && up:
		return w.upsertAssignment(i, c.Assignment)
	default:
		return w.deleteBy(i, model.KindAssignment, c.Assignment.ID, "DELETE FROM role_assignments WHERE id = $1", c.Assignment.ID)
	}
}

func (w *writer) deleteBy(i int, kind, key, query string, args ...any) error {
	n, err := w.exec(query, args...)
	if err != nil {
		return translate(i, kind, key, model.OpDelete, err)
	}
	if n == 0 {
		return problem(i, kind, key, "", CodeNotFound, "%s %q does not exist", kind, key)
	}
	return nil
}

func (w *writer) upsertOrganization(i int, o *model.Organization) error {
	const kind = model.KindOrganization
	if o.ID == "" {
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	}
	var root string
	found, err := w.get(&root, "SELECT root_resource_id FROM organizations WHERE id = $1", o.ID)
	if err != nil {
		return translate(i, kind, o.ID, model.OpUpsert, err)
	}
	if found && o.RootResourceID != "" && o.RootResourceID != root {
		return problem(i, kind, o.ID, "root_resource_id", model.CodeInvalid, "the root resource id is %q and cannot change", root)
	}
	if err := model.CheckAttributes(o.Attributes); err != nil {
		return problem(i, kind, o.ID, "attributes", model.CodeInvalid, "attributes%s", err)
	}
	_, err = w.exec(`INSERT INTO organizations (id, name, root_resource_id, attributes) VALUES ($1, $2, nullif($3, ''), $4)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, attributes = EXCLUDED.attributes, updated_at = now()
		WHERE (organizations.name, organizations.attributes) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.attributes)`,
		o.ID, o.Name, o.RootResourceID, AttributesColumn(o.Attributes))
	return translate0(i, kind, o.ID, err)
}

func translate0(i int, kind, id string, err error) error {
	if err == nil {
		return nil
	}
	return translate(i, kind, id, model.OpUpsert, err)
}

// resourceRow is a resource's organization and type.
type resourceRow struct {
	Org  string `db:"organization_id"`
	Type string `db:"type"`
}

// typeExists reports whether a resource type (the organization type
// included) exists.
func (w *writer) typeExists(slug string) (bool, error) {
	var ok bool
	err := w.tx.GetContext(w.ctx, &ok, "SELECT EXISTS (SELECT 1 FROM resource_types WHERE slug = $1)", slug)
	return ok, err
}

// requireType is nil when resource type typ exists, else the problem of
// change i naming field.
func (w *writer) requireType(i int, kind, key, field, typ string) error {
	ok, err := w.typeExists(typ)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	if !ok {
		return problem(i, kind, key, field, model.CodeUnknownReference, "unknown resource type %q", typ)
	}
	return nil
}

// requireOrg is nil when organization org exists, else the problem of
// change i with its organization_id.
func (w *writer) requireOrg(i int, kind, key, org string) error {
	var exists bool
	if err := w.tx.GetContext(w.ctx, &exists, "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", org); err != nil {
		return translate0(i, kind, key, err)
	}
	if !exists {
		return problem(i, kind, key, "organization_id", model.CodeUnknownReference, "unknown organization %q", org)
	}
	return nil
}

func (w *writer) upsertResourceType(i int, t *model.ResourceType) error {
	const kind = model.KindResourceType
	switch {
	case t.Slug == "":
		return problem(i, kind, "", "slug", model.CodeInvalid, "slug is required")
	case t.Slug == model.OrganizationType:
		return problem(i, kind, t.Slug, "slug", model.CodeInvalid, "slug %q is reserved for the implicit root type", t.Slug)
	case len(t.ParentTypes) == 0:
		return problem(i, kind, t.Slug, "parent_types", model.CodeInvalid, "at least one parent type is required (%q for top-level types)", model.OrganizationType)
	}
	var old []string
	if err := w.tx.SelectContext(w.ctx, &old, "SELECT parent_type FROM resource_type_parents WHERE resource_type = $1", t.Slug); err != nil {
		return translate0(i, kind, t.Slug, err)
	}
	seen := map[string]bool{}
	var added []string
	for _, p := range t.ParentTypes {
		if seen[p] {
			return problem(i, kind, t.Slug, "parent_types", model.CodeDuplicate, "parent type %q is listed more than once", p)
		}
		seen[p] = true
		if p == t.Slug {
			return problem(i, kind, t.Slug, "parent_types", model.CodeCycle, "a type cannot be its own parent type")
		}
		ok, err := w.typeExists(p)
		if err != nil {
			return translate0(i, kind, t.Slug, err)
		}
		if !ok {
			return problem(i, kind, t.Slug, "parent_types", model.CodeUnknownReference, "unknown parent type %q", p)
		}
		if !slices.Contains(old, p) {
			added = append(added, p)
		}
	}
	for _, p := range added {
		// A cycle: the new parent descends from this type.
		var cyc bool
		err := w.tx.GetContext(w.ctx, &cyc, `WITH RECURSIVE up(t) AS (
				SELECT $1::text UNION SELECT p.parent_type FROM resource_type_parents p JOIN up ON p.resource_type = up.t)
			SELECT EXISTS (SELECT 1 FROM up WHERE t = $2)`, p, t.Slug)
		if err != nil {
			return translate0(i, kind, t.Slug, err)
		}
		if cyc {
			return problem(i, kind, t.Slug, "parent_types", model.CodeCycle, "parent type %q is a descendant of %q: the type graph would loop", p, t.Slug)
		}
	}
	var removed []string
	for _, p := range old {
		if !seen[p] {
			removed = append(removed, p)
		}
	}
	for _, p := range removed {
		var used string
		found, err := w.get(&used, `SELECT r.id FROM resources r JOIN resources parent ON parent.id = r.parent_id
			WHERE r.type = $1 AND parent.type = $2 LIMIT 1`, t.Slug, p)
		if err != nil {
			return translate0(i, kind, t.Slug, err)
		}
		if found {
			return problem(i, kind, t.Slug, "parent_types", model.CodeParentTypeNotAllowed,
				"resource %q of type %q still has a parent of type %q", used, t.Slug, p)
		}
	}
	if _, err := w.exec(`INSERT INTO resource_types (slug, name, description) VALUES ($1, $2, $3)
		ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, updated_at = now()
		WHERE (resource_types.name, resource_types.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)`,
		t.Slug, t.Name, t.Description); err != nil {
		return translate0(i, kind, t.Slug, err)
	}
	if len(removed) > 0 {
		if _, err := w.exec("DELETE FROM resource_type_parents WHERE resource_type = $1 AND parent_type = ANY($2)", t.Slug, pq.Array(removed)); err != nil {
			return translate0(i, kind, t.Slug, err)
		}
	}
	if len(added) > 0 {
		if _, err := w.exec("INSERT INTO resource_type_parents (resource_type, parent_type) SELECT $1, unnest($2::text[])", t.Slug, pq.Array(added)); err != nil {
			return translate0(i, kind, t.Slug, err)
		}
	}
	if len(removed) > 0 {
		// Removing a parent type may leave a role with a permission of a
		// type that is no longer below the role's.
		var role, perm string
		err := w.tx.QueryRowContext(w.ctx, `WITH RECURSIVE anc(t, a) AS (
				SELECT slug, slug FROM resource_types
				UNION SELECT anc.t, p.parent_type FROM anc JOIN resource_type_parents p ON p.resource_type = anc.a)
			SELECT r.slug, p.slug FROM roles r
			JOIN role_permissions rp ON rp.role_id = r.id JOIN permissions p ON p.id = rp.permission_id
			WHERE r.resource_type <> 'organization'
			  AND NOT EXISTS (SELECT 1 FROM anc WHERE anc.t = p.resource_type AND anc.a = r.resource_type)
			LIMIT 1`).Scan(&role, &perm)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return translate0(i, kind, t.Slug, err)
		default:
			return problem(i, kind, t.Slug, "parent_types", model.CodePermissionTypeNotAllowed,
				"role %q would hold permission %q of a type no longer below the role's type", role, perm)
		}
	}
	return nil
}

func (w *writer) upsertPermission(i int, p *model.Permission) error {
	const kind = model.KindPermission
	switch {
	case p.Slug == "":
		return problem(i, kind, "", "slug", model.CodeInvalid, "slug is required")
	case p.ResourceType == "":
		return problem(i, kind, p.Slug, "resource_type", model.CodeInvalid, "resource_type is required")
	}
	if err := w.requireType(i, kind, p.Slug, "resource_type", p.ResourceType); err != nil {
		return err
	}
	var typ string
	found, err := w.get(&typ, "SELECT resource_type FROM permissions WHERE slug = $1", p.Slug)
	if err != nil {
		return translate0(i, kind, p.Slug, err)
	}
	if found && typ != p.ResourceType {
		return problem(i, kind, p.Slug, "resource_type", model.CodeInvalid, "a permission's resource type (%q) cannot change", typ)
	}
	_, err = w.exec(`INSERT INTO permissions (id, slug, name, description, resource_type) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, updated_at = now()
		WHERE (permissions.name, permissions.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)`,
		model.NewID("perm_"), p.Slug, p.Name, p.Description, p.ResourceType)
	return translate0(i, kind, p.Slug, err)
}

// descendantTypes returns typ and every type below it.
func (w *writer) descendantTypes(typ string) (map[string]bool, error) {
	var ts []string
	err := w.tx.SelectContext(w.ctx, &ts, `WITH RECURSIVE down(t) AS (
			SELECT $1::text UNION SELECT p.resource_type FROM resource_type_parents p JOIN down ON p.parent_type = down.t)
		SELECT t FROM down`, typ)
	out := make(map[string]bool, len(ts))
	for _, t := range ts {
		out[t] = true
	}
	return out, err
}

func (w *writer) upsertRole(i int, r *model.Role) error {
	const kind = model.KindRole
	key := r.Key()
	switch {
	case r.Slug == "":
		return problem(i, kind, "", "slug", model.CodeInvalid, "slug is required")
	case r.ResourceType == "":
		return problem(i, kind, key, "resource_type", model.CodeInvalid, "resource_type is required")
	}
	if err := w.requireType(i, kind, key, "resource_type", r.ResourceType); err != nil {
		return err
	}
	if r.OrganizationID != "" {
		if err := w.requireOrg(i, kind, key, r.OrganizationID); err != nil {
			return err
		}
	}
	// Environment and organization role slugs may not clash.
	var clash bool
	if err := w.tx.GetContext(w.ctx, &clash, `SELECT EXISTS (SELECT 1 FROM roles WHERE slug = $1
		AND (CASE WHEN $2 = '' THEN organization_id IS NOT NULL ELSE organization_id IS NULL END))`, r.Slug, r.OrganizationID); err != nil {
		return translate0(i, kind, key, err)
	}
	if clash {
		if r.OrganizationID == "" {
			return problem(i, kind, key, "slug", model.CodeDuplicate, "an organization role already uses slug %q", r.Slug)
		}
		return problem(i, kind, key, "slug", model.CodeDuplicate, "organization role slug %q is already an environment role's", r.Slug)
	}
	var old struct {
		ID   string `db:"id"`
		Type string `db:"resource_type"`
	}
	found, err := w.get(&old, "SELECT id, resource_type FROM roles WHERE slug = $1 AND organization_id IS NOT DISTINCT FROM nullif($2, '')", r.Slug, r.OrganizationID)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	if found && old.Type != r.ResourceType {
		return problem(i, kind, key, "resource_type", model.CodeInvalid, "a role's resource type (%q) cannot change", old.Type)
	}
	// Permissions: known, and of the role's type or a type below it.
	below, err := w.descendantTypes(r.ResourceType)
	if err != nil {
		return translate0(i, kind, key, err)
	}
	var perms []struct {
		ID   string `db:"id"`
		Slug string `db:"slug"`
		Type string `db:"resource_type"`
	}
	if err := w.tx.SelectContext(w.ctx, &perms, "SELECT id, slug, resource_type FROM permissions WHERE slug = ANY($1)", pq.Array(r.Permissions)); err != nil {
		return translate0(i, kind, key, err)
	}
	byslug := map[string]int{}
	for j, p := range perms {
		byslug[p.Slug] = j
	}
	seen := map[string]bool{}
	ids := make([]string, 0, len(r.Permissions))
	for _, slug := range r.Permissions {
		j, ok := byslug[slug]
		switch {
		case seen[slug]:
			return problem(i, kind, key, "permissions", model.CodeDuplicate, "permission %q is listed more than once", slug)
		case !ok:
			return problem(i, kind, key, "permissions", model.CodeUnknownReference, "unknown permission %q", slug)
		case r.ResourceType != model.OrganizationType && !below[perms[j].Type]:
			return problem(i, kind, key, "permissions", model.CodePermissionTypeNotAllowed,
				"permission %q is on type %q, which is neither the role's type %q nor a descendant of it", slug, perms[j].Type, r.ResourceType)
		}
		seen[slug] = true
		ids = append(ids, perms[j].ID)
	}
	id := old.ID
	if !found {
		id = model.NewID("role_")
	}
	if _, err := w.exec(`INSERT INTO roles (id, slug, organization_id, resource_type, name, description)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, updated_at = now()
		WHERE (roles.name, roles.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)`,
		id, r.Slug, r.OrganizationID, r.ResourceType, r.Name, r.Description); err != nil {
		return translate0(i, kind, key, err)
	}
	if _, err := w.exec("DELETE FROM role_permissions WHERE role_id = $1 AND NOT (permission_id = ANY($2))", id, pq.Array(ids)); err != nil {
		return translate0(i, kind, key, err)
	}
	// position keeps the listed order (migrations/0003).
	_, err = w.exec(`INSERT INTO role_permissions (role_id, permission_id, position)
		SELECT $1, p, o FROM unnest($2::text[]) WITH ORDINALITY AS t(p, o)
		ON CONFLICT (role_id, permission_id) DO UPDATE SET position = EXCLUDED.position
		WHERE role_permissions.position IS DISTINCT FROM EXCLUDED.position`, id, pq.Array(ids))
	return translate0(i, kind, key, err)
}

// resolveRole finds the role slug names in organization org: the
// organization's own role first, then the environment role.
func (w *writer) resolveRole(org, slug string) (id, typ string, found bool, err error) {
	var row struct {
		ID   string `db:"id"`
		Type string `db:"resource_type"`
	}
	found, err = w.get(&row, `SELECT id, resource_type FROM roles WHERE slug = $1 AND (organization_id = $2 OR organization_id IS NULL)
		ORDER BY organization_id NULLS LAST LIMIT 1`, slug, org)
	return row.ID, row.Type, found, err
}

func (w *writer) upsertMembership(i int, m *model.Membership) error {
	const kind = model.KindMembership
	switch {
	case m.ID == "":
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	case m.UserID == "":
		return problem(i, kind, m.ID, "user_id", model.CodeInvalid, "user_id is required")
	case m.OrganizationID == "":
		return problem(i, kind, m.ID, "organization_id", model.CodeInvalid, "organization_id is required")
	}
	switch m.Status {
	case model.StatusActive, model.StatusInactive, model.StatusPending:
	default:
		return problem(i, kind, m.ID, "status", model.CodeInvalid, "status %q is not one of %q, %q, %q",
			m.Status, model.StatusActive, model.StatusInactive, model.StatusPending)
	}
	if err := w.requireOrg(i, kind, m.ID, m.OrganizationID); err != nil {
		return err
	}
	var org string
	found, err := w.get(&org, "SELECT organization_id FROM organization_memberships WHERE id = $1", m.ID)
	if err != nil {
		return translate0(i, kind, m.ID, err)
	}
	if found && org != m.OrganizationID {
		return problem(i, kind, m.ID, "organization_id", model.CodeInvalid, "a membership's organization (%q) cannot change", org)
	}
	seen := map[string]bool{}
	ids := make([]string, 0, len(m.RoleSlugs))
	for _, slug := range m.RoleSlugs {
		if seen[slug] {
			return problem(i, kind, m.ID, "role_slugs", model.CodeDuplicate, "role %q is listed more than once", slug)
		}
		seen[slug] = true
		id, typ, ok, err := w.resolveRole(m.OrganizationID, slug)
		switch {
		case err != nil:
			return translate0(i, kind, m.ID, err)
		case !ok:
			return problem(i, kind, m.ID, "role_slugs", model.CodeUnknownReference, "unknown role %q in organization %q", slug, m.OrganizationID)
		case typ != model.OrganizationType:
			return problem(i, kind, m.ID, "role_slugs", model.CodeRoleTypeMismatch,
				"role %q is of resource type %q; organization roles must be of type %q", slug, typ, model.OrganizationType)
		}
		ids = append(ids, id)
	}
	if _, err := w.exec(`INSERT INTO organization_memberships (id, user_id, organization_id, status) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, status = EXCLUDED.status, updated_at = now()
		WHERE (organization_memberships.user_id, organization_memberships.status) IS DISTINCT FROM (EXCLUDED.user_id, EXCLUDED.status)`,
		m.ID, m.UserID, m.OrganizationID, m.Status); err != nil {
		return translate0(i, kind, m.ID, err)
	}
	if _, err := w.exec("DELETE FROM membership_roles WHERE membership_id = $1 AND NOT (role_id = ANY($2))", m.ID, pq.Array(ids)); err != nil {
		return translate0(i, kind, m.ID, err)
	}
	// position keeps the listed order: the first role is the primary one.
	_, err = w.exec(`INSERT INTO membership_roles (membership_id, role_id, position)
		SELECT $1, r, o FROM unnest($2::text[]) WITH ORDINALITY AS t(r, o)
		ON CONFLICT (membership_id, role_id) DO UPDATE SET position = EXCLUDED.position
		WHERE membership_roles.position IS DISTINCT FROM EXCLUDED.position`, m.ID, pq.Array(ids))
	return translate0(i, kind, m.ID, err)
}

func (w *writer) upsertResource(i int, r *model.Resource) error {
	const kind = model.KindResource
	switch {
	case r.ID == "":
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	case r.OrganizationID == "":
		return problem(i, kind, r.ID, "organization_id", model.CodeInvalid, "organization_id is required")
	case r.Type == "":
		return problem(i, kind, r.ID, "type", model.CodeInvalid, "type is required")
	case r.Type == model.OrganizationType:
		return problem(i, kind, r.ID, "type", model.CodeInvalid, "resources of type %q are created with their organization", model.OrganizationType)
	case r.ExternalID == "":
		return problem(i, kind, r.ID, "external_id", model.CodeInvalid, "external_id is required")
	}
	if err := model.CheckAttributes(r.Attributes); err != nil {
		return problem(i, kind, r.ID, "attributes", model.CodeInvalid, "attributes%s", err)
	}
	var root string
	found, err := w.get(&root, "SELECT root_resource_id FROM organizations WHERE id = $1", r.OrganizationID)
	if err != nil {
		return translate0(i, kind, r.ID, err)
	}
	if !found {
		return problem(i, kind, r.ID, "organization_id", model.CodeUnknownReference, "unknown organization %q", r.OrganizationID)
	}
	if err := w.requireType(i, kind, r.ID, "type", r.Type); err != nil {
		return err
	}
	var old resourceRow
	exists, err := w.get(&old, "SELECT organization_id, type FROM resources WHERE id = $1", r.ID)
	if err != nil {
		return translate0(i, kind, r.ID, err)
	}
	if exists {
		switch {
		case old.Type == model.OrganizationType:
			return problem(i, kind, r.ID, "id", model.CodeInvalid, "%q is an organization's root resource", r.ID)
		case old.Org != r.OrganizationID:
			return problem(i, kind, r.ID, "organization_id", model.CodeCrossOrganization, "a resource cannot move from organization %q to %q", old.Org, r.OrganizationID)
		case old.Type != r.Type:
			return problem(i, kind, r.ID, "type", model.CodeInvalid, "a resource's type (%q) cannot change", old.Type)
		}
	}
	parent := r.ParentID
	if parent == "" {
		parent = root
	}
	var p resourceRow
	pfound, err := w.get(&p, "SELECT organization_id, type FROM resources WHERE id = $1", parent)
	if err != nil {
		return translate0(i, kind, r.ID, err)
	}
	if !pfound {
		return problem(i, kind, r.ID, "parent_id", model.CodeUnknownReference, "unknown parent resource %q", parent)
	}
	if p.Org != r.OrganizationID {
		return problem(i, kind, r.ID, "parent_id", model.CodeCrossOrganization, "parent %q is in organization %q, not %q", parent, p.Org, r.OrganizationID)
	}
	// Depth of the parent (the root is 1) and whether this resource is
	// among its ancestors (a cycle). The bound stops the walk on data that
	// another writer corrupted.
	var depth int
	var cycle bool
	if err := w.tx.QueryRowContext(w.ctx, `WITH RECURSIVE up(id, parent_id, d) AS (
			SELECT id, parent_id, 1 FROM resources WHERE id = $1
			UNION ALL SELECT r.id, r.parent_id, up.d + 1 FROM resources r JOIN up ON r.id = up.parent_id WHERE up.d <= $3)
		SELECT count(*), coalesce(bool_or(id = $2), false) FROM up`, parent, r.ID, w.maxDepth+1).Scan(&depth, &cycle); err != nil {
		return translate0(i, kind, r.ID, err)
	}
	if cycle {
		return problem(i, kind, r.ID, "parent_id", model.CodeCycle, "parent %q is %q itself or below it: parent links would loop", parent, r.ID)
	}
	var allowed bool
	if err := w.tx.GetContext(w.ctx, &allowed, "SELECT EXISTS (SELECT 1 FROM resource_type_parents WHERE resource_type = $1 AND parent_type = $2)", r.Type, p.Type); err != nil {
		return translate0(i, kind, r.ID, err)
	}
	if !allowed {
		return problem(i, kind, r.ID, "parent_id", model.CodeParentTypeNotAllowed,
			"parent %q is of type %q, which is not a parent type of %q", parent, p.Type, r.Type)
	}
	height := 0
	if exists {
		if err := w.tx.GetContext(w.ctx, &height, `WITH RECURSIVE down(id, h) AS (
				SELECT $1::text, 0 UNION ALL SELECT r.id, down.h + 1 FROM resources r JOIN down ON r.parent_id = down.id WHERE down.h <= $2)
			SELECT max(h) FROM down`, r.ID, w.maxDepth+1); err != nil {
			return translate0(i, kind, r.ID, err)
		}
	}
	if d := depth + 1 + height; d > w.maxDepth {
		return problem(i, kind, r.ID, "parent_id", model.CodeDepthExceeded,
			"the resource (with its subtree) would reach depth %d (the organization root is 1), deeper than the maximum %d", d, w.maxDepth)
	}
	_, err = w.exec(`INSERT INTO resources (id, organization_id, type, external_id, name, description, parent_id, attributes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET external_id = EXCLUDED.external_id, name = EXCLUDED.name,
			description = EXCLUDED.description, parent_id = EXCLUDED.parent_id, attributes = EXCLUDED.attributes, updated_at = now()
		WHERE (resources.external_id, resources.name, resources.description, resources.parent_id, resources.attributes)
			IS DISTINCT FROM (EXCLUDED.external_id, EXCLUDED.name, EXCLUDED.description, EXCLUDED.parent_id, EXCLUDED.attributes)`,
		r.ID, r.OrganizationID, r.Type, r.ExternalID, r.Name, r.Description, parent, AttributesColumn(r.Attributes))
	return translate0(i, kind, r.ID, err)
}

func (w *writer) deleteResource(i int, id string) error {
	const kind = model.KindResource
	var typ string
	found, err := w.get(&typ, "SELECT type FROM resources WHERE id = $1", id)
	if err != nil {
		return translate(i, kind, id, model.OpDelete, err)
	}
	switch {
	case !found:
		return problem(i, kind, id, "", CodeNotFound, "resource %q does not exist", id)
	case typ == model.OrganizationType:
		return problem(i, kind, id, "", model.CodeInvalid, "%q is an organization's root resource: delete the organization instead", id)
	}
	if !w.opts.cascade[id] {
		var what string
		found, err := w.get(&what, `SELECT 'child resource ' || id FROM resources WHERE parent_id = $1
			UNION ALL SELECT 'assignment ' || id FROM role_assignments WHERE resource_id = $1
			UNION ALL SELECT 'group role assignment ' || id FROM group_role_assignments WHERE resource_id = $1 LIMIT 1`, id)
		if err != nil {
			return translate(i, kind, id, model.OpDelete, err)
		}
		if found {
			return problem(i, kind, id, "", CodeHasDependents, "resource %q has a %s: delete with cascade_delete to remove its subtree and assignments", id, what)
		}
	}
	_, err = w.exec(`WITH RECURSIVE sub(id) AS (
			SELECT $1::text UNION ALL SELECT r.id FROM resources r JOIN sub ON r.parent_id = sub.id)
		DELETE FROM resources WHERE id IN (SELECT id FROM sub)`, id)
	if err != nil {
		return translate(i, kind, id, model.OpDelete, err)
	}
	return nil
}

func (w *writer) upsertAssignment(i int, a *model.Assignment) error {
	const kind = model.KindAssignment
	switch {
	case a.ID == "":
		return problem(i, kind, "", "id", model.CodeInvalid, "id is required")
	case a.MembershipID == "":
		return problem(i, kind, a.ID, "membership_id", model.CodeInvalid, "membership_id is required")
	case a.ResourceID == "":
		return problem(i, kind, a.ID, "resource_id", model.CodeInvalid, "resource_id is required")
	case a.RoleSlug == "":
		return problem(i, kind, a.ID, "role", model.CodeInvalid, "role is required")
	}
	var mOrg string
	found, err := w.get(&mOrg, "SELECT organization_id FROM organization_memberships WHERE id = $1", a.MembershipID)
	if err != nil {
		return translate0(i, kind, a.ID, err)
	}
	if !found {
		return problem(i, kind, a.ID, "membership_id", model.CodeUnknownReference, "unknown membership %q", a.MembershipID)
	}
	roleID, err := w.assignmentRole(i, a, "membership", a.MembershipID, mOrg)
	if err != nil {
		return err
	}
	_, err = w.exec(`INSERT INTO role_assignments (id, membership_id, role_id, resource_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET membership_id = EXCLUDED.membership_id, role_id = EXCLUDED.role_id,
			resource_id = EXCLUDED.resource_id, updated_at = now()
		WHERE (role_assignments.membership_id, role_assignments.role_id, role_assignments.resource_id)
			IS DISTINCT FROM (EXCLUDED.membership_id, EXCLUDED.role_id, EXCLUDED.resource_id)`,
		a.ID, a.MembershipID, roleID, a.ResourceID)
	return translate0(i, kind, a.ID, err)
}

// assignmentRole checks assignment a of principal (a membership or group,
// named by what, of organization org) as change i: its resource exists in
// org and the role resolves there to a role of the resource's type. It
// returns the role's id.
func (w *writer) assignmentRole(i int, a *model.Assignment, what, principal, org string) (string, error) {
	const kind = model.KindAssignment
	var res resourceRow
	found, err := w.get(&res, "SELECT organization_id, type FROM resources WHERE id = $1", a.ResourceID)
	if err != nil {
		return "", translate0(i, kind, a.ID, err)
	}
	if !found {
		return "", problem(i, kind, a.ID, "resource_id", model.CodeUnknownReference, "unknown resource %q", a.ResourceID)
	}
	if res.Org != org {
		return "", problem(i, kind, a.ID, "resource_id", model.CodeCrossOrganization,
			"resource %q is in organization %q but %s %q is in %q", a.ResourceID, res.Org, what, principal, org)
	}
	roleID, roleType, found, err := w.resolveRole(org, a.RoleSlug)
	switch {
	case err != nil:
		return "", translate0(i, kind, a.ID, err)
	case !found:
		return "", problem(i, kind, a.ID, "role", model.CodeUnknownReference, "unknown role %q in organization %q", a.RoleSlug, org)
	case roleType != res.Type:
		return "", problem(i, kind, a.ID, "role", model.CodeRoleTypeMismatch,
			"role %q is of resource type %q but resource %q is of type %q", a.RoleSlug, roleType, a.ResourceID, res.Type)
	}
	return roleID, nil
}
