package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// progressEvery is how many rows of one table pass between two progress
// log lines during a snapshot.
const progressEvery = 250_000

// Snapshot reads the whole relationship data in one consistent snapshot
// (a REPEATABLE READ, read-only transaction) and returns it with the
// revision it reflects: every revision up to Dataset.Revision is in it and
// none after. It logs rows, rate and elapsed time per table. The data is
// as stored, unchecked: model.Dataset.Isolate holds out the organizations
// whose data breaks a rule. The caller owns the returned Dataset.
func (s *Store) Snapshot(ctx context.Context) (*model.Dataset, error) {
	var ds *model.Dataset
	start := time.Now()
	err := s.ReadTx(ctx, func(tx *sqlx.Tx) error {
		// Revisions become visible in order (see the package doc), so the
		// newest visible revision is exactly what this snapshot holds.
		var rev int64
		if err := tx.GetContext(ctx, &rev, "SELECT coalesce(max(revision), 0) FROM change_revisions"); err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		var err error
		ds, err = s.readDataset(ctx, tx, "")
		if ds != nil {
			ds.Revision = rev
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot: %w", err)
	}
	s.log.Info("snapshot loaded", "revision", ds.Revision,
		"organizations", len(ds.Organizations), "memberships", len(ds.Memberships),
		"resources", len(ds.Resources), "assignments", len(ds.Assignments),
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	return ds, nil
}

// readDataset reads, in transaction tx, the data every organization
// shares (resource types, permissions, environment roles) and the rows of
// organization org, or of every organization when org is "": the
// organization, its roles, memberships, resources, and the assignments of
// its memberships or on its resources. Revision is left 0.
func (s *Store) readDataset(ctx context.Context, tx *sqlx.Tx, org string) (*model.Dataset, error) {
	ds := &model.Dataset{MaxDepth: s.maxDepth}
	// Each query reads one table; with an organization it gets a filter
	// on it ($1) appended.
	steps := []struct {
		table, query, filter string
		scan                 func(*sql.Rows) error
	}{
		{"organizations", `SELECT id, name, root_resource_id, attributes FROM organizations`, ` WHERE id = $1`, func(r *sql.Rows) error {
			var o model.Organization
			var root string
			if err := r.Scan(&o.ID, &o.Name, &root, (*AttributesColumn)(&o.Attributes)); err != nil {
				return err
			}
			if root != model.RootResourceID(o.ID) {
				o.RootResourceID = root
			}
			ds.Organizations = append(ds.Organizations, o)
			return nil
		}},
		{"resource_types", `SELECT t.slug, t.name, t.description,
				coalesce(array_agg(p.parent_type ORDER BY p.parent_type) FILTER (WHERE p.parent_type IS NOT NULL), '{}')
			FROM resource_types t LEFT JOIN resource_type_parents p ON p.resource_type = t.slug
			WHERE t.slug <> 'organization' GROUP BY t.slug`, ``, func(r *sql.Rows) error {
			var t model.ResourceType
			if err := r.Scan(&t.Slug, &t.Name, &t.Description, pq.Array(&t.ParentTypes)); err != nil {
				return err
			}
			ds.ResourceTypes = append(ds.ResourceTypes, t)
			return nil
		}},
		{"permissions", `SELECT slug, name, description, resource_type FROM permissions`, ``, func(r *sql.Rows) error {
			var p model.Permission
			if err := r.Scan(&p.Slug, &p.Name, &p.Description, &p.ResourceType); err != nil {
				return err
			}
			ds.Permissions = append(ds.Permissions, p)
			return nil
		}},
		{"roles", `SELECT r.slug, r.name, r.description, r.resource_type, coalesce(r.organization_id, ''),
				coalesce(array_agg(p.slug ORDER BY p.slug) FILTER (WHERE p.slug IS NOT NULL), '{}')
			FROM roles r LEFT JOIN role_permissions rp ON rp.role_id = r.id LEFT JOIN permissions p ON p.id = rp.permission_id`,
			` WHERE r.organization_id IS NULL OR r.organization_id = $1`, func(r *sql.Rows) error {
				var ro model.Role
				if err := r.Scan(&ro.Slug, &ro.Name, &ro.Description, &ro.ResourceType, &ro.OrganizationID, pq.Array(&ro.Permissions)); err != nil {
					return err
				}
				ds.Roles = append(ds.Roles, ro)
				return nil
			}},
		{"organization_memberships", `SELECT m.id, m.user_id, m.organization_id, m.status,
				coalesce(array_agg(r.slug ORDER BY r.slug) FILTER (WHERE r.slug IS NOT NULL), '{}')
			FROM organization_memberships m LEFT JOIN membership_roles mr ON mr.membership_id = m.id LEFT JOIN roles r ON r.id = mr.role_id`,
			` WHERE m.organization_id = $1`, func(r *sql.Rows) error {
				var m model.Membership
				if err := r.Scan(&m.ID, &m.UserID, &m.OrganizationID, &m.Status, pq.Array(&m.RoleSlugs)); err != nil {
					return err
				}
				ds.Memberships = append(ds.Memberships, m)
				return nil
			}},
		{"resources", `SELECT id, organization_id, type, external_id, name, description, parent_id, attributes
			FROM resources WHERE type <> 'organization'`, ` AND organization_id = $1`, func(r *sql.Rows) error {
			var res model.Resource
			if err := r.Scan(&res.ID, &res.OrganizationID, &res.Type, &res.ExternalID, &res.Name, &res.Description, &res.ParentID,
				(*AttributesColumn)(&res.Attributes)); err != nil {
				return err
			}
			ds.Resources = append(ds.Resources, res)
			return nil
		}},
		{"role_assignments", `SELECT id, membership_id, role_slug, resource_id FROM role_assignments`,
			` WHERE membership_id IN (SELECT id FROM organization_memberships WHERE organization_id = $1)
				OR resource_id IN (SELECT id FROM resources WHERE organization_id = $1)`, func(r *sql.Rows) error {
				var a model.Assignment
				if err := r.Scan(&a.ID, &a.MembershipID, &a.RoleSlug, &a.ResourceID); err != nil {
					return err
				}
				ds.Assignments = append(ds.Assignments, a)
				return nil
			}},
		{"groups", `SELECT id, organization_id, name, description FROM groups`, ` WHERE organization_id = $1`, func(r *sql.Rows) error {
			var g model.Group
			if err := r.Scan(&g.ID, &g.OrganizationID, &g.Name, &g.Description); err != nil {
				return err
			}
			ds.Groups = append(ds.Groups, g)
			return nil
		}},
		{"group_members", `SELECT group_id, membership_id FROM group_members`, ` WHERE organization_id = $1`, func(r *sql.Rows) error {
			var gm model.GroupMember
			if err := r.Scan(&gm.GroupID, &gm.MembershipID); err != nil {
				return err
			}
			ds.GroupMembers = append(ds.GroupMembers, gm)
			return nil
		}},
		{"group_role_assignments", `SELECT id, group_id, role_slug, resource_id FROM group_role_assignments`,
			` WHERE group_id IN (SELECT id FROM groups WHERE organization_id = $1)
				OR resource_id IN (SELECT id FROM resources WHERE organization_id = $1)`, func(r *sql.Rows) error {
				var a model.Assignment
				if err := r.Scan(&a.ID, &a.GroupID, &a.RoleSlug, &a.ResourceID); err != nil {
					return err
				}
				ds.Assignments = append(ds.Assignments, a)
				return nil
			}},
	}
	// GROUP BY comes after the filter; ORDER BY keeps snapshots in the
	// order they always had.
	order := map[string]string{
		"organizations": " ORDER BY id", "resource_types": " ORDER BY t.slug", "permissions": " ORDER BY slug",
		"roles": " GROUP BY r.id ORDER BY r.organization_id NULLS FIRST, r.slug", "organization_memberships": " GROUP BY m.id",
	}
	for _, st := range steps {
		query, args := st.query, []any(nil)
		if org != "" && st.filter != "" {
			query, args = query+st.filter, []any{org}
		}
		query += order[st.table]
		if err := s.scanTable(ctx, tx, st.table, query, args, st.scan, org == ""); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// scanTable runs query with args in tx and hands each row to scan,
// logging its progress when verbose.
func (s *Store) scanTable(ctx context.Context, tx *sqlx.Tx, table, query string, args []any, scan func(*sql.Rows) error, verbose bool) error {
	start := time.Now()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		n++
		if verbose && n%progressEvery == 0 {
			s.log.Info("snapshot progress", "table", table, "rows", n,
				"rows_per_second", rate(n, time.Since(start)), "elapsed", time.Since(start).Round(time.Millisecond).String())
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	if verbose {
		s.log.Info("snapshot table read", "table", table, "rows", n,
			"rows_per_second", rate(n, time.Since(start)), "elapsed", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

func rate(n int, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}
