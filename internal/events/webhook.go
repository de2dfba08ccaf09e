package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Endpoint is a registered webhook endpoint and its delivery state.
type Endpoint struct {
	ID     string `db:"id"`
	URL    string `db:"endpoint_url"`
	Secret string `db:"secret"`
	// Status is StatusEnabled or StatusDisabled.
	Status string `db:"status"`
	// Events are the event types delivered to it; empty: all.
	Events pq.StringArray `db:"events"`
	// DeliveredPosition: every event up to it was delivered (or does not
	// match Events).
	DeliveredPosition int64        `db:"delivered_position"`
	Attempts          int          `db:"attempts"`
	NextAttemptAt     time.Time    `db:"next_attempt_at"`
	FailingSince      sql.NullTime `db:"failing_since"`
	LastError         string       `db:"last_error"`
	CreatedAt         time.Time    `db:"created_at"`
	UpdatedAt         time.Time    `db:"updated_at"`
}

// Endpoint statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// Errors of the endpoint API.
var (
	// ErrNotFound: no endpoint has that id.
	ErrNotFound = errors.New("events: no such webhook endpoint")
)

// InvalidError is an endpoint field that cannot be accepted.
type InvalidError struct {
	Field, Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// CheckURL accepts an absolute http or https URL with a host and no
// fragment: where deliveries go, and nowhere else.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return &InvalidError{"endpoint_url", "is required"}
	case err != nil:
		return &InvalidError{"endpoint_url", "is not a URL: " + err.Error()}
	case u.Scheme != "http" && u.Scheme != "https":
		return &InvalidError{"endpoint_url", fmt.Sprintf("must be an http or https URL, not %q", u.Scheme)}
	case u.Host == "":
		return &InvalidError{"endpoint_url", "has no host"}
	case u.Fragment != "" || u.User != nil:
		return &InvalidError{"endpoint_url", "must not carry a fragment or user info"}
	}
	return nil
}

// checkTypes accepts known event types only.
func checkTypes(field string, types []string) error {
	for _, t := range types {
		if !KnownType(t) {
			return &InvalidError{field, fmt.Sprintf("%q is not an event type (see GET /events documentation)", t)}
		}
	}
	return nil
}

// NewEndpoint is what registering an endpoint takes.
type NewEndpoint struct {
	URL string
	// Secret signs the deliveries; empty: one is generated.
	Secret string
	// Events filters the types delivered; empty: all.
	Events []string
}

const selectEndpoint = `SELECT id, endpoint_url, secret, status, events, delivered_position, attempts, next_attempt_at,
	failing_since, last_error, created_at, updated_at FROM webhook_endpoints`

// CreateEndpoint registers an endpoint. It receives the events committed
// after it was registered.
func (l *Log) CreateEndpoint(ctx context.Context, n NewEndpoint) (Endpoint, error) {
	if err := CheckURL(n.URL); err != nil {
		return Endpoint{}, err
	}
	if err := checkTypes("events", n.Events); err != nil {
		return Endpoint{}, err
	}
	if n.Secret == "" {
		n.Secret = randomString(32)
	}
	var e Endpoint
	// The head is read by the INSERT itself: the endpoint receives every
	// event that commits after that statement's snapshot.
	err := l.db.GetContext(ctx, &e, `INSERT INTO webhook_endpoints (id, endpoint_url, secret, events, delivered_position)
		VALUES ($1, $2, $3, $4, (SELECT coalesce(max(position), 0) FROM events))
		RETURNING id, endpoint_url, secret, status, events, delivered_position, attempts, next_attempt_at,
		failing_since, last_error, created_at, updated_at`,
		"we_"+newULIDish(), n.URL, n.Secret, pq.StringArray(nonNil(n.Events)))
	if err != nil {
		return Endpoint{}, fmt.Errorf("events: create webhook endpoint: %w", err)
	}
	return e, nil
}

// Endpoints lists every endpoint, oldest first.
func (l *Log) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	if err := l.db.SelectContext(ctx, &out, selectEndpoint+" ORDER BY created_at, id"); err != nil {
		return nil, fmt.Errorf("events: list webhook endpoints: %w", err)
	}
	return out, nil
}

// Endpoint returns one endpoint, or ErrNotFound.
func (l *Log) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	var e Endpoint
	err := l.db.GetContext(ctx, &e, selectEndpoint+" WHERE id = $1", id)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("events: read webhook endpoint: %w", err)
	}
	return e, nil
}

// EndpointUpdate changes the fields that are not nil.
type EndpointUpdate struct {
	URL, Status *string
	Events      *[]string
}

// UpdateEndpoint changes an endpoint (ErrNotFound if there is none). An
// endpoint enabled again retries at once.
func (l *Log) UpdateEndpoint(ctx context.Context, id string, u EndpointUpdate) (Endpoint, error) {
	if u.URL != nil {
		if err := CheckURL(*u.URL); err != nil {
			return Endpoint{}, err
		}
	}
	if u.Status != nil && *u.Status != StatusEnabled && *u.Status != StatusDisabled {
		return Endpoint{}, &InvalidError{"status", fmt.Sprintf("must be %q or %q", StatusEnabled, StatusDisabled)}
	}
	var events any
	if u.Events != nil {
		if err := checkTypes("events", *u.Events); err != nil {
			return Endpoint{}, err
		}
		events = pq.StringArray(nonNil(*u.Events))
	}
	var e Endpoint
	err := l.db.GetContext(ctx, &e, `UPDATE webhook_endpoints SET
			endpoint_url = coalesce($2, endpoint_url), status = coalesce($3, status), events = coalesce($4, events),
			next_attempt_at = CASE WHEN $3 = 'enabled' THEN now() ELSE next_attempt_at END,
			updated_at = now()
		WHERE id = $1
		RETURNING id, endpoint_url, secret, status, events, delivered_position, attempts, next_attempt_at,
		failing_since, last_error, created_at, updated_at`, id, u.URL, u.Status, events)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("events: update webhook endpoint: %w", err)
	}
	return e, nil
}

// DeleteEndpoint removes an endpoint (ErrNotFound if there is none). A
// delivery to it under way finishes; none starts after.
func (l *Log) DeleteEndpoint(ctx context.Context, id string) error {
	res, err := l.db.ExecContext(ctx, "DELETE FROM webhook_endpoints WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("events: delete webhook endpoint: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("events: delete webhook endpoint: %w", err)
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// randomString returns n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// newULIDish returns 26 characters of Crockford-like base32: a time prefix
// (so ids sort by creation) and randomness.
func newULIDish() string {
	b := make([]byte, 16)
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	enc := base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)
	return strings.ToUpper(enc.EncodeToString(b))[:26]
}

// withTx runs fn in a transaction, committing on nil.
func withTx(ctx context.Context, db *sqlx.DB, fn func(*sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
