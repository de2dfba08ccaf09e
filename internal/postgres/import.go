package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// Import adds a whole dataset (a data file, generated data) to the
// database in one transaction with COPY, and returns its revision. The
// dataset must be valid (model.Dataset.Validate) and must not overlap what
// the database holds (ids, slugs and keys must be new), else nothing is
// written; every entity imported becomes a <kind>.created event at the
// returned revision (emitImportEvents); an organization role of the
// dataset whose slug is an environment role's in the database, or the
// reverse, is an error too. Like
// every write it runs at SERIALIZABLE (see the package doc). The rows are
// not logged one by one: followers behind the
// returned revision load a fresh snapshot instead (a resync revision),
// which is far cheaper for a large import than replaying it. The roles
// take the priority order of ds.Roles, after the database's; a
// DefaultRole becomes the environment's default role.
func (s *Store) Import(ctx context.Context, ds *model.Dataset) (int64, error) {
	return s.ImportWith(ctx, ds, ImportOptions{})
}

// ImportOptions configures ImportWith. Zero fields get defaults.
type ImportOptions struct {
	// Progress, when set, is called as the import copies rows: done of
	// total rows (every table's, derived ones such as role permissions
	// included; not the events). It is called with done 0 when copying
	// starts, every 10,000 rows of a table and when a table is copied, so
	// that the last call of an import that succeeds has done == total. A
	// write that conflicts and is retried starts again from 0. It is called
	// on the importing goroutine, inside the transaction: it must return
	// quickly and must not use the Store.
	Progress func(done, total int64)
}

// ImportWith is Import, reporting as opts says.
func (s *Store) ImportWith(ctx context.Context, ds *model.Dataset, opts ImportOptions) (int64, error) {
	if err := ds.Validate(); err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	if opts.Progress == nil {
		opts.Progress = func(int64, int64) {}
	}
	start := time.Now()
	var rev, events int64
	err := writeTx(ctx, s.db, func(tx *sqlx.Tx) error {
		// work_mem: the events and the reference checks sort and join a
		// million rows a query for tier M, on disk with the default 4 MB.
		if _, err := tx.ExecContext(ctx, "SET LOCAL trellis.bulk = 'on'; SET LOCAL work_mem = '256MB'"); err != nil {
			return err
		}
		count := &importCount{total: importRows(ds), report: opts.Progress}
		count.report(0, count.total)
		roots := make(map[string]string, len(ds.Organizations))
		if err := s.copyRows(ctx, tx, count, "organizations", []string{"id", "name", "root_resource_id", "attributes"}, len(ds.Organizations), func(i int) []any {
			o := ds.Organizations[i]
			roots[o.ID] = o.RootID()
			return []any{o.ID, o.Name, o.RootID(), AttributesColumn(o.Attributes)}
		}); err != nil {
			return err
		}
		if err := s.copyRows(ctx, tx, count, "resource_types", []string{"slug", "name", "description"}, len(ds.ResourceTypes), func(i int) []any {
			t := ds.ResourceTypes[i]
			return []any{t.Slug, t.Name, t.Description}
		}); err != nil {
			return err
		}
		var parents [][2]string
		for _, t := range ds.ResourceTypes {
			for _, p := range t.ParentTypes {
				parents = append(parents, [2]string{t.Slug, p})
			}
		}
		if err := s.copyRows(ctx, tx, count, "resource_type_parents", []string{"resource_type", "parent_type"}, len(parents), func(i int) []any {
			return []any{parents[i][0], parents[i][1]}
		}); err != nil {
			return err
		}
		permIDs := make(map[string]string, len(ds.Permissions))
		if err := s.copyRows(ctx, tx, count, "permissions", []string{"id", "slug", "name", "description", "resource_type"}, len(ds.Permissions), func(i int) []any {
			p := ds.Permissions[i]
			permIDs[p.Slug] = model.NewID("perm_")
			return []any{permIDs[p.Slug], p.Slug, p.Name, p.Description, p.ResourceType}
		}); err != nil {
			return err
		}
		roleIDs := make(map[string]string, len(ds.Roles)) // Role.Key() → id
		if err := s.copyRows(ctx, tx, count, "roles", []string{"id", "slug", "organization_id", "resource_type", "name", "description"}, len(ds.Roles), func(i int) []any {
			r := ds.Roles[i]
			roleIDs[r.Key()] = model.NewID("role_")
			var org any
			if r.OrganizationID != "" {
				org = r.OrganizationID
			}
			return []any{roleIDs[r.Key()], r.Slug, org, r.ResourceType, r.Name, r.Description}
		}); err != nil {
			return err
		}
		// The dataset's roles are valid among themselves (Validate); with
		// the database's, slugs may still clash.
		var clash struct {
			Slug string `db:"slug"`
			Org  string `db:"organization_id"`
		}
		switch err := tx.GetContext(ctx, &clash, `SELECT o.slug, o.organization_id FROM roles o
			JOIN roles e ON e.slug = o.slug AND e.organization_id IS NULL WHERE o.organization_id IS NOT NULL LIMIT 1`); {
		case err == nil:
			return fmt.Errorf("role slug %q is an environment role's and a role of organization %q", clash.Slug, clash.Org)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("check role slugs: %w", err)
		}
		if ds.DefaultRole != "" { // the dataset's default role replaces the database's
			if err := setDefaultRole(ctx, tx, ds.DefaultRole); err != nil {
				return err
			}
		}
		var rolePerms [][2]string
		for _, r := range ds.Roles {
			for _, p := range r.Permissions {
				rolePerms = append(rolePerms, [2]string{roleIDs[r.Key()], permIDs[p]})
			}
		}
		if err := s.copyRows(ctx, tx, count, "role_permissions", []string{"role_id", "permission_id"}, len(rolePerms), func(i int) []any {
			return []any{rolePerms[i][0], rolePerms[i][1]}
		}); err != nil {
			return err
		}
		roles := model.NewRoleIndex(ds.Roles)
		roleID := func(org, slug string) string {
			r, _ := roles.Resolve(org, slug) // Validate checked it resolves
			return roleIDs[r.Key()]
		}
		if err := s.copyRows(ctx, tx, count, "organization_memberships", []string{"id", "user_id", "organization_id", "status"}, len(ds.Memberships), func(i int) []any {
			m := ds.Memberships[i]
			return []any{m.ID, m.UserID, m.OrganizationID, m.Status}
		}); err != nil {
			return err
		}
		var memberRoles [][2]string
		memberOrg := make(map[string]string, len(ds.Memberships))
		for _, m := range ds.Memberships {
			memberOrg[m.ID] = m.OrganizationID
			for _, slug := range m.RoleSlugs {
				memberRoles = append(memberRoles, [2]string{m.ID, roleID(m.OrganizationID, slug)})
			}
		}
		if err := s.copyRows(ctx, tx, count, "membership_roles", []string{"membership_id", "role_id"}, len(memberRoles), func(i int) []any {
			return []any{memberRoles[i][0], memberRoles[i][1]}
		}); err != nil {
			return err
		}
		// The two largest tables are copied without their row triggers
		// when the role may (see skipRowTriggers).
		skipTriggers, err := s.skipRowTriggers(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.copyRows(ctx, tx, count, "resources", []string{"id", "organization_id", "type", "external_id", "name", "description", "parent_id", "attributes"}, len(ds.Resources), func(i int) []any {
			r := ds.Resources[i]
			parent := r.ParentID
			if parent == "" {
				parent = roots[r.OrganizationID]
			}
			return []any{r.ID, r.OrganizationID, r.Type, r.ExternalID, r.Name, r.Description, parent, AttributesColumn(r.Attributes)}
		}); err != nil {
			return err
		}
		var direct, grouped []model.Assignment
		for _, a := range ds.Assignments {
			if a.MembershipID == "" {
				grouped = append(grouped, a)
			} else {
				direct = append(direct, a)
			}
		}
		// role_slug is copied, not left to its trigger, which does not fire
		// without row triggers.
		if err := s.copyRows(ctx, tx, count, "role_assignments", []string{"id", "membership_id", "role_id", "role_slug", "resource_id"}, len(direct), func(i int) []any {
			a := direct[i]
			return []any{a.ID, a.MembershipID, roleID(memberOrg[a.MembershipID], a.RoleSlug), a.RoleSlug, a.ResourceID}
		}); err != nil {
			return err
		}
		if skipTriggers {
			if err := s.checkSkippedReferences(ctx, tx); err != nil {
				return err
			}
		}
		if err := s.copyRows(ctx, tx, count, "groups", []string{"id", "organization_id", "name", "description"}, len(ds.Groups), func(i int) []any {
			g := ds.Groups[i]
			return []any{g.ID, g.OrganizationID, g.Name, g.Description}
		}); err != nil {
			return err
		}
		groupOrg := make(map[string]string, len(ds.Groups))
		for _, g := range ds.Groups {
			groupOrg[g.ID] = g.OrganizationID
		}
		if err := s.copyRows(ctx, tx, count, "group_members", []string{"group_id", "membership_id", "organization_id"}, len(ds.GroupMembers), func(i int) []any {
			gm := ds.GroupMembers[i]
			return []any{gm.GroupID, gm.MembershipID, groupOrg[gm.GroupID]}
		}); err != nil {
			return err
		}
		if err := s.copyRows(ctx, tx, count, "group_role_assignments", []string{"id", "group_id", "role_id", "resource_id"}, len(grouped), func(i int) []any {
			a := grouped[i]
			return []any{a.ID, a.GroupID, roleID(groupOrg[a.GroupID], a.RoleSlug), a.ResourceID}
		}); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &rev, "SELECT trellis_mark_resync()"); err != nil {
			return err
		}
		events, err = s.emitImportEvents(ctx, tx, rev, importedRows{ds: ds, roots: roots, direct: direct, memberOrg: memberOrg})
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	s.log.Info("dataset imported", "revision", rev, "organizations", len(ds.Organizations),
		"resources", len(ds.Resources), "assignments", len(ds.Assignments),
		"events", events, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return rev, nil
}

// importRows is how many rows Import copies for ds, into every table.
func importRows(ds *model.Dataset) int64 {
	n := len(ds.Organizations) + len(ds.ResourceTypes) + len(ds.Permissions) + len(ds.Roles) +
		len(ds.Memberships) + len(ds.Resources) + len(ds.Assignments) + len(ds.Groups) + len(ds.GroupMembers)
	for _, t := range ds.ResourceTypes {
		n += len(t.ParentTypes)
	}
	for _, r := range ds.Roles {
		n += len(r.Permissions)
	}
	for _, m := range ds.Memberships {
		n += len(m.RoleSlugs)
	}
	return int64(n)
}

// importCount counts the rows an import has copied, for
// ImportOptions.Progress.
type importCount struct {
	done   int64 // rows of the tables copied so far
	total  int64
	report func(done, total int64)
}

// copying reports that the table being copied has copied rows so far.
func (c *importCount) copying(rows int) { c.report(c.done+int64(rows), c.total) }

// copied reports that the table being copied is done, with its rows.
func (c *importCount) copied(rows int) {
	c.done += int64(rows)
	c.report(c.done, c.total)
}

const (
	// importReportRows is how many rows of a table Import copies between
	// two calls of ImportOptions.Progress.
	importReportRows = 10_000
	// importLogRows is how many rows of a table Import copies between two
	// log lines; a multiple of importReportRows.
	importLogRows = 200_000
)

// copyRows COPYs n rows, row(i) giving the values of row i, reporting its
// progress to count every importReportRows rows and to the Store's logger
// every importLogRows rows, and to both when the table is done.
func (s *Store) copyRows(ctx context.Context, tx *sqlx.Tx, count *importCount, table string, cols []string, n int, row func(i int) []any) error {
	if n == 0 {
		return nil
	}
	start := time.Now()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pq.QuoteIdentifier(c)
	}
	stmt, err := tx.PrepareContext(ctx, "COPY "+pq.QuoteIdentifier(table)+" ("+strings.Join(quoted, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	defer stmt.Close()
	for i := range n {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		if (i+1)%importReportRows != 0 || i+1 == n {
			continue
		}
		count.copying(i + 1)
		if (i+1)%importLogRows == 0 {
			s.log.Info("import: copying", "table", table, "rows", i+1, "of", n,
				"elapsed", time.Since(start).Round(time.Millisecond).String())
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	count.copied(n)
	s.log.Info("import: table copied", "table", table, "rows", n, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// skipRowTriggers turns the row triggers off for what the import copies
// next (session_replication_role = replica), if the database role may set
// that, and reports whether it did. Besides the log triggers, which skip
// bulk rows anyway, the tables copied then (resources and
// role_assignments) have the foreign-key checks, which PostgreSQL runs as
// row triggers: a query per reference, three million for tier M, most of
// what their COPY cost. checkSkippedReferences does their work in one
// query afterwards. Without the privilege (PostgreSQL 15: a superuser, or
// GRANT SET ON PARAMETER session_replication_role) the import checks them
// row by row, as before.
func (s *Store) skipRowTriggers(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var may bool
	if err := tx.GetContext(ctx, &may, "SELECT has_parameter_privilege('session_replication_role', 'SET')"); err != nil {
		return false, fmt.Errorf("may the import skip row triggers: %w", err)
	}
	if !may {
		s.log.Warn("import: the database role may not set session_replication_role, so foreign keys are checked row by row (slower); GRANT SET ON PARAMETER session_replication_role TO it for the faster import")
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return false, fmt.Errorf("skip row triggers: %w", err)
	}
	return true, nil
}

// checkSkippedReferences turns the row triggers back on and checks, in one
// query, every reference of the rows copied without them: each copied
// resource's organization, resource type and parent (in its organization),
// and each copied assignment's membership, role (with the slug copied
// beside it, which its trigger would have set) and resource. It asks more
// than the foreign keys: the row referenced must be one the import wrote,
// as a valid dataset's references always are (model.Dataset.Validate),
// since the import's own rows are the ones no other transaction can delete
// before it commits, which is what the foreign-key checks' row locks
// would have ensured. Organization roots came with their organizations,
// checked by their triggers.
func (s *Store) checkSkippedReferences(ctx context.Context, tx *sqlx.Tx) error {
	start := time.Now()
	// Without statistics of the rows just copied the planner probes an
	// index per reference (7 s for tier M); hash anti-joins take 2.8 s.
	if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = origin; SET LOCAL enable_nestloop = off"); err != nil {
		return fmt.Errorf("turn row triggers back on: %w", err)
	}
	var dangling struct {
		Kind    string `db:"kind"`
		ID      string `db:"id"`
		RefKind string `db:"ref_kind"`
		Ref     string `db:"ref"`
	}
	switch err := tx.GetContext(ctx, &dangling, danglingReferenceQuery); {
	case err == nil:
		return fmt.Errorf("%s %q references %s %q, which is not of the import", dangling.Kind, dangling.ID, dangling.RefKind, dangling.Ref)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("check references: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL enable_nestloop = on"); err != nil {
		return fmt.Errorf("check references: %w", err)
	}
	s.log.Info("import: references checked", "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// danglingReferenceQuery finds a reference that checkSkippedReferences
// refuses, if there is one.
const danglingReferenceQuery = `WITH tx AS (SELECT pg_current_xact_id()::xid AS xid)
SELECT * FROM (
    SELECT 'resource' AS kind, r.id, 'organization' AS ref_kind, r.organization_id AS ref FROM resources r, tx
    WHERE r.xmin = tx.xid AND r.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT FROM organizations o WHERE o.id = r.organization_id AND o.xmin = tx.xid)
    UNION ALL
    SELECT 'resource', r.id, 'resource type', r.type FROM resources r, tx
    WHERE r.xmin = tx.xid AND r.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT FROM resource_types t WHERE t.slug = r.type AND t.xmin = tx.xid)
    UNION ALL
    SELECT 'resource', r.id, 'parent resource', r.parent_id FROM resources r, tx
    WHERE r.xmin = tx.xid AND r.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT FROM resources p WHERE p.id = r.parent_id AND p.organization_id = r.organization_id AND p.xmin = tx.xid)
    UNION ALL
    SELECT 'assignment', a.id, 'membership', a.membership_id FROM role_assignments a, tx
    WHERE a.xmin = tx.xid
      AND NOT EXISTS (SELECT FROM organization_memberships m WHERE m.id = a.membership_id AND m.xmin = tx.xid)
    UNION ALL
    SELECT 'assignment', a.id, 'role', a.role_slug FROM role_assignments a, tx
    WHERE a.xmin = tx.xid
      AND NOT EXISTS (SELECT FROM roles o WHERE o.id = a.role_id AND o.slug = a.role_slug AND o.xmin = tx.xid)
    UNION ALL
    SELECT 'assignment', a.id, 'resource', a.resource_id FROM role_assignments a, tx
    WHERE a.xmin = tx.xid
      AND NOT EXISTS (SELECT FROM resources x WHERE x.id = a.resource_id AND x.xmin = tx.xid)
) dangling LIMIT 1`
