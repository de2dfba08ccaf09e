package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/pgtest"
)

// TestCheckSkippedReferences: rows copied without their row triggers are
// refused when a reference does not name a row of the same transaction,
// whether it dangles or names a row already in the database; the
// references of a consistent set of rows pass.
func TestCheckSkippedReferences(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.URL(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Rows of an earlier transaction, which the import must not reference.
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO organizations (id, name, root_resource_id) VALUES ('org_old', 'Old', 'root_old');
		INSERT INTO resource_types (slug, name) VALUES ('doc', 'Doc');
		INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_old', 'org_old', 'doc', 'old', 'Old', 'root_old');
		INSERT INTO organization_memberships (id, user_id, organization_id, status) VALUES ('om_old', 'u', 'org_old', 'active');
		INSERT INTO roles (id, slug, resource_type, name) VALUES ('role_old', 'viewer', 'doc', 'Viewer')`); err != nil {
		t.Fatal(err)
	}
	// The rows a transaction copies before the check: an organization
	// with a resource type, a resource, a membership and a role.
	const imported = `
		INSERT INTO organizations (id, name, root_resource_id) VALUES ('org_new', 'New', 'root_new');
		INSERT INTO resource_types (slug, name) VALUES ('folder', 'Folder');
		INSERT INTO organization_memberships (id, user_id, organization_id, status) VALUES ('om_new', 'u', 'org_new', 'active');
		INSERT INTO roles (id, slug, resource_type, name) VALUES ('role_new', 'editor', 'folder', 'Editor');
		SET LOCAL session_replication_role = replica;
		INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_new', 'org_new', 'folder', 'new', 'New', 'root_new');`
	cases := []struct {
		name   string
		copied string // what is copied without row triggers besides res_new
		want   string // in the error; "" for none
	}{
		{"consistent", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_new', 'role_new', 'editor', 'res_new')`, ""},
		{"dangling parent", `INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_x', 'org_new', 'folder', 'x', 'X', 'res_gone')`,
			`resource "res_x" references parent resource "res_gone"`},
		{"parent of another organization", `INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_x', 'org_new', 'folder', 'x', 'X', 'res_old')`,
			`resource "res_x" references parent resource "res_old"`},
		{"organization in the database", `INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_x', 'org_old', 'folder', 'x', 'X', 'root_old')`,
			`resource "res_x" references organization "org_old"`},
		{"resource type in the database", `INSERT INTO resources (id, organization_id, type, external_id, name, parent_id) VALUES ('res_x', 'org_new', 'doc', 'x', 'X', 'root_new')`,
			`resource "res_x" references resource type "doc"`},
		{"membership in the database", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_old', 'role_new', 'editor', 'res_new')`,
			`assignment "ra" references membership "om_old"`},
		{"role in the database", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_new', 'role_old', 'viewer', 'res_new')`,
			`assignment "ra" references role "viewer"`},
		{"role slug not the role's", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_new', 'role_new', 'viewer', 'res_new')`,
			`assignment "ra" references role "viewer"`},
		{"dangling resource", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_new', 'role_new', 'editor', 'res_gone')`,
			`assignment "ra" references resource "res_gone"`},
		{"resource in the database", `INSERT INTO role_assignments (id, membership_id, role_id, role_slug, resource_id) VALUES ('ra', 'om_new', 'role_new', 'editor', 'res_old')`,
			`assignment "ra" references resource "res_old"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx, err := s.db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			mustExec(t, tx, imported)
			mustExec(t, tx, c.copied)
			err = s.checkSkippedReferences(ctx, tx)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("checkSkippedReferences = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("checkSkippedReferences = %v, want an error with %q", err, c.want)
			}
			var role string
			if err := tx.GetContext(ctx, &role, "SHOW session_replication_role"); err != nil || role != "origin" {
				t.Errorf("session_replication_role %q (%v) after the check, want origin", role, err)
			}
		})
	}
}

func mustExec(t *testing.T, tx *sqlx.Tx, q string) {
	t.Helper()
	if _, err := tx.Exec(q); err != nil {
		t.Fatal(err)
	}
}
