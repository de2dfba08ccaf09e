package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// importTables are the tables Import copies rows into.
var importTables = []string{
	"organizations", "resource_types", "resource_type_parents", "permissions", "roles", "role_permissions",
	"organization_memberships", "membership_roles", "resources", "role_assignments",
	"groups", "group_members", "group_role_assignments",
}

// copiedRows counts the rows of importTables that an import copies: all
// but the organization roots, which a trigger inserts.
func copiedRows(t testing.TB, s *postgres.Store) int64 {
	t.Helper()
	var sum int64
	for _, table := range importTables {
		q := "SELECT count(*) FROM " + table
		if table == "resources" {
			q += " WHERE id NOT IN (SELECT root_resource_id FROM organizations)"
		}
		var n int64
		if err := s.DB().GetContext(context.Background(), &n, q); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}

// TestImportProgress: ImportWith reports from 0 to the rows it wrote, as
// counted in the database, never skipping more than 10,000 rows and never
// reporting row by row.
func TestImportProgress(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 5, Resources: 25_000, Assignments: 12_000,
		MembershipsPerOrg: 20, GroupsPerOrg: 3, GroupAssignmentRatio: 0.2})
	before := copiedRows(t, s)
	type call struct{ done, total int64 }
	var calls []call
	if _, err := s.ImportWith(ctx, ds, postgres.ImportOptions{Progress: func(done, total int64) {
		calls = append(calls, call{done, total})
	}}); err != nil {
		t.Fatal(err)
	}
	rows := copiedRows(t, s) - before
	if len(calls) == 0 {
		t.Fatal("Progress was never called")
	}
	if got, want := calls[0], (call{0, rows}); got != want {
		t.Errorf("first call %+v, want %+v", got, want)
	}
	if got, want := calls[len(calls)-1], (call{rows, rows}); got != want {
		t.Errorf("last call %+v, want %+v (the rows imported)", got, want)
	}
	for i := 1; i < len(calls); i++ {
		prev, c := calls[i-1], calls[i]
		if c.total != rows || c.done < prev.done || c.done-prev.done > 10_000 {
			t.Errorf("call %d %+v after %+v, want total %d and at most 10,000 more rows", i, c, prev, rows)
		}
	}
	// One call to start, one per table and one per 10,000 rows of a table.
	if max := 1 + len(importTables) + int(rows/10_000); len(calls) > max {
		t.Errorf("%d calls for %d rows, want at most %d", len(calls), rows, max)
	}
	if len(calls) < int(rows/10_000) {
		t.Errorf("%d calls for %d rows, want one per 10,000 rows at least", len(calls), rows)
	}
}

// TestImportRefusesOverlap: a dataset valid on its own whose resource or
// assignment id is one the database already holds is refused, whether the
// import copies those tables with their row triggers or without, and
// nothing of it is written.
func TestImportRefusesOverlap(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	spec := gen.Spec{Seed: 1, Organizations: 2, Resources: 50, Assignments: 40, MembershipsPerOrg: 5}
	if _, err := s.Import(ctx, gen.Generate(spec)); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := copiedRows(t, s)
	old := gen.Generate(spec)
	cases := []struct {
		name       string
		resourceID string
		assignID   string
	}{
		{"resource id", old.Resources[0].ID, "ra_b"},
		{"assignment id", "res_b", old.Assignments[0].ID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := &model.Dataset{
				Organizations: []model.Organization{{ID: "org_b", Name: "B"}},
				ResourceTypes: []model.ResourceType{{Slug: "b_folder", Name: "Folder", ParentTypes: []string{model.OrganizationType}}},
				Roles:         []model.Role{{Slug: "b_editor", Name: "Editor", ResourceType: "b_folder"}},
				Memberships:   []model.Membership{{ID: "om_b", UserID: "user_b", OrganizationID: "org_b", Status: "active"}},
				Resources:     []model.Resource{{ID: c.resourceID, OrganizationID: "org_b", Type: "b_folder", ExternalID: "x", Name: "X"}},
				Assignments:   []model.Assignment{{ID: c.assignID, MembershipID: "om_b", RoleSlug: "b_editor", ResourceID: c.resourceID}},
			}
			if err := ds.Validate(); err != nil {
				t.Fatalf("the dataset is not valid on its own: %v", err)
			}
			if _, err := s.Import(ctx, ds); err == nil || !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("Import error = %v, want a duplicate key", err)
			}
			if got := copiedRows(t, s); got != before {
				t.Errorf("%d rows after a refused import, want %d", got, before)
			}
			if h, _ := s.Head(ctx); h != head {
				t.Errorf("head %d after a refused import, want %d", h, head)
			}
		})
	}
}

// TestImportWithoutReplicationRolePrivilege: a database role that may not
// set session_replication_role (not a superuser, no GRANT SET) imports
// with the row triggers on, the same rows and events.
func TestImportWithoutReplicationRolePrivilege(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	admin := openStore(t, dsn) // migrated by the superuser, so the plain role needs grants
	role := fmt.Sprintf("trellis_plain_%d", time.Now().UnixNano())
	if _, err := admin.DB().ExecContext(ctx, "CREATE ROLE "+role+" LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO "+role+
		"; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.DB().ExecContext(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE "+role)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	s, err := postgres.Open(ctx, u.String(), postgres.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var may bool
	if err := s.DB().GetContext(ctx, &may, "SELECT has_parameter_privilege('session_replication_role', 'SET')"); err != nil || may {
		t.Fatalf("the plain role may set session_replication_role: %v %v", may, err)
	}
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 2, Resources: 50, Assignments: 40, MembershipsPerOrg: 5})
	if _, err := s.Import(ctx, ds); err != nil {
		t.Fatal(err)
	}
	var resources, assignments, events int
	if err := s.DB().GetContext(ctx, &resources, "SELECT count(*) FROM resources WHERE parent_id IS NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().GetContext(ctx, &assignments, "SELECT count(*) FROM role_assignments WHERE role_slug <> ''"); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().GetContext(ctx, &events, "SELECT count(*) FROM events WHERE type IN ('trellis.authorization_resource.created', 'trellis.role_assignment.created')"); err != nil {
		t.Fatal(err)
	}
	if resources != len(ds.Resources) || assignments != len(ds.Assignments) || events != resources+assignments {
		t.Errorf("%d resources, %d assignments with their role slug, %d of their events; want %d, %d and their sum",
			resources, assignments, events, len(ds.Resources), len(ds.Assignments))
	}
}
