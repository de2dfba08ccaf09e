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
// returned revision (migration 0009_import_events); an organization role of the dataset whose slug is an
// environment role's in the database, or the reverse, is an error too. Like
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
		if _, err := tx.ExecContext(ctx, "SET LOCAL trellis.bulk = 'on'"); err != nil {
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
		if err := s.copyRows(ctx, tx, count, "role_assignments", []string{"id", "membership_id", "role_id", "resource_id"}, len(direct), func(i int) []any {
			a := direct[i]
			return []any{a.ID, a.MembershipID, roleID(memberOrg[a.MembershipID], a.RoleSlug), a.ResourceID}
		}); err != nil {
			return err
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
		var n int64
		if err := tx.GetContext(ctx, &n, "SELECT trellis_emit_import_events($1)", rev); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		events = n
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
