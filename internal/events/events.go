// Package events serves Trellis's change stream from the event log that
// PostgreSQL keeps (migration 0005_events of package postgres): every
// committed change of relationship data is one event with a position, the
// revision it committed at, a type and the entity's state at that commit
// in the WorkOS wire shape.
//
// Three surfaces read the one log: the WorkOS Events API (GET /events),
// signed webhooks (WorkOS's /webhook_endpoints API and a Deliverer that
// posts each event, in order, to every endpoint that wants it) and a native
// Server-Sent Events watch (GET /v1/watch). All of them resume from a
// position: the log is durable, so a consumer that crashed, or a Trellis
// that restarted, continues where it stopped.
//
// # Ordering
//
// Positions are allocated at commit under the revision lock, so they become
// visible in position order: a reader that has seen position p never later
// finds a new event below p. They may have gaps and never repeat. Events of
// one transaction share its revision, which a client can pass to a decision
// as consistency.at_least_revision to read its own writes.
//
// # Event types
//
// Where WorkOS defines the entity, the type is WorkOS's:
// organization.created|updated|deleted,
// organization_membership.created|updated|deleted, permission.*, role.*
// (environment roles) and organization_role.* (an organization's roles),
// with data as the @workos-inc/node deserializers read it. Entities WorkOS
// has no events for are namespaced under trellis.:
// trellis.authorization_resource.*, trellis.role_assignment.*,
// trellis.resource_type.*, trellis.group_member.* and
// trellis.group_role_assignment.* (group.* is WorkOS's), their data the object the WorkOS-compatible API
// answers for them. Kinds lists them all.
package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is one entity kind of the event log.
type Kind struct {
	// Entity is the kind's name in the change log and the watch's kind
	// filter: organization, membership, ….
	Entity string
	// Prefixes are the event type prefixes of the kind (a role is role or
	// organization_role); each takes .created, .updated and .deleted.
	Prefixes []string
}

// Kinds are the entity kinds the log records. Adding one: its builders in
// the migration (see 0005_events.sql) and an entry here.
var Kinds = []Kind{
	{Entity: "organization", Prefixes: []string{"organization"}},
	{Entity: "membership", Prefixes: []string{"organization_membership"}},
	{Entity: "permission", Prefixes: []string{"permission"}},
	{Entity: "role", Prefixes: []string{"role", "organization_role"}},
	{Entity: "resource", Prefixes: []string{"trellis.authorization_resource"}},
	{Entity: "assignment", Prefixes: []string{"trellis.role_assignment"}},
	{Entity: "resource_type", Prefixes: []string{"trellis.resource_type"}},
	{Entity: "group", Prefixes: []string{"group"}},
	{Entity: "group_member", Prefixes: []string{"trellis.group_member"}},
	{Entity: "group_assignment", Prefixes: []string{"trellis.group_role_assignment"}},
}

// actions are the suffixes of every event type.
var actions = []string{"created", "updated", "deleted"}

// Types returns every event type, sorted.
func Types() []string {
	var out []string
	for _, k := range Kinds {
		for _, p := range k.Prefixes {
			for _, a := range actions {
				out = append(out, p+"."+a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// KnownType reports whether t is an event type of the log.
func KnownType(t string) bool {
	_, found := slices.BinarySearch(knownTypes, t)
	return found
}

var knownTypes = Types()

// KnownEntity reports whether e is the Entity of one of Kinds.
func KnownEntity(e string) bool {
	return slices.ContainsFunc(Kinds, func(k Kind) bool { return k.Entity == e })
}

// Event is one entry of the log.
type Event struct {
	// Position orders the log; it only grows (see the package doc).
	Position int64
	// Revision is the revision of the transaction that made the change.
	Revision int64
	// Type is e.g. organization_membership.created.
	Type string
	// Entity is the Kind's Entity, EntityID the entity's id (its slug for
	// permissions and resource types, its id for roles).
	Entity, EntityID string
	// OrganizationID is the entity's organization, "" for what every
	// organization shares.
	OrganizationID string
	// Data is the entity's WorkOS wire object at that commit (its last
	// state for a delete).
	Data json.RawMessage
	// CreatedAt is when the change committed.
	CreatedAt time.Time
}

// idPrefix starts every event id.
const idPrefix = "event_"

// ID is the event's id, event_<position>: the cursor of GET /events.
func (e Event) ID() string { return idPrefix + strconv.FormatInt(e.Position, 10) }

// ParseID returns the position of an event id made by Event.ID.
func ParseID(id string) (int64, error) {
	digits, ok := strings.CutPrefix(id, idPrefix)
	p, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || p < 0 || digits != strconv.FormatInt(p, 10) {
		return 0, fmt.Errorf("%q is not an event id (event_<position>)", id)
	}
	return p, nil
}

// wireEvent is the WorkOS event object.
type wireEvent struct {
	Object    string          `json:"object"`
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	CreatedAt string          `json:"created_at"`
	Context   wireContext     `json:"context"`
}

// wireContext is Trellis's part of an event's context: where it is in the
// log and the revision to read one's own writes at.
type wireContext struct {
	Position       int64   `json:"position"`
	Revision       int64   `json:"revision"`
	OrganizationID *string `json:"organization_id"`
}

// timeFormat is how WorkOS writes timestamps: ISO 8601 in UTC with
// milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

// MarshalJSON encodes the event as the WorkOS event object: object, id,
// event, data, created_at and context (position, revision,
// organization_id).
func (e Event) MarshalJSON() ([]byte, error) {
	var org *string
	if e.OrganizationID != "" {
		org = &e.OrganizationID
	}
	return json.Marshal(wireEvent{
		Object: "event", ID: e.ID(), Event: e.Type, Data: e.Data,
		CreatedAt: e.CreatedAt.UTC().Format(timeFormat),
		Context:   wireContext{Position: e.Position, Revision: e.Revision, OrganizationID: org},
	})
}
