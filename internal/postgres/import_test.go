package postgres_test

import (
	"context"
	"testing"

	"github.com/trellis-authz/trellis/internal/gen"
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
