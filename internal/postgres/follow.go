package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// Applier receives the data a Follower reads (implemented by
// *engine.Engine).
type Applier interface {
	// LoadDataset replaces all data with ds, at revision ds.Revision.
	LoadDataset(ctx context.Context, ds *model.Dataset) error
	// Apply applies the changes of one committed transaction, in order and
	// atomically, and makes revision current. An upsert carries the
	// entity's whole state; a cascade's deletes may come in any order.
	Apply(ctx context.Context, revision int64, changes []model.Change) error
}

// ListenerApplicationName is the application_name of a Follower's LISTEN
// connection, as pg_stat_activity shows it.
const ListenerApplicationName = "trellis_listener"

// FollowerConfig configures a Follower. Zero fields get defaults.
type FollowerConfig struct {
	// PollInterval is how often the change log is read even without a
	// notification (default 1s). It is how a follower of a read replica,
	// where NOTIFY does not arrive, learns of changes.
	PollInterval time.Duration
	// NoListen disables LISTEN/NOTIFY: the follower only polls (read
	// replicas).
	NoListen bool
	// MinBackoff and MaxBackoff bound the wait between attempts after an
	// error, and the listener's reconnect interval (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// BatchRevisions bounds the revisions read in one query (default 1000).
	BatchRevisions int
	// Logger receives progress and error reports (default: the Store's).
	Logger *slog.Logger
}

// Follower keeps an Applier in step with the database: a full snapshot
// first, then every committed revision, in order, one Apply per source
// transaction. Create it with Store.NewFollower and call Run. Its methods
// are safe for concurrent use.
type Follower struct {
	store *Store
	app   Applier
	cfg   FollowerConfig
	log   *slog.Logger

	loaded     atomic.Bool
	applied    atomic.Int64
	head       atomic.Int64
	listenerUp atomic.Bool
	fetchOK    atomic.Bool
	// connects counts the listener's (re)connections; caughtUp is the count
	// a successful step saw when it started. They differ while what was
	// committed during a disconnection has not been read yet.
	connects atomic.Uint64
	caughtUp atomic.Uint64
	resync   atomic.Bool // the next step must load a full snapshot
	wake     chan struct{}
}

// NewFollower returns a Follower that feeds app from s.
func (s *Store) NewFollower(app Applier, cfg FollowerConfig) *Follower {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.BatchRevisions <= 0 {
		cfg.BatchRevisions = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	f := &Follower{store: s, app: app, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	f.listenerUp.Store(cfg.NoListen)
	return f
}

// Loaded reports whether the first full snapshot has been applied.
func (f *Follower) Loaded() bool { return f.loaded.Load() }

// Status returns the revision last applied, the newest revision known to
// exist in the database (never below applied) and whether the data may be
// behind: before the first load, while the database or the listener is
// unreachable, and until a catch-up after that succeeds.
func (f *Follower) Status() (applied, head int64, stale bool) {
	applied = f.applied.Load()
	head = max(f.head.Load(), applied)
	stale = !f.loaded.Load() || !f.listenerUp.Load() || !f.fetchOK.Load() || f.caughtUp.Load() != f.connects.Load()
	return applied, head, stale
}

// Ready reports readiness in the shape httpapi.Config.Ready wants: ready
// after the first load, with the applied revision, the head and the stale
// flag as details.
func (f *Follower) Ready() (bool, map[string]any) {
	applied, head, stale := f.Status()
	return f.Loaded(), map[string]any{"revision": applied, "head": head, "stale": stale}
}

// Head returns the database's head revision (Store.Head), for fully
// consistent reads; it also refreshes the head Status reports.
func (f *Follower) Head(ctx context.Context) (int64, error) {
	h, err := f.store.Head(ctx)
	if err != nil {
		return 0, err
	}
	f.observeHead(h)
	return h, nil
}

func (f *Follower) observeHead(h int64) {
	for {
		cur := f.head.Load()
		if h <= cur || f.head.CompareAndSwap(cur, h) {
			return
		}
	}
}

// Run loads a snapshot, then follows the change log until ctx ends, and
// returns nil then. Errors are logged and retried with backoff; meanwhile
// the Applier keeps the last data and Status reports stale. Call Run once.
func (f *Follower) Run(ctx context.Context) error {
	var notify <-chan *pq.Notification
	if !f.cfg.NoListen {
		l := pq.NewListener(withParam(f.store.dsn, "application_name", ListenerApplicationName),
			f.cfg.MinBackoff, f.cfg.MaxBackoff, f.event)
		defer l.Close()
		// Listen waits for the first connection; the loop polls meanwhile.
		go func() {
			if err := l.Listen(notifyChannel); err != nil {
				if ctx.Err() == nil {
					f.log.Error("change feed: listen failed; polling only", "err", err)
				}
				return
			}
			// LISTEN is active: anything committed before it is caught
			// up by the next step, anything after is notified.
			f.connected()
		}()
		notify = l.NotificationChannel()
	}
	ticker := time.NewTicker(f.cfg.PollInterval)
	defer ticker.Stop()
	backoff := time.Duration(0)
	for {
		connects := f.connects.Load()
		err := f.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.fetchOK.Store(false)
			backoff = min(max(2*backoff, f.cfg.MinBackoff), f.cfg.MaxBackoff)
			f.log.Warn("change feed: read failed; serving the last data", "err", err,
				"revision", f.applied.Load(), "retry_in", backoff.String())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			case <-f.wake:
			}
			continue
		}
		f.caughtUp.Store(connects)
		if !f.fetchOK.Swap(true) && backoff > 0 {
			f.log.Info("change feed: caught up", "revision", f.applied.Load())
		}
		backoff = 0
		if !f.wait(ctx, notify, ticker.C) {
			return nil
		}
	}
}

// wait blocks until there may be something to read: a notification of a
// revision not applied yet (or a nil one, which pq sends after
// reconnecting), a poke or a tick. A burst of commits is read by the first
// step; the notifications of what it already applied are skipped. It
// returns false when ctx ends.
func (f *Follower) wait(ctx context.Context, notify <-chan *pq.Notification, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case n := <-notify:
			if n == nil {
				return true
			}
			rev, err := strconv.ParseInt(n.Extra, 10, 64)
			if err != nil {
				return true
			}
			f.observeHead(rev)
			if rev > f.applied.Load() {
				return true
			}
		case <-f.wake:
			return true
		case <-tick:
			return true
		}
	}
}

// event tracks the listener's connection.
func (f *Follower) event(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventReconnected:
		// The listener has re-issued LISTEN before it reports this.
		f.log.Info("change feed: listener reconnected; catching up", "revision", f.applied.Load())
		f.connected()
	case pq.ListenerEventDisconnected:
		f.listenerUp.Store(false)
		f.log.Warn("change feed: listener disconnected; serving the last data", "err", err, "revision", f.applied.Load())
	case pq.ListenerEventConnectionAttemptFailed:
		f.listenerUp.Store(false)
	}
}

// connected records that LISTEN is active again and wakes the loop to
// catch up with what was committed before; the data is reported stale
// until a step started after this succeeds.
func (f *Follower) connected() {
	f.connects.Add(1)
	f.listenerUp.Store(true)
	f.poke()
}

func (f *Follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// step loads a snapshot when one is due, then applies every revision after
// the applied one.
func (f *Follower) step(ctx context.Context) error {
	if !f.loaded.Load() || f.resync.Load() {
		if err := f.loadSnapshot(ctx); err != nil {
			return err
		}
	}
	for {
		batch, err := f.fetch(ctx, f.applied.Load())
		if errors.Is(err, errResync) {
			f.log.Warn("change feed: the log no longer reaches the applied revision; loading a full snapshot", "revision", f.applied.Load())
			if err := f.loadSnapshot(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, g := range batch {
			start := time.Now()
			if err := f.app.Apply(ctx, g.revision, g.changes); err != nil {
				// The store may now be incomplete: rebuild it from scratch.
				f.log.Error("change feed: apply failed; loading a full snapshot", "err", err, "revision", g.revision)
				f.resync.Store(true)
				return fmt.Errorf("apply revision %d: %w", g.revision, err)
			}
			f.applied.Store(g.revision)
			f.log.Debug("change feed: applied", "revision", g.revision, "changes", len(g.changes),
				"elapsed", time.Since(start).String())
		}
		if len(batch) < f.cfg.BatchRevisions {
			return nil
		}
	}
}

func (f *Follower) loadSnapshot(ctx context.Context) error {
	ds, err := f.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	if err := f.app.LoadDataset(ctx, ds); err != nil {
		return fmt.Errorf("load snapshot at revision %d: %w", ds.Revision, err)
	}
	f.applied.Store(ds.Revision)
	f.observeHead(ds.Revision)
	f.resync.Store(false)
	f.loaded.Store(true)
	return nil
}

// errResync says the log cannot bring the applied revision up to date.
var errResync = errors.New("change log truncated past the applied revision")

// group is the changes of one revision (one source transaction).
type group struct {
	revision int64
	changes  []model.Change
}

// fetch reads up to BatchRevisions revisions after `after`, in order, with
// their changes in the order they were made.
func (f *Follower) fetch(ctx context.Context, after int64) ([]group, error) {
	var out []group
	err := f.store.ReadTx(ctx, func(tx *sqlx.Tx) error {
		var resync, head int64
		if err := tx.QueryRowContext(ctx, `SELECT resync_revision, (SELECT coalesce(max(revision), 0) FROM change_revisions)
			FROM change_feed_state`).Scan(&resync, &head); err != nil {
			return fmt.Errorf("read change feed state: %w", err)
		}
		f.observeHead(head)
		if after < resync {
			return errResync
		}
		if head <= after {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT r.revision, c.entity, c.op, c.data
			FROM (SELECT revision, txid FROM change_revisions WHERE revision > $1 ORDER BY revision LIMIT $2) r
			LEFT JOIN change_log c ON c.txid = r.txid
			ORDER BY r.revision, c.seq`, after, f.cfg.BatchRevisions)
		if err != nil {
			return fmt.Errorf("read changes after revision %d: %w", after, err)
		}
		defer rows.Close()
		for rows.Next() {
			var rev int64
			var entity, op sql.NullString
			var data []byte
			if err := rows.Scan(&rev, &entity, &op, &data); err != nil {
				return fmt.Errorf("read changes: %w", err)
			}
			if len(out) == 0 || out[len(out)-1].revision != rev {
				out = append(out, group{revision: rev})
			}
			if !entity.Valid {
				continue // a revision without logged rows
			}
			c, err := decodeChange(entity.String, op.String, data)
			if err != nil {
				return fmt.Errorf("revision %d: %w", rev, err)
			}
			g := &out[len(out)-1]
			g.changes = append(g.changes, c)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read changes: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeChange turns one change_log row into a model.Change.
func decodeChange(entity, op string, data []byte) (model.Change, error) {
	c := model.Change{Op: model.Op(op)}
	if c.Op != model.OpUpsert && c.Op != model.OpDelete {
		return c, fmt.Errorf("change log: unknown op %q", op)
	}
	var target any
	switch entity {
	case model.KindOrganization:
		c.Organization = &model.Organization{}
		target = c.Organization
	case model.KindMembership:
		c.Membership = &model.Membership{}
		target = c.Membership
	case model.KindResourceType:
		c.ResourceType = &model.ResourceType{}
		target = c.ResourceType
	case model.KindPermission:
		c.Permission = &model.Permission{}
		target = c.Permission
	case model.KindRole:
		c.Role = &model.Role{}
		target = c.Role
	case model.KindResource:
		c.Resource = &model.Resource{}
		target = c.Resource
	case model.KindAssignment:
		c.Assignment = &model.Assignment{}
		target = c.Assignment
	default:
		return c, fmt.Errorf("change log: unknown entity %q", entity)
	}
	if err := json.Unmarshal(data, target); err != nil {
		return c, fmt.Errorf("change log: decode %s: %w", entity, err)
	}
	return c, nil
}

// withParam returns dsn with connection parameter key set to value.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}
