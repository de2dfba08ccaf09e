package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/progress"
)

// Applier receives the data a Follower reads (implemented by
// *engine.Engine).
type Applier interface {
	// LoadDataset replaces all data with ds, at revision ds.Revision; ds
	// may hold organizations out (ds.Quarantined).
	LoadDataset(ctx context.Context, ds *model.Dataset) error
	// Apply applies the changes of one committed transaction, in order and
	// atomically, and makes revision current. An upsert carries the
	// entity's whole state; a cascade's deletes may come in any order. A
	// change that would break a rule fails the whole Apply with a
	// *model.RuleError naming the organizations it breaks.
	Apply(ctx context.Context, revision int64, changes []model.Change) error
	// Quarantine takes organizations out of service, keeping what
	// recognises requests about them, and returns their quarantines with
	// the ids of their resources and memberships.
	Quarantine(ctx context.Context, orgs []string) ([]model.Quarantine, error)
	// PutOrganization replaces organization org's data with what part,
	// the shared data and that organization's rows (Isolate'd), holds of
	// it: its data, its quarantine, or nothing.
	PutOrganization(ctx context.Context, org string, part *model.Dataset) error
}

// EarlyLoader is an Applier that can build a dataset's store while the
// dataset is still being validated (the server's, over
// engine.Engine.LoadEarly): LoadEarly(ds) starts the build, and the load
// it returns replaces all data with final, as LoadDataset does, using the
// store built of ds when final is ds. The Follower then builds a
// snapshot's store while it validates the snapshot.
type EarlyLoader interface {
	LoadEarly(ds *model.Dataset) (load func(ctx context.Context, final *model.Dataset) error)
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
	// MaxLag is the most Lag at which Ready reports ready; 0 means no
	// bound (ready from the first load on, whatever the lag).
	MaxLag time.Duration
	// Logger receives progress and error reports (default: the Store's).
	Logger *slog.Logger
	// Progress, when a terminal, shows a snapshot load slower than a few
	// seconds as a bar instead of log lines (nil: log lines).
	Progress io.Writer
}

// Follower keeps an Applier in step with the database: a full snapshot
// first, then every committed revision, in order, one Apply per source
// transaction. Create it with Store.NewFollower and call Run. Its methods
// are safe for concurrent use.
//
// One organization's bad data never stops the others. An organization
// whose data breaks a rule — found in a snapshot (model.Dataset.Isolate),
// or by a change the Applier refuses (*model.RuleError) — is quarantined:
// logged once with its problems, taken out of service and listed by
// Quarantined, while every other organization is followed as before. The
// changes to a quarantined organization are not applied; instead the next
// read of the change log re-reads that organization's rows in the same
// REPEATABLE READ snapshot, at the revision the Applier is then brought
// to, and swaps it in if it is valid again (the quarantine is lifted), or
// keeps it quarantined. A change to the shared data (resource types,
// permissions, environment roles) re-reads every quarantined organization.
// None of this reloads the whole dataset.
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
	// listening is whether LISTEN is in use (not NoListen, not a standby);
	// freshAt (Unix nanoseconds) is the time as of which the applied data
	// holds every commit (see Lag). marks belongs to the goroutine of Run.
	listening atomic.Bool
	freshAt   atomic.Int64
	marks     []walMark

	// quarantines and reread belong to the goroutine of Run; quarantined
	// publishes the organizations for the other methods.
	quarantines *model.QuarantineSet
	reread      map[string]bool // quarantined organizations to re-read
	unannounced map[string]bool // quarantined by a refused change, not logged yet
	quarantined atomic.Pointer[[]string]
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
	f := &Follower{store: s, app: app, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		quarantines: model.NewQuarantineSet(nil), reread: map[string]bool{}, unannounced: map[string]bool{}}
	f.listenerUp.Store(cfg.NoListen)
	f.freshAt.Store(time.Now().UnixNano())
	f.publishQuarantines()
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
// after the first load while Lag is at most MaxLag (when set), with the
// applied revision, the head, the stale flag, the lag and the quarantined
// organizations as details. Quarantined organizations do not make it
// unready: every other one is served.
func (f *Follower) Ready() (bool, map[string]any) {
	applied, head, stale := f.Status()
	lag := f.Lag()
	ready := f.Loaded() && (f.cfg.MaxLag <= 0 || lag <= f.cfg.MaxLag)
	details := map[string]any{"revision": applied, "head": head, "stale": stale,
		"lag_seconds": lag.Seconds(), "quarantined_organizations": f.Quarantined()}
	if f.cfg.MaxLag > 0 {
		details["max_lag_seconds"] = f.cfg.MaxLag.Seconds()
	}
	return ready, details
}

// Lag returns how far behind the primary the applied data may be: the time
// since the newest moment as of which it holds every commit of the primary.
// Following the primary with LISTEN, it is 0 while the listener is up and
// every notified revision is applied, and otherwise the time since the
// last successful read of the change log began. On a hot standby it also
// counts the standby's own replay: a read of the log made when the standby
// had replayed the WAL it had received (streaming) at time T makes the data
// fresh as of T. WAL the primary has not sent yet is not counted (it is
// streamed as it is written); a standby that is not streaming, or a
// database that cannot be read, only lets the lag grow. Before the first
// load the lag is the time since the Follower was created.
func (f *Follower) Lag() time.Duration {
	applied, head, stale := f.Status()
	if f.listening.Load() && !stale && applied >= head {
		return 0
	}
	return max(time.Since(time.Unix(0, f.freshAt.Load())), 0)
}

// Quarantined returns the organizations held out of service because their
// data breaks a rule, sorted. The caller owns the slice.
func (f *Follower) Quarantined() []string {
	return slices.Clone(*f.quarantined.Load())
}

func (f *Follower) publishQuarantines() {
	orgs := f.quarantines.Organizations()
	f.quarantined.Store(&orgs)
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
	listen := !f.cfg.NoListen
	if ro, err := f.store.InRecovery(ctx); listen && err == nil && ro {
		// NOTIFY is not replicated, and a standby refuses LISTEN.
		f.log.Info("change feed: the database is a hot standby; polling the change log only", "poll_interval", f.cfg.PollInterval.String())
		listen = false
		f.listenerUp.Store(true)
	}
	f.listening.Store(listen)
	if listen {
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
// the applied one, and then records how fresh the data is.
func (f *Follower) step(ctx context.Context) error {
	// Read before any snapshot of the step: each one holds all it says.
	pos, err := f.store.walPosition(ctx)
	if err != nil {
		return err
	}
	if err := f.catchUp(ctx); err != nil {
		return err
	}
	f.fresh(pos)
	return nil
}

// walMark is a moment a standby was streaming and had received WAL up to
// lsn.
type walMark struct {
	at  time.Time
	lsn int64
}

// maxWALMarks bounds the marks kept while a standby's replay lags: dropping
// the oldest can only make Lag report more, never less.
const maxWALMarks = 256

// fresh advances freshAt after a successful step that began with pos: the
// step applied every commit its snapshots held (see Lag).
func (f *Follower) fresh(pos walPosition) {
	if !pos.recovery {
		f.marks = f.marks[:0]
		f.freshAt.Store(pos.at.UnixNano())
		return
	}
	if pos.streaming {
		if len(f.marks) == maxWALMarks {
			f.marks = slices.Delete(f.marks, 0, 1)
		}
		f.marks = append(f.marks, walMark{pos.at, pos.receive})
	}
	n := 0
	for n < len(f.marks) && f.marks[n].lsn <= pos.replay {
		n++
	}
	if n > 0 {
		f.freshAt.Store(f.marks[n-1].at.UnixNano())
		f.marks = slices.Delete(f.marks, 0, n)
	}
}

// catchUp loads a snapshot when one is due, then applies every revision
// after the applied one.
func (f *Follower) catchUp(ctx context.Context) error {
	if !f.loaded.Load() || f.resync.Load() {
		if err := f.loadSnapshot(ctx); err != nil {
			return err
		}
	}
	for {
		batch, parts, err := f.fetch(ctx, f.applied.Load(), f.rereads())
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
			if err := f.apply(ctx, g); err != nil {
				// The store may now be incomplete: rebuild it from scratch.
				f.log.Error("change feed: apply failed; loading a full snapshot", "err", err, "revision", g.revision)
				f.resync.Store(true)
				return fmt.Errorf("apply revision %d: %w", g.revision, err)
			}
			f.applied.Store(g.revision)
			f.log.Debug("change feed: applied", "revision", g.revision, "changes", len(g.changes),
				"elapsed", time.Since(start).String())
		}
		// The parts were read where the batch ends: at the revision just
		// applied, which the organizations' skipped changes led to.
		for _, org := range slices.Sorted(maps.Keys(parts)) {
			if err := f.reinstate(ctx, org, parts[org]); err != nil {
				return err
			}
		}
		if len(batch) < f.cfg.BatchRevisions && len(f.reread) == 0 {
			return nil
		}
	}
}

// apply applies one revision's changes but those to quarantined
// organizations, which are marked for a re-read instead. When the Applier
// refuses a change that would break a rule, the organizations it names are
// quarantined and the rest is applied.
func (f *Follower) apply(ctx context.Context, g group) error {
	changes := f.route(g.changes)
	for {
		err := f.app.Apply(ctx, g.revision, changes)
		var rule *model.RuleError
		if err == nil || !errors.As(err, &rule) {
			return err
		}
		var orgs []string
		for _, org := range rule.Problem.Organizations {
			if _, held := f.quarantines.Get(org); !held {
				orgs = append(orgs, org)
			}
		}
		if len(orgs) == 0 {
			return err // no organization to hold out: rebuild from scratch
		}
		qs, qerr := f.app.Quarantine(ctx, orgs)
		if qerr != nil {
			return qerr
		}
		// Logged once re-read, with every problem of its data.
		f.log.Info("change feed: a change would break a rule; holding out its organizations and re-reading them",
			"org_ids", orgs, "revision", g.revision, "problem", rule.Problem.String())
		for _, q := range qs {
			q.Problems = []model.Problem{rule.Problem}
			f.quarantines.Put(q)
			f.unannounced[q.Organization] = true
			f.reread[q.Organization] = true
		}
		f.publishQuarantines()
		changes = f.route(changes)
	}
}

// route returns the changes to apply: those not to a quarantined
// organization. It marks the quarantined organizations they are to, and
// every one after a change to the shared data, for a re-read.
func (f *Follower) route(changes []model.Change) []model.Change {
	if f.quarantines.Len() == 0 {
		return changes
	}
	kept := changes[:0:0]
	for _, ch := range changes {
		if org, held := f.quarantines.Route(ch); held {
			f.reread[org] = true
			continue
		}
		if ch.Schema() {
			for _, org := range f.quarantines.Organizations() {
				f.reread[org] = true
			}
		}
		kept = append(kept, ch)
	}
	return kept
}

// rereads returns the quarantined organizations to re-read, sorted.
func (f *Follower) rereads() []string {
	return slices.Sorted(maps.Keys(f.reread))
}

// hold records quarantine q, logging it when it is new or its problems
// changed.
func (f *Follower) hold(q model.Quarantine, revision int64) {
	prev, held := f.quarantines.Get(q.Organization)
	f.quarantines.Put(q)
	if f.unannounced[q.Organization] {
		held = false
		delete(f.unannounced, q.Organization)
	} else if held && slices.EqualFunc(prev.Problems, q.Problems, func(a, b model.Problem) bool { return a.String() == b.String() }) {
		return
	}
	problems := make([]string, 0, min(len(q.Problems), maxLoggedProblems))
	for _, p := range q.Problems[:min(len(q.Problems), maxLoggedProblems)] {
		problems = append(problems, p.String())
	}
	msg := "organization quarantined: its data breaks a rule of the data model; its decisions answer organization_unavailable until a valid change lifts it"
	if held {
		msg = "organization still quarantined, with other problems"
	}
	f.log.Warn(msg, "org_id", q.Organization, "revision", revision,
		"problems", problems, "problem_count", len(q.Problems),
		"resources", len(q.Resources), "memberships", len(q.Memberships))
}

// maxLoggedProblems bounds the problems one log entry spells out.
const maxLoggedProblems = 20

// reinstate validates part, organization org re-read at the revision just
// applied, and swaps it in: the quarantine is lifted if org's data is
// valid again, kept (with the re-read's problems and ids) if not.
func (f *Follower) reinstate(ctx context.Context, org string, part *model.Dataset) error {
	isolated, err := part.Isolate()
	if err != nil {
		// The shared data itself breaks a rule: a full snapshot would fail
		// too. The organization stays quarantined; a later change retries.
		f.log.Error("change feed: re-reading a quarantined organization found problems in the shared data; it stays quarantined",
			"org_id", org, "err", err, "revision", part.Revision)
		delete(f.reread, org)
		return nil
	}
	if err := f.app.PutOrganization(ctx, org, isolated); err != nil {
		return fmt.Errorf("put organization %s: %w", org, err)
	}
	delete(f.reread, org)
	switch q := isolated.QuarantineOf(org); {
	case q != nil:
		f.hold(*q, part.Revision)
	case f.unannounced[org]:
		// The refused change was a step of a transaction that ends valid.
		delete(f.unannounced, org)
		f.quarantines.Delete(org)
		f.log.Info("organization re-read: its data is valid; served again", "org_id", org, "revision", part.Revision)
	default:
		f.quarantines.Delete(org)
		f.log.Info("organization quarantine lifted: its data is valid again", "org_id", org, "revision", part.Revision,
			"deleted", len(isolated.Organizations) == 0)
	}
	f.publishQuarantines()
	return nil
}

func (f *Follower) loadSnapshot(ctx context.Context) error {
	stages := progress.NewStages(f.cfg.Progress, f.log)
	defer stages.Done()
	stages.Report("reading the snapshot", 0, 0)
	raw, err := f.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	load := f.app.LoadDataset
	if el, ok := f.app.(EarlyLoader); ok {
		load = el.LoadEarly(raw)
	}
	ds, err := raw.Isolate()
	if err != nil {
		// A build started ends on its own; nothing is loaded.
		return fmt.Errorf("snapshot at revision %d: %w", raw.Revision, err)
	}
	stages.Report("building the decision store", 0, 0)
	err = load(ctx, ds)
	stages.Done()
	if err != nil {
		return fmt.Errorf("load snapshot at revision %d: %w", ds.Revision, err)
	}
	prev := f.quarantines
	f.quarantines = model.NewQuarantineSet(nil)
	for _, q := range ds.Quarantined {
		if old, held := prev.Get(q.Organization); held {
			f.quarantines.Put(old) // so that hold logs only what changed
		}
		f.hold(q, ds.Revision)
	}
	for _, org := range prev.Organizations() {
		if _, held := f.quarantines.Get(org); !held {
			f.log.Info("organization quarantine lifted: its data is valid again", "org_id", org, "revision", ds.Revision)
		}
	}
	clear(f.reread)
	clear(f.unannounced)
	f.publishQuarantines()
	f.applied.Store(ds.Revision)
	f.observeHead(ds.Revision)
	f.resync.Store(false)
	f.loaded.Store(true)
	return nil
}

// walPosition is what a step learns of the server's WAL before reading:
// whether it is a standby in recovery and, if so, whether it is streaming
// from its primary, the WAL it has received (or knows its primary has:
// the end its sender last reported) and the WAL it has replayed (byte
// positions).
type walPosition struct {
	at                  time.Time
	recovery, streaming bool
	receive, replay     int64
}

func (s *Store) walPosition(ctx context.Context) (walPosition, error) {
	p := walPosition{at: time.Now()}
	// The primary's end of WAL its sender last reported (latest_end_lsn)
	// counts as received: a standby that reconnects after a pause streams
	// again at once, but is only fresh once it has replayed what the
	// primary wrote meanwhile.
	err := s.db.QueryRowContext(ctx, `SELECT pg_is_in_recovery(),
		EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
		coalesce(greatest(pg_last_wal_receive_lsn() - '0/0'::pg_lsn,
			(SELECT max(latest_end_lsn) - '0/0'::pg_lsn FROM pg_stat_wal_receiver WHERE status = 'streaming'))::bigint, 0),
		coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)`).Scan(&p.recovery, &p.streaming, &p.receive, &p.replay)
	if err != nil {
		return p, translateUnavailable(fmt.Errorf("read the WAL position: %w", err))
	}
	return p, nil
}

// errResync says the log cannot bring the applied revision up to date.
var errResync = errors.New("change log truncated past the applied revision")

// group is the changes of one revision (one source transaction).
type group struct {
	revision int64
	changes  []model.Change
}

// fetch reads up to BatchRevisions revisions after `after`, in order, with
// their changes in the order they were made. When they reach the newest
// revision of its snapshot, it also reads, in the same snapshot, the rows
// of each organization of rereads (Store.readDataset): their state once the
// revisions are applied.
func (f *Follower) fetch(ctx context.Context, after int64, rereads []string) ([]group, map[string]*model.Dataset, error) {
	var out []group
	var parts map[string]*model.Dataset
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
		if head > after {
			var err error
			if out, err = readChanges(ctx, tx, after, f.cfg.BatchRevisions); err != nil {
				return err
			}
		}
		if len(rereads) == 0 || (len(out) > 0 && out[len(out)-1].revision != head) {
			return nil // re-read once the batch reaches the snapshot's head
		}
		parts = make(map[string]*model.Dataset, len(rereads))
		for _, org := range rereads {
			part, err := f.store.readDataset(ctx, tx, org)
			if err != nil {
				return fmt.Errorf("re-read organization %s: %w", org, err)
			}
			part.Revision = max(head, after)
			parts[org] = part
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, parts, nil
}

// readChanges returns the revisions after `after`, at most limit, with
// their changes, as tx sees them.
func readChanges(ctx context.Context, tx *sqlx.Tx, after int64, limit int) ([]group, error) {
	rows, err := tx.QueryContext(ctx, `SELECT r.revision, c.entity, c.op, c.data
		FROM (SELECT revision, txid FROM change_revisions WHERE revision > $1 ORDER BY revision LIMIT $2) r
		LEFT JOIN change_log c ON c.txid = r.txid
		ORDER BY r.revision, c.seq`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes after revision %d: %w", after, err)
	}
	defer rows.Close()
	var out []group
	for rows.Next() {
		var rev int64
		var entity, op sql.NullString
		var data []byte
		if err := rows.Scan(&rev, &entity, &op, &data); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].revision != rev {
			out = append(out, group{revision: rev})
		}
		if !entity.Valid {
			continue // a revision without logged rows
		}
		c, err := decodeChange(entity.String, op.String, data)
		if err != nil {
			return nil, fmt.Errorf("revision %d: %w", rev, err)
		}
		g := &out[len(out)-1]
		g.changes = append(g.changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
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
	case model.KindAssignment, entityGroupAssignment:
		c.Assignment = &model.Assignment{}
		target = c.Assignment
	case model.KindGroup:
		c.Group = &model.Group{}
		target = c.Group
	case model.KindGroupMember:
		c.GroupMember = &model.GroupMember{}
		target = c.GroupMember
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

// entityGroupAssignment is the change_log entity of a group role
// assignment (0008_groups.sql): a model.Assignment with GroupID set, kept
// apart from "assignment" so that its events read group_role_assignments.
const entityGroupAssignment = "group_assignment"
