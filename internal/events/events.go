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
// (environment roles), organization_role.* (an organization's roles),
// group.created|updated|deleted and group.member_added|member_removed,
// with data as the @workos-inc/node deserializers read it. Entities WorkOS
// has no events for are namespaced under trellis.:
// trellis.authorization_resource.*, trellis.role_assignment.*,
// trellis.resource_type.* and trellis.group_role_assignment.*, their data
// the object the WorkOS-compatible API answers for them. Kinds lists them
// all.
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
	// Types are the kind's event types.
	Types []string
}

// crud returns the types prefix.created, prefix.updated and prefix.deleted
// of each prefix.
func crud(prefixes ...string) []string {
	var out []string
	for _, p := range prefixes {
		out = append(out, p+".created", p+".updated", p+".deleted")
	}
	return out
}

// Kinds are the entity kinds the log records. Adding one: its builders in
// the migration (see 0005_events.sql) and an entry here.
var Kinds = []Kind{
	{Entity: "organization", Types: crud("organization")},
	{Entity: "membership", Types: crud("organization_membership")},
	{Entity: "permission", Types: crud("permission")},
	{Entity: "role", Types: crud("role", "organization_role")},
	{Entity: "resource", Types: crud("trellis.authorization_resource")},
	{Entity: "assignment", Types: crud("trellis.role_assignment")},
	{Entity: "resource_type", Types: crud("trellis.resource_type")},
	{Entity: "group", Types: crud("group")},
	{Entity: "group_member", Types: []string{"group.member_added", "group.member_removed"}},
	{Entity: "group_assignment", Types: crud("trellis.group_role_assignment")},
}

// Types returns every event type, sorted.
func Types() []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, k.Types...)
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
