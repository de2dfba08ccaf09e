package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// importedRows is what emitImportEvents needs of the rows Import copied.
type importedRows struct {
	ds *model.Dataset
	// roots is each organization's root resource id, by organization id.
	roots map[string]string
	// direct are the assignments of memberships, in the order copied.
	direct []model.Assignment
	// memberOrg is each membership's organization id, by membership id.
	memberOrg map[string]string
}

// emitImportEvents makes the import's <kind>.created events at rev, at
// consecutive positions, in the order a reader needs them (an organization
// before its roles, memberships and resources, a resource's parent before
// it, a resource before its assignments, direct or of a group) and returns
// how many.
// The resources' and assignments' events, nearly all of a large import's,
// are built here from the values copied and copied into events; the other
// kinds are few and built by trellis_emit_import_events
// (0016_import_events_copied.sql) from the rows. It must run after
// trellis_mark_resync, whose revision lock keeps every other writer from
// taking positions until the import commits, so that the positions it
// reserves are its alone. trellis.events = off skips it, as it skips every
// event.
func (s *Store) emitImportEvents(ctx context.Context, tx *sqlx.Tx, rev int64, in importedRows) (int64, error) {
	start := time.Now()
	var off bool
	if err := tx.GetContext(ctx, &off, "SELECT coalesce(current_setting('trellis.events', true), '') = 'off'"); err != nil || off {
		return 0, err
	}
	n, err := emitSQLEvents(ctx, tx, rev, "organization", "resource_type", "permission", "role", "membership")
	if err != nil {
		return 0, err
	}
	// The copied rows' created_at and updated_at are their columns' default,
	// now() (the transaction's start): formatted once, as the row builders
	// format them (trellis_event_ts). at is the events' own created_at.
	var ts struct {
		Rows string `db:"rows"`
		At   string `db:"at"`
	}
	if err := tx.GetContext(ctx, &ts, "SELECT trellis_event_ts(now()) AS rows, clock_timestamp()::text AS at"); err != nil {
		return 0, err
	}
	resources := in.ds.Resources
	if err := s.copyEvents(ctx, tx, rev, ts.At, "resource", len(resources), func(i int) (string, string, any) {
		r := resources[i]
		return r.ID, r.OrganizationID, resourceEvent(r, in.roots[r.OrganizationID], ts.Rows)
	}); err != nil {
		return 0, err
	}
	// An assignment's event names its resource: one of the dataset's, or
	// else an organization's root (model.Dataset.Validate checked it is
	// one of the two).
	resourceAt := make(map[string]int32, len(resources))
	for i, r := range resources {
		resourceAt[r.ID] = int32(i)
	}
	rootOrg := make(map[string]string, len(in.roots))
	for org, root := range in.roots {
		rootOrg[root] = org
	}
	if err := s.copyEvents(ctx, tx, rev, ts.At, "assignment", len(in.direct), func(i int) (string, string, any) {
		a := in.direct[i]
		ref := resourceRef{ID: a.ResourceID, ExternalID: rootOrg[a.ResourceID], Type: model.OrganizationType}
		if at, ok := resourceAt[a.ResourceID]; ok {
			ref.ExternalID, ref.Type = resources[at].ExternalID, resources[at].Type
		}
		return a.ID, in.memberOrg[a.MembershipID], assignmentData{
			Object: "role_assignment", ID: a.ID, MembershipID: a.MembershipID,
			Role: roleRef{Slug: a.RoleSlug}, Resource: ref, Source: assignmentSource{Type: "direct"},
			CreatedAt: ts.Rows, UpdatedAt: ts.Rows,
		}
	}); err != nil {
		return 0, err
	}
	k, err := emitSQLEvents(ctx, tx, rev, "group", "group_member", "group_assignment")
	if err != nil {
		return 0, err
	}
	n += int64(len(resources)+len(in.direct)) + k
	s.log.Info("import: events made", "events", n, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return n, nil
}

// emitSQLEvents makes the events of the given kinds of the import with
// trellis_emit_import_events and returns how many.
func emitSQLEvents(ctx context.Context, tx *sqlx.Tx, rev int64, kinds ...string) (int64, error) {
	var n int64
	if err := tx.GetContext(ctx, &n, "SELECT trellis_emit_import_events($1, $2)", rev, pq.Array(kinds)); err != nil {
		return 0, fmt.Errorf("events of %v: %w", kinds, err)
	}
	return n, nil
}

// copyEvents copies n <entity>.created events at rev, made at at, to the
// next n positions, event(i) giving the entity id, organization id and
// data (marshalled to JSON) of event i.
func (s *Store) copyEvents(ctx context.Context, tx *sqlx.Tx, rev int64, at, entity string, n int, event func(i int) (id, org string, data any)) error {
	if n == 0 {
		return nil
	}
	var ev struct {
		Last int64  `db:"last"`
		Type string `db:"type"`
	}
	if err := tx.GetContext(ctx, &ev, `SELECT setval('event_position_seq', nextval('event_position_seq') + $1 - 1) AS last,
		trellis_event_type($2, NULL, 'created') AS type`, n, entity); err != nil {
		return fmt.Errorf("%s events: %w", entity, err)
	}
	first := ev.Last - int64(n) + 1
	var failed error
	uncounted := &importCount{report: func(int64, int64) {}} // events are not rows of ImportOptions.Progress
	err := s.copyRows(ctx, tx, uncounted, "events", []string{"position", "revision", "type", "entity", "entity_id", "organization_id", "data", "created_at"}, n, func(i int) []any {
		id, org, data := event(i)
		b, err := json.Marshal(data)
		if err != nil && failed == nil {
			failed = fmt.Errorf("%s %q event: %w", entity, id, err)
		}
		var orgID any
		if org != "" {
			orgID = org
		}
		return []any{first + int64(i), rev, ev.Type, entity, id, orgID, string(b), at}
	})
	if failed != nil {
		return failed
	}
	return err
}

// resourceData is the event data of a resource, as
// trellis_event_resource_of makes it (0015_set_based_import_events.sql).
type resourceData struct {
	Object           string          `json:"object"`
	ID               string          `json:"id"`
	ExternalID       string          `json:"external_id"`
	Name             string          `json:"name"`
	Description      *string         `json:"description"`
	Type             string          `json:"resource_type_slug"`
	OrganizationID   string          `json:"organization_id"`
	ParentResourceID *string         `json:"parent_resource_id"`
	CreatedAt        string          `json:"created_at"`
	UpdatedAt        string          `json:"updated_at"`
	Attributes       json.RawMessage `json:"attributes,omitempty"`
}

// resourceEvent is the event data of r, copied with its organization's
// root resource id root and created and updated at ts: the root (the
// default parent) is no parent, as the WorkOS API answers.
func resourceEvent(r model.Resource, root, ts string) resourceData {
	e := resourceData{
		Object: "authorization_resource", ID: r.ID, ExternalID: r.ExternalID, Name: r.Name, Type: r.Type,
		OrganizationID: r.OrganizationID, CreatedAt: ts, UpdatedAt: ts, Attributes: r.Attributes.JSON(),
	}
	if r.Description != "" {
		e.Description = &r.Description
	}
	if p := r.ParentID; p != "" && p != root && p != model.RootResourceID(r.OrganizationID) {
		e.ParentResourceID = &p
	}
	return e
}

// assignmentData is the event data of a direct assignment, as
// trellis_event_assignment_of makes it (0015_set_based_import_events.sql).
type assignmentData struct {
	Object       string           `json:"object"`
	ID           string           `json:"id"`
	MembershipID string           `json:"organization_membership_id"`
	Role         roleRef          `json:"role"`
	Resource     resourceRef      `json:"resource"`
	Source       assignmentSource `json:"source"`
	CreatedAt    string           `json:"created_at"`
	UpdatedAt    string           `json:"updated_at"`
}

type roleRef struct {
	Slug string `json:"slug"`
}

// resourceRef is a resource as an assignment's event names it
// (trellis_event_resource_ref_of).
type resourceRef struct {
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
	Type       string `json:"resource_type_slug"`
}

type assignmentSource struct {
	Type                  string  `json:"type"`
	GroupRoleAssignmentID *string `json:"group_role_assignment_id"`
}
