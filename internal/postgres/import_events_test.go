package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
)

// TestImportEventsAreTheRowBuilders: every event an import makes, of every
// kind, is the one the row builders (trellis_event_data, trellis_event_type,
// trellis_event_organization_id) make of the row it imported, timestamps
// included, and every row imported has its event. Import builds the large
// kinds' events itself (emitImportEvents); this pins them to the one
// definition the writes use. The dataset has what the builders treat
// apart: descriptions empty and not, attributes, a parent named by the
// organization root's id, assignments on an organization root, groups.
func TestImportEventsAreTheRowBuilders(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 3, Resources: 300, Assignments: 200,
		MembershipsPerOrg: 10, GroupsPerOrg: 2, GroupAssignmentRatio: 0.2})
	org := ds.Organizations[0]
	ds.Roles = append(ds.Roles, model.Role{Slug: "edge_admin", Name: "Admin", ResourceType: model.OrganizationType})
	ds.Resources = append(ds.Resources,
		model.Resource{ID: "res_edge_a", OrganizationID: org.ID, Type: ds.Resources[0].Type, ExternalID: "edge-a",
			Name: "Edge <a> & \"b\"", Description: "described", ParentID: org.RootID(),
			Attributes: model.Attributes{"tier": "gold", "seats": json.Number("12"), "tags": []any{"x", "y"}}},
		model.Resource{ID: "res_edge_b", OrganizationID: org.ID, Type: ds.Resources[0].Type, ExternalID: "edge-b",
			Name: "Edge b", Attributes: model.Attributes{}})
	var member string
	for _, m := range ds.Memberships {
		if m.OrganizationID == org.ID {
			member = m.ID
			break
		}
	}
	ds.Assignments = append(ds.Assignments,
		model.Assignment{ID: "ra_edge_root", MembershipID: member, RoleSlug: "edge_admin", ResourceID: org.RootID()})
	if _, err := s.Import(ctx, ds); err != nil {
		t.Fatal(err)
	}

	kinds := []struct{ entity, table, cond string }{
		{"organization", "organizations", "true"},
		{"resource_type", "resource_types", "slug <> 'organization'"},
		{"permission", "permissions", "true"},
		{"role", "roles", "true"},
		{"membership", "organization_memberships", "true"},
		{"resource", "resources", "parent_id IS NOT NULL"},
		{"assignment", "role_assignments", "true"},
		{"group", "groups", "true"},
		{"group_member", "group_members", "true"},
		{"group_assignment", "group_role_assignments", "true"},
	}
	var total int
	for _, k := range kinds {
		t.Run(k.entity, func(t *testing.T) {
			var got struct {
				Rows    int    `db:"rows"`
				Missing int    `db:"missing"`
				Differ  int    `db:"differ"`
				Example string `db:"example"`
			}
			q := fmt.Sprintf(`WITH r AS (SELECT to_jsonb(t) AS r FROM %s t WHERE %s),
				pair AS (SELECT e, trellis_event_data($1, r) AS data, trellis_event_type($1, r, 'created') AS type,
				                trellis_event_organization_id($1, r) AS org
				         FROM r LEFT JOIN events e ON e.entity = $1 AND e.entity_id = coalesce(r->>'id', r->>'slug', trellis_event_key($1, r)))
				SELECT count(*) AS rows, count(*) FILTER (WHERE (e).position IS NULL) AS missing,
				       count(*) FILTER (WHERE (e).data <> data OR (e).type <> type OR (e).organization_id IS DISTINCT FROM org) AS differ,
				       coalesce(min(format('%%s %%s %%s, builders %%s %%s %%s', (e).type, (e).organization_id, (e).data, type, org, data))
				                FILTER (WHERE (e).data <> data OR (e).type <> type OR (e).organization_id IS DISTINCT FROM org), '') AS example
				FROM pair`, k.table, k.cond)
			if err := s.DB().GetContext(ctx, &got, q, k.entity); err != nil {
				t.Fatal(err)
			}
			if got.Rows == 0 {
				t.Fatalf("no %s imported", k.entity)
			}
			if got.Missing != 0 || got.Differ != 0 {
				t.Errorf("%d %s rows: %d without their event, %d whose event is not the builders'; e.g. %s",
					got.Rows, k.entity, got.Missing, got.Differ, got.Example)
			}
			total += got.Rows
		})
	}
	var events int
	if err := s.DB().GetContext(ctx, &events, "SELECT count(*) FROM events"); err != nil {
		t.Fatal(err)
	}
	if events != total {
		t.Errorf("%d events, want one for each of the %d rows imported", events, total)
	}
}
