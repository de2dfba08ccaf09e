package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Log reads the event log and keeps the webhook endpoints of one
// PostgreSQL database migrated by package postgres. It is safe for
// concurrent use.
type Log struct {
	db *sqlx.DB
}

// NewLog returns a Log on db, which the caller keeps open (and closes).
func NewLog(db *sqlx.DB) *Log { return &Log{db: db} }

// Query selects events. Zero fields select everything.
type Query struct {
	// After is a position: with Desc false only later events, with Desc
	// true only earlier ones; 0 is none.
	After int64
	// Desc lists newest first.
	Desc bool
	// Types keeps only these event types; Entities only these kinds.
	Types, Entities []string
	// OrganizationID keeps only the events of one organization.
	OrganizationID string
	// RangeStart and RangeEnd keep only events committed in
	// [RangeStart, RangeEnd) (a zero bound is open).
	RangeStart, RangeEnd time.Time
	// Limit is the most events returned (default and maximum 1000).
	Limit int
}

// MaxLimit is the most events one List returns.
const MaxLimit = 1000

const selectEvents = `SELECT position, revision, type, entity, entity_id, coalesce(organization_id, '') AS organization_id, data, created_at FROM events`

type eventRow struct {
	Position       int64     `db:"position"`
	Revision       int64     `db:"revision"`
	Type           string    `db:"type"`
	Entity         string    `db:"entity"`
	EntityID       string    `db:"entity_id"`
	OrganizationID string    `db:"organization_id"`
	Data           []byte    `db:"data"`
	CreatedAt      time.Time `db:"created_at"`
}

func (r eventRow) event() Event {
	return Event{Position: r.Position, Revision: r.Revision, Type: r.Type, Entity: r.Entity, EntityID: r.EntityID,
		OrganizationID: r.OrganizationID, Data: r.Data, CreatedAt: r.CreatedAt}
}

// List returns the events q selects, in position order (reversed with
// Desc).
func (l *Log) List(ctx context.Context, q Query) ([]Event, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	switch {
	case q.After > 0 && q.Desc:
		where = append(where, "position < "+arg(q.After))
	case q.After > 0:
		where = append(where, "position > "+arg(q.After))
	}
	if len(q.Types) > 0 {
		where = append(where, "type = ANY("+arg(pq.StringArray(q.Types))+")")
	}
	if len(q.Entities) > 0 {
		where = append(where, "entity = ANY("+arg(pq.StringArray(q.Entities))+")")
	}
	if q.OrganizationID != "" {
		where = append(where, "organization_id = "+arg(q.OrganizationID))
	}
	if !q.RangeStart.IsZero() {
		where = append(where, "created_at >= "+arg(q.RangeStart))
	}
	if !q.RangeEnd.IsZero() {
		where = append(where, "created_at < "+arg(q.RangeEnd))
	}
	query := selectEvents
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	order := "ASC"
	if q.Desc {
		order = "DESC"
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	query += " ORDER BY position " + order + " LIMIT " + arg(limit)
	var rows []eventRow
	if err := l.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("events: list: %w", err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}

// Head returns the newest position, 0 on an empty log.
func (l *Log) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := l.db.GetContext(ctx, &head, "SELECT coalesce(max(position), 0) FROM events"); err != nil {
		return 0, fmt.Errorf("events: head: %w", err)
	}
	return head, nil
}

// DefaultRetention is how long events are kept by default.
const DefaultRetention = 30 * 24 * time.Hour

// Prune deletes the events committed before `before`, except those an
// enabled webhook endpoint has not received yet (they are kept until it
// has). It returns how many it deleted.
func (l *Log) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, `DELETE FROM events WHERE created_at < $1
		AND position <= (SELECT coalesce(min(delivered_position), 9223372036854775807)
		                 FROM webhook_endpoints WHERE status = 'enabled')`, before)
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	return n, nil
}
