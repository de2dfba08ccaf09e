package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// SignatureHeader is the header that carries a delivery's signature, in
// WorkOS's format (see Sign).
const SignatureHeader = "WorkOS-Signature"

// Sign returns the WorkOS-Signature value of body signed with secret at
// time t: "t=<unix ms>, v1=<hex HMAC-SHA256 of "<unix ms>.<body>">", which
// the WorkOS SDKs' webhooks.constructEvent verifies.
func Sign(secret string, t time.Time, body []byte) string {
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ms))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ms + ", v1=" + hex.EncodeToString(mac.Sum(nil))
}

// DelivererConfig configures a Deliverer. Zero fields get defaults.
type DelivererConfig struct {
	// Workers is how many endpoints are delivered to at once (default 4).
	Workers int
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before retrying a failed
	// delivery: MinBackoff doubles with each failure up to MaxBackoff
	// (defaults 1 s and 1 h), with jitter. Retries never stop while the
	// endpoint is enabled, so an endpoint that comes back after days gets
	// every event it missed.
	MinBackoff, MaxBackoff time.Duration
	// Transport sends the requests (default http.DefaultTransport).
	Transport http.RoundTripper
	// Logger receives delivery failures (default: discarded).
	Logger *slog.Logger
}

// Deliverer posts each event, in position order, to every enabled endpoint
// whose filter it matches, signed with the endpoint's secret. Delivery is
// at least once: an event counts as delivered when the endpoint answered
// 2xx and the endpoint's position moved past it in PostgreSQL, so a crash
// between the two sends it again (receivers deduplicate by event id).
// Several Deliverers (in several processes) may run on one database: a
// row lock (FOR UPDATE SKIP LOCKED) gives each endpoint one deliverer at a
// time. A Deliverer runs on its own connections and goroutines: a slow or
// dead endpoint holds one worker, never a decision.
type Deliverer struct {
	log    *Log
	cfg    DelivererConfig
	client *http.Client
}

// NewDeliverer returns a Deliverer of l's events.
func NewDeliverer(l *Log, cfg DelivererConfig) *Deliverer {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Hour, cfg.MinBackoff)
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{log: l, cfg: cfg, client: &http.Client{
		Transport: cfg.Transport, Timeout: cfg.Timeout,
		// Requests go to registered URLs only: a redirect is an answer
		// (a failure), never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Run delivers until ctx ends, looking for work at every wake of w and at
// least once a second. One worker answers a wake; a worker that takes an
// endpoint wakes another, so that as many work as there are endpoints due
// while a commit costs one look, not one a worker.
func (d *Deliverer) Run(ctx context.Context, w *Waker) {
	var wg sync.WaitGroup
	more := make(chan struct{}, 1)
	for i := range d.cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				var wake <-chan struct{} // nil, never ready, but for the first worker
				if i == 0 {
					wake = w.Wait()
				}
				n, err := d.DeliverOne(ctx)
				if err != nil && ctx.Err() == nil {
					d.cfg.Logger.Warn("webhooks: delivery pass failed", "error", err)
				}
				if n > 0 {
					select { // more may be due
					case more <- struct{}{}:
					default:
					}
					continue
				}
				t := time.NewTimer(time.Second)
				select {
				case <-ctx.Done():
				case <-wake:
				case <-more:
				case <-t.C:
				}
				t.Stop()
			}
		})
	}
	wg.Wait()
}

// DeliverOne takes one endpoint that is due and has events it has not
// received, and posts its next matching event. It returns how many
// endpoints it took (0: nothing was due). The endpoint's row stays locked
// for the POST, and its position moves in the same transaction.
func (d *Deliverer) DeliverOne(ctx context.Context) (int, error) {
	took := 0
	err := withTx(ctx, d.log.db, func(tx *sqlx.Tx) error {
		var e Endpoint
		err := tx.GetContext(ctx, &e, selectEndpoint+` WHERE status = 'enabled' AND next_attempt_at <= now()
				AND delivered_position < (SELECT coalesce(max(position), 0) FROM events)
			ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("take an endpoint: %w", err)
		}
		took = 1
		// One statement, one snapshot: the head it reads bounds the events
		// it could have found, so moving past non-matching events to the
		// head skips none that commit meanwhile.
		var head int64
		var ev eventRow
		var found, revision sql.NullInt64
		err = tx.QueryRowxContext(ctx, `WITH h AS (SELECT coalesce(max(position), 0) AS head FROM events)
			SELECT h.head, e.position, e.revision, e.type, e.entity, e.entity_id, coalesce(e.organization_id, ''), e.data, e.created_at
			FROM h LEFT JOIN LATERAL (SELECT * FROM events WHERE position > $1 AND (cardinality($2::text[]) = 0 OR type = ANY($2))
			                          ORDER BY position LIMIT 1) e ON true`, e.DeliveredPosition, e.Events).
			Scan(&head, &found, &revision, nullString{&ev.Type}, nullString{&ev.Entity}, nullString{&ev.EntityID},
				nullString{&ev.OrganizationID}, &ev.Data, nullTime{&ev.CreatedAt})
		if err != nil {
			return fmt.Errorf("read the next event of %s: %w", e.ID, err)
		}
		if !found.Valid {
			_, err := tx.ExecContext(ctx, "UPDATE webhook_endpoints SET delivered_position = $2 WHERE id = $1", e.ID, head)
			return err
		}
		ev.Position, ev.Revision = found.Int64, revision.Int64
		if derr := d.post(ctx, e, ev.event()); derr != nil {
			backoff := d.backoff(e.Attempts + 1)
			d.cfg.Logger.Warn("webhooks: delivery failed; retrying", "endpoint_id", e.ID, "event_id", ev.event().ID(),
				"attempt", e.Attempts+1, "retry_in", backoff.String(), "error", derr)
			_, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET attempts = attempts + 1,
					next_attempt_at = now() + $2 * interval '1 microsecond', failing_since = coalesce(failing_since, now()),
					last_error = $3 WHERE id = $1`, e.ID, backoff.Microseconds(), truncate(derr.Error(), 500))
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET delivered_position = $2, attempts = 0,
				failing_since = NULL, last_error = '' WHERE id = $1`, e.ID, ev.Position)
		return err
	})
	if err != nil {
		return took, fmt.Errorf("webhooks: %w", err)
	}
	return took, nil
}

// post sends one event to e; an answer other than 2xx is an error.
func (d *Deliverer) post(ctx context.Context, e Endpoint, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Trellis-Webhooks/1")
	req.Header.Set(SignatureHeader, Sign(e.Secret, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// backoff is the wait after the attempt-th failure in a row.
func (d *Deliverer) backoff(attempt int) time.Duration {
	b := d.cfg.MinBackoff
	for i := 1; i < attempt && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	return b/2 + rand.N(b/2+1) // jitter: [b/2, b]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// nullString and nullTime scan a possibly NULL column into a plain value.
type nullString struct{ p *string }

func (n nullString) Scan(v any) error {
	var s sql.NullString
	if err := s.Scan(v); err != nil {
		return err
	}
	*n.p = s.String
	return nil
}

type nullTime struct{ p *time.Time }

func (n nullTime) Scan(v any) error {
	var t sql.NullTime
	if err := t.Scan(v); err != nil {
		return err
	}
	*n.p = t.Time
	return nil
}
