package workosdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// Replays is a workos.Replays in the idempotency_keys table, so that a
// retried POST is answered with its first response on any instance and
// after restarts. Each call is one short READ COMMITTED transaction; the
// primary key makes one claim of a key win. It is safe for concurrent use.
type Replays struct {
	pg     *postgres.Store
	pruned atomic.Int64 // unix seconds of the last prune of expired keys
}

// NewReplays returns the Replays of pg, whose schema must be migrated.
func NewReplays(pg *postgres.Store) *Replays { return &Replays{pg: pg} }

var _ workos.Replays = (*Replays)(nil)

// Claim implements workos.Replays. It drops expired keys at most once a
// minute per process.
func (r *Replays) Claim(ctx context.Context, key string, d workos.Digest) (*workos.Replay, error) {
	if err := r.prune(ctx); err != nil {
		return nil, err
	}
	var out *workos.Replay
	err := r.pg.PlainTx(ctx, func(tx *sqlx.Tx) error {
		// A new key, an expired one or one abandoned by a request that
		// never finished is taken over; any other is left as it is (and
		// locked until this transaction ends).
		var claimed bool
		found, err := getOne(ctx, tx, &claimed, `
			INSERT INTO idempotency_keys (key, digest) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET digest = EXCLUDED.digest, status = NULL, revision = 0, body = '', created_at = now()
			WHERE idempotency_keys.created_at < now() - make_interval(secs => $3)
			   OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < now() - make_interval(secs => $4))
			RETURNING true`, key, d[:], workos.KeyLifetime.Seconds(), workos.ClaimTimeout.Seconds())
		if err != nil || found {
			return err
		}
		var row struct {
			Digest   []byte        `db:"digest"`
			Status   sql.NullInt64 `db:"status"`
			Revision int64         `db:"revision"`
			Body     []byte        `db:"body"`
		}
		found, err = getOne(ctx, tx, &row, "SELECT digest, status, revision, body FROM idempotency_keys WHERE key = $1", key)
		switch {
		case err != nil:
			return err
		case !found: // released meanwhile: the caller asks again
			return workos.ErrKeyBusy
		case string(row.Digest) != string(d[:]):
			return workos.ErrKeyReused
		case !row.Status.Valid:
			return workos.ErrKeyBusy
		}
		out = &workos.Replay{Status: int(row.Status.Int64), Revision: row.Revision, Body: row.Body}
		return nil
	})
	if err != nil && !errors.Is(err, workos.ErrKeyBusy) && !errors.Is(err, workos.ErrKeyReused) {
		return nil, fmt.Errorf("claim idempotency key: %w", translate(err))
	}
	return out, err
}

// Finish implements workos.Replays.
func (r *Replays) Finish(ctx context.Context, key string, d workos.Digest, p workos.Replay) error {
	body := p.Body
	if body == nil {
		body = []byte{}
	}
	return r.exec(ctx, "record idempotent response",
		"UPDATE idempotency_keys SET status = $3, revision = $4, body = $5 WHERE key = $1 AND digest = $2 AND status IS NULL",
		key, d[:], p.Status, p.Revision, body)
}

// Release implements workos.Replays.
func (r *Replays) Release(ctx context.Context, key string, d workos.Digest) error {
	return r.exec(ctx, "release idempotency key",
		"DELETE FROM idempotency_keys WHERE key = $1 AND digest = $2 AND status IS NULL", key, d[:])
}

func (r *Replays) exec(ctx context.Context, what, query string, args ...any) error {
	err := r.pg.PlainTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	return nil
}

// prune deletes keys older than workos.KeyLifetime, at most once a minute.
func (r *Replays) prune(ctx context.Context) error {
	now := time.Now().Unix()
	last := r.pruned.Load()
	if now-last < 60 || !r.pruned.CompareAndSwap(last, now) {
		return nil
	}
	return r.exec(ctx, "prune idempotency keys",
		"DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", workos.KeyLifetime.Seconds())
}
