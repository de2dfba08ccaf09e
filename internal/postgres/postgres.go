// Package postgres makes PostgreSQL Trellis's system of record (DESIGN.md
// §2–§3): the schema and its embedded migrations, a consistent snapshot of
// the relationship data as a model.Dataset, a validated write path, and a
// change feed that a Follower applies to the decision engine within
// milliseconds of each commit.
//
// # Revisions
//
// Every committed transaction that changes relationship data gets one
// revision. Triggers log the changed entities (their whole state after the
// change) in the same transaction; a deferred trigger allocates the
// revision at commit time under a transaction-scoped advisory lock, so
// revisions become visible in revision order even when transactions commit
// out of the order they started or wrote in (see migrations/0002). A reader
// that has applied revision r and sees revision r+k knows every revision in
// between is either visible to it or will never exist. Writes by any process
// — Trellis or another program writing these tables — are logged alike.
//
// # Rules hold per commit
//
// The data model's cross-row rules (depth at most MaxDepth, a parent of an
// allowed parent type and in the same organization, no loops of resources
// or of resource types, a role's permissions of its type or a type below
// it, an assignment's role of its resource's type, a membership's roles of
// the organization type, environment and organization role slugs distinct)
// are checked by the write path with reads in the writing transaction. Every
// write transaction — Store.WriteTx, and so Write, ApplySchema, the admin
// API and the WorkOS-compatible store, and Import — runs at SERIALIZABLE,
// so those checks hold at commit whatever the interleaving: PostgreSQL's
// serializable snapshot isolation aborts one of two transactions that each
// read what the other writes (two re-parents that only together exceed the
// depth, a type narrowed while a resource moves under the removed parent
// type) with SQLSTATE 40001. writeTx then runs the whole transaction again
// on a new snapshot, where the check sees the other write and refuses with
// the rule's *ValidationError, or succeeds if it still may.
//
// SERIALIZABLE was chosen over explicit locks because it covers every rule
// the write path checks, those added later included, without a lock per
// rule that each write path must remember to take in the right order. Its
// costs: predicate locks on what writes read, and retries, also for some
// conflicts that were not real (PostgreSQL tracks reads per index page, or
// per table when it scans one). The commit-time revision allocation does not
// add conflicts: sequences and advisory locks are outside SSI, and no
// serializable transaction reads change_log or change_revisions (only
// imports update change_feed_state, so of two concurrent imports one is
// run again). Reads —
// snapshots, the Follower's change feed — are REPEATABLE READ and read-only,
// so they take no predicate locks and never conflict with writes.
//
// A write is run at most writeAttempts times, with jittered exponential
// backoff between attempts; one that still cannot be serialized (or keeps
// deadlocking, 40P01) fails with ErrUnavailable. Because it may run more than
// once, a WriteTx closure must have no effect outside its transaction other
// than setting variables it sets again on every run.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the database/sql driver

	"github.com/trellis-authz/trellis/internal/model"
)

// notifyChannel is the channel commits NOTIFY with their revision.
const notifyChannel = "trellis_changes"

// Config configures a Store. Zero fields get defaults.
type Config struct {
	// MaxDepth bounds resource trees, the organization root included
	// (default model.DefaultMaxDepth). Snapshots carry it as
	// Dataset.MaxDepth and the write path enforces it.
	MaxDepth int
	// Logger receives progress and error reports (default: discarded).
	Logger *slog.Logger
}

// Store reads and writes Trellis's relationship data in one PostgreSQL
// database. It is safe for concurrent use.
type Store struct {
	db       *sqlx.DB
	dsn      string
	maxDepth int
	log      *slog.Logger
}

// maxIdleConns is how many idle connections a Store keeps open.
const maxIdleConns = 16

// Open connects to the database at dsn (a postgres:// URL or key=value DSN)
// and checks that it answers. It does not migrate: run Migrate first. The
// caller must Close the Store.
func Open(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// database/sql keeps 2 idle connections by default: concurrent writes
	// beyond that each cost a new server process (a fork, authentication
	// and cold catalog caches), which at 100 writes/s from 8 clients took
	// the CPU that reads needed (trellis bench http --write-rate).
	db.SetMaxIdleConns(maxIdleConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, connectError(err, dsn)
	}
	return New(db, dsn, cfg), nil
}

// New returns a Store on an open database handle. dsn must name the same
// database: the change feed opens its own LISTEN connection with it. The
// Store's Close closes db.
func New(db *sqlx.DB, dsn string, cfg Config) *Store {
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = model.DefaultMaxDepth
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{db: db, dsn: dsn, maxDepth: cfg.MaxDepth, log: cfg.Logger}
}

// DB returns the Store's database handle.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the database handle.
func (s *Store) Close() error { return s.db.Close() }

// Migrate applies pending migrations to the Store's database (see the
// package-level Migrate).
func (s *Store) Migrate(ctx context.Context) ([]Migration, error) { return Migrate(ctx, s.db) }

// Head returns the newest committed revision: what a fully consistent read
// must wait for. It is 0 on an empty log.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := s.db.GetContext(ctx, &head, "SELECT coalesce(max(revision), 0) FROM change_revisions"); err != nil {
		return 0, translateUnavailable(fmt.Errorf("postgres: read head revision: %w", err))
	}
	return head, nil
}

// InRecovery reports whether the database is a hot standby in recovery
// (pg_is_in_recovery) or read-only by default_transaction_read_only: a
// server Trellis must not write to, migrations included.
func (s *Store) InRecovery(ctx context.Context) (bool, error) {
	return inRecovery(ctx, s.db)
}

func inRecovery(ctx context.Context, q sqlx.QueryerContext) (bool, error) {
	var ro bool
	if err := sqlx.GetContext(ctx, q, &ro, "SELECT pg_is_in_recovery() OR current_setting('default_transaction_read_only') = 'on'"); err != nil {
		return false, translateUnavailable(fmt.Errorf("postgres: read recovery state: %w", err))
	}
	return ro, nil
}

// Prune deletes the change log of every revision below before (keep the
// newest revision: before must be at most Head). Followers that have not
// applied revision before-1 yet reload a full snapshot instead.
func (s *Store) Prune(ctx context.Context, before int64) error {
	return inTx(ctx, s.db, nil, func(tx *sqlx.Tx) error {
		var head int64
		if err := tx.GetContext(ctx, &head, "SELECT coalesce(max(revision), 0) FROM change_revisions"); err != nil {
			return err
		}
		if before > head {
			return fmt.Errorf("postgres: prune before %d: the head is %d and must be kept", before, head)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM change_log WHERE txid IN
			(SELECT txid FROM change_revisions WHERE revision < $1)`, before); err != nil {
			return fmt.Errorf("prune change_log: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM change_revisions WHERE revision < $1", before); err != nil {
			return fmt.Errorf("prune change_revisions: %w", err)
		}
		_, err := tx.ExecContext(ctx, "UPDATE change_feed_state SET resync_revision = greatest(resync_revision, $1)", before-1)
		return err
	})
}

// PruneChangesBefore prunes (Prune) the change log of the revisions whose
// events were all made before t: those up to the newest revision with an
// event older than t (revisions commit in order, their events at commit),
// keeping the newest revision. The event log's pruner calls it just before
// it prunes the events themselves (events.Duties): the change log is kept
// as long as the events.
func (s *Store) PruneChangesBefore(ctx context.Context, t time.Time) error {
	var before int64
	err := s.db.GetContext(ctx, &before, `SELECT least(revision + 1, (SELECT max(revision) FROM change_revisions))
		FROM events WHERE created_at < $1 ORDER BY created_at DESC, position DESC LIMIT 1`, t)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return translateUnavailable(fmt.Errorf("postgres: prune the change log: %w", err))
	}
	return s.Prune(ctx, before)
}

// ReadTx runs fn in a read-only REPEATABLE READ transaction: every read of
// fn sees one snapshot. Errors that say the database is unavailable wrap
// ErrUnavailable; fn's others are returned as they are.
func (s *Store) ReadTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return inTx(ctx, s.db, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, fn)
}

// PlainTx runs fn in a READ COMMITTED read-write transaction for tables
// that are not relationship data and have no change log (idempotency
// keys): fn must not write the relationship tables, whose writes go
// through WriteTx. Errors that say the database is unavailable wrap
// ErrUnavailable; fn's others are returned as they are.
func (s *Store) PlainTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return inTx(ctx, s.db, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, fn)
}

// beginner starts transactions: *sqlx.DB and *sqlx.Conn.
type beginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// inTx runs fn in a transaction: it commits when fn returns nil and rolls
// back otherwise (also when fn panics). An error that says the database is
// unavailable, fn's included, is wrapped with ErrUnavailable; fn's other
// errors are returned as they are.
func inTx(ctx context.Context, db beginner, opts *sql.TxOptions, fn func(tx *sqlx.Tx) error) (err error) {
	defer func() { err = translateUnavailable(err) }()
	tx, err := db.BeginTxx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
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

// Retries of write transactions (see the package doc).
const (
	writeAttempts  = 10
	retryBaseDelay = 5 * time.Millisecond
	retryMaxDelay  = 250 * time.Millisecond
)

// writeTx runs fn in a SERIALIZABLE transaction (see inTx). When PostgreSQL
// aborts it to keep concurrent transactions serializable or to break a
// deadlock, it runs the whole transaction again, fn included, after a
// random wait of up to 5 ms, doubling to at most 250 ms: writeAttempts runs
// in all, after which the failure wraps ErrUnavailable. It is the one place
// writes are retried; every write transaction goes through it. On a
// read-only server (a hot standby) the failure wraps ErrReadOnly.
func writeTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	delay := retryBaseDelay
	for attempt := 1; ; attempt++ {
		err := inTx(ctx, db, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
		if readOnlyFailure(err) {
			if ro, rerr := inRecovery(ctx, db); rerr == nil && ro {
				return fmt.Errorf("%w: %w", ErrReadOnly, err)
			}
		}
		if !serializationFailure(err) {
			return err
		}
		if attempt == writeAttempts {
			return fmt.Errorf("%w: the write conflicted with concurrent writes %d times: %w", ErrUnavailable, attempt, err)
		}
		wait := time.NewTimer(rand.N(delay))
		select {
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("retry the write: %w", ctx.Err())
		case <-wait.C:
		}
		delay = min(2*delay, retryMaxDelay)
	}
}
