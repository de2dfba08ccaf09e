package events_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestImportMakesTheEventsOfItsWrites imports the demo dataset into one
// database and writes the same entities through Write into another: the
// import must make the same events (each entity's <kind>.created with its
// state at commit), all at the import's revision, at consecutive positions.
func TestImportMakesTheEventsOfItsWrites(t *testing.T) {
	ctx := context.Background()
	ds := withGroup(datafile.Demo())

	imported := migrated(t, pgtest.URL(t))
	rev, err := imported.Import(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	got := allEvents(t, imported)
	for i, e := range got {
		if e.Revision != rev {
			t.Fatalf("event %d (%s) at revision %d, want the import's %d", e.Position, e.Type, e.Revision, rev)
		}
		if i > 0 && e.Position != got[i-1].Position+1 {
			t.Fatalf("positions %d then %d, want consecutive", got[i-1].Position, e.Position)
		}
	}
	if len(got) == 0 || got[0].Type != "organization.created" {
		t.Fatalf("first imported event = %+v, want organization.created", got[:min(1, len(got))])
	}

	types := map[string]bool{}
	for _, e := range got {
		types[e.Type] = true
	}
	for _, typ := range []string{"organization_membership.created", "role.created", "trellis.role_assignment.created",
		"group.created", "group.member_added", "trellis.group_role_assignment.created"} {
		if !types[typ] {
			t.Errorf("the import made no %s event", typ)
		}
	}

	written := migrated(t, pgtest.URL(t))
	if _, err := written.Write(ctx, datasetChanges(ds)); err != nil {
		t.Fatal(err)
	}
	want := allEvents(t, written)
	if diff := cmp.Diff(eventLines(t, want), eventLines(t, got)); diff != "" {
		t.Errorf("import events differ from the events of the same writes (-written +imported):\n%s", diff)
	}
}

// withGroup adds to ds a group with one member, holding the role of the
// member's first assignment on the same resource.
func withGroup(ds *model.Dataset) *model.Dataset {
	a := ds.Assignments[0]
	org := ""
	for _, m := range ds.Memberships {
		if m.ID == a.MembershipID {
			org = m.OrganizationID
		}
	}
	ds.Groups = append(ds.Groups, model.Group{ID: "group_import", OrganizationID: org, Name: "Importers"})
	ds.GroupMembers = append(ds.GroupMembers, model.GroupMember{GroupID: "group_import", MembershipID: a.MembershipID})
	ds.Assignments = append(ds.Assignments, model.Assignment{ID: "ra_group_import", GroupID: "group_import",
		RoleSlug: a.RoleSlug, ResourceID: a.ResourceID})
	return ds
}

// migrated opens and migrates the database at dsn.
func migrated(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func allEvents(t *testing.T, s *postgres.Store) []events.Event {
	t.Helper()
	l := events.NewLog(s.DB())
	var all []events.Event
	for {
		var after int64
		if len(all) > 0 {
			after = all[len(all)-1].Position
		}
		page, err := l.List(context.Background(), events.Query{After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// eventLines renders events as sorted "type data" lines without what two
// databases cannot share: timestamps, the ids they generate for roles and
// permissions, and the order of a role's permissions (a set).
func eventLines(t *testing.T, es []events.Event) []string {
	t.Helper()
	var lines []string
	for _, e := range es {
		var data any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(normalize(data))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, e.Type+" "+string(b))
	}
	slices.Sort(lines)
	return lines
}

func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if ps, ok := x.([]any); ok && k == "permissions" {
				slices.SortFunc(ps, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
			}
			if k == "created_at" || k == "updated_at" {
				delete(v, k)
				continue
			}
			if s, ok := x.(string); ok && (strings.HasPrefix(s, "role_") || strings.HasPrefix(s, "perm_")) {
				v[k] = "<generated>"
				continue
			}
			v[k] = normalize(x)
		}
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
	}
	return v
}

// datasetChanges is ds as one write: every entity upserted, referenced
// entities first.
func datasetChanges(ds *model.Dataset) []model.Change {
	var cs []model.Change
	cs = upserts(cs, ds.ResourceTypes, func(x *model.ResourceType) model.Change { return model.Change{ResourceType: x} })
	cs = upserts(cs, ds.Permissions, func(x *model.Permission) model.Change { return model.Change{Permission: x} })
	cs = upserts(cs, ds.Organizations, func(x *model.Organization) model.Change { return model.Change{Organization: x} })
	cs = upserts(cs, ds.Roles, func(x *model.Role) model.Change { return model.Change{Role: x} })
	cs = upserts(cs, ds.Memberships, func(x *model.Membership) model.Change { return model.Change{Membership: x} })
	cs = upserts(cs, ds.Resources, func(x *model.Resource) model.Change { return model.Change{Resource: x} })
	cs = upserts(cs, ds.Groups, func(x *model.Group) model.Change { return model.Change{Group: x} })
	cs = upserts(cs, ds.GroupMembers, func(x *model.GroupMember) model.Change { return model.Change{GroupMember: x} })
	return upserts(cs, ds.Assignments, func(x *model.Assignment) model.Change { return model.Change{Assignment: x} })
}

// upserts appends an upsert of each of xs, as change makes it, to cs.
func upserts[T any](cs []model.Change, xs []T, change func(*T) model.Change) []model.Change {
	for i := range xs {
		c := change(&xs[i])
		c.Op = model.OpUpsert
		cs = append(cs, c)
	}
	return cs
}
