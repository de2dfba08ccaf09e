package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/apikey"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/metrics"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// servePostgresFlags configure `trellis serve` with PostgreSQL as the data
// source.
type servePostgresFlags struct {
	DatabaseURL  string
	PollInterval time.Duration
	PollOnly     bool
	MaxDepth     int
	MaxLag       time.Duration
	// FullyConsistent makes every decision that names no revision wait
	// for the head of HeadURL (default: DatabaseURL).
	FullyConsistent bool
	HeadURL         string
	// Wait is how long the first connection is retried while the server
	// is unreachable (starting with Trellis, say).
	Wait time.Duration
}

func (f *servePostgresFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.DatabaseURL, "database-url", "", databaseURLUsage+": serve its data, following every committed change (instead of --data)")
	fs.DurationVar(&f.PollInterval, "poll-interval", time.Second, "how often the change log is read besides LISTEN/NOTIFY (the only way on a read replica)")
	fs.BoolVar(&f.PollOnly, "poll-only", false, "do not LISTEN, only poll the change log (read replicas, where NOTIFY does not arrive)")
	fs.DurationVar(&f.MaxLag, "max-lag", 2*time.Second, "not ready on /ready while the data may be further behind the primary database than this (0: no bound)")
	fs.BoolVar(&f.FullyConsistent, "fully-consistent", false, "every decision that names no revision reflects every write committed before it arrived: one head-revision query per round of concurrent requests (for clients that cannot pass revisions, like the WorkOS SDK)")
	fs.StringVar(&f.HeadURL, "head-database-url", "", "with --fully-consistent: the database whose head decisions wait for, e.g. the primary of the standby in --database-url (default: --database-url)")
	fs.IntVar(&f.MaxDepth, "max-depth", model.DefaultMaxDepth, "most levels of a resource tree, the organization root included (PostgreSQL writes)")
	fs.DurationVar(&f.Wait, "database-wait", 30*time.Second, "how long to retry the first connection while PostgreSQL is unreachable (0: fail at once); other errors fail at once")
}

// validate reports a setting that cannot work; dataFile is --data.
func (f servePostgresFlags) validate(dataFile string) error {
	switch {
	case f.DatabaseURL != "" && dataFile != "":
		return errors.New("give --data or --database-url, not both")
	case f.PollInterval <= 0:
		return errors.New("--poll-interval must be positive")
	case f.MaxDepth <= 0:
		return errors.New("--max-depth must be positive")
	case f.MaxLag < 0:
		return errors.New("--max-lag must not be negative (0: no bound)")
	case f.FullyConsistent && f.DatabaseURL == "":
		return errors.New("--fully-consistent needs --database-url (a data file is always current)")
	case f.HeadURL != "" && !f.FullyConsistent:
		return errors.New("--head-database-url is for --fully-consistent: give both or neither")
	}
	return nil
}

// pgSource is PostgreSQL feeding an engine: the store, its follower, the
// head-revision read of fully consistent decisions, and stop, which ends
// the follower and closes the stores.
type pgSource struct {
	engine   *engine.Engine
	store    *postgres.Store
	follower *postgres.Follower
	head     func(context.Context) (int64, error)
	stop     func()
}

// startPostgres connects, migrates (on a read-only standby: checks that the
// schema is migrated), and starts following the database into a new
// engine. The first load happens in the background: the follower's Ready
// turns true once it is done. stop ends the follower and closes the store.
func startPostgres(ctx context.Context, opts engine.Options, f servePostgresFlags, m *metrics.Metrics, log *slog.Logger, term io.Writer) (*pgSource, error) {
	eng, err := engine.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	store, err := postgres.OpenWaiting(ctx, f.DatabaseURL, postgres.Config{MaxDepth: f.MaxDepth, Logger: log}, f.Wait, func(err error, next time.Duration) {
		log.Warn("waiting for PostgreSQL", "error", err.Error(), "retry_in", next.String(), "database_wait", f.Wait.String())
	})
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx); err != nil {
		_ = store.Close()
		return nil, err
	}
	follower := store.NewFollower(meteredApplier{eng, m}, postgres.FollowerConfig{PollInterval: f.PollInterval, NoListen: f.PollOnly, MaxLag: f.MaxLag, Logger: log, Progress: term})
	head, closeHead := follower.Head, func() {}
	if f.HeadURL != "" {
		hs, err := postgres.Open(ctx, f.HeadURL, postgres.Config{Logger: log})
		if err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("--head-database-url: %w", err)
		}
		head, closeHead = hs.Head, func() { _ = hs.Close() }
	}
	m.WatchLag(follower.Lag)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = follower.Run(runCtx)
	}()
	go func() {
		// Metrics of the follower's state, refreshed every second.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			applied, head, stale := follower.Status()
			m.SetRevision(applied, head)
			m.SetStale(stale)
			m.SetQuarantined(len(follower.Quarantined()))
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return &pgSource{engine: eng, store: store, follower: follower, head: head, stop: func() {
		cancel()
		<-done
		closeHead()
		_ = store.Close()
	}}, nil
}

// meteredApplier records apply latency and store size around the engine.
type meteredApplier struct {
	eng *engine.Engine
	m   *metrics.Metrics
}

func (a meteredApplier) LoadDataset(ctx context.Context, ds *model.Dataset) error {
	return a.loaded(ds, a.eng.LoadDataset(ctx, ds))
}

// LoadEarly builds ds's store while the follower validates the snapshot
// (postgres.EarlyLoader).
func (a meteredApplier) LoadEarly(ds *model.Dataset) func(context.Context, *model.Dataset) error {
	load := a.eng.LoadEarly(ds)
	return func(ctx context.Context, final *model.Dataset) error { return a.loaded(final, load(ctx, final)) }
}

// loaded records the size of ds once a load of it succeeded (err nil).
func (a meteredApplier) loaded(ds *model.Dataset, err error) error {
	if err == nil {
		a.m.SetStoreSize(len(ds.Organizations) + len(ds.Resources))
	}
	return err
}

func (a meteredApplier) Quarantine(ctx context.Context, orgs []string) ([]model.Quarantine, error) {
	return a.eng.Quarantine(ctx, orgs)
}

func (a meteredApplier) PutOrganization(ctx context.Context, org string, part *model.Dataset) error {
	return a.eng.PutOrganization(ctx, org, part)
}

func (a meteredApplier) Apply(ctx context.Context, rev int64, changes []model.Change) error {
	start := time.Now()
	err := a.eng.Apply(ctx, rev, changes)
	a.m.ObserveApply(time.Since(start))
	return err
}

// LagHeader is the response header that carries how far behind the
// primary database the data of the node's answers may be
// (postgres.Follower.Lag), in seconds.
const LagHeader = "X-Trellis-Lag"

// withLag sets LagHeader on every answer.
func withLag(next http.Handler, lag func() time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(LagHeader, strconv.FormatFloat(lag().Seconds(), 'f', 3, 64))
		next.ServeHTTP(w, r)
	})
}

// withAdmin also serves the admin write route (POST /v1/admin/changes),
// for callers with one of apiKeys; acked learns of every write it answers.
func withAdmin(next http.Handler, w postgres.Writer, acked func(context.Context, int64), apiKeys []string, log *slog.Logger) (http.Handler, error) {
	admin, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: w, Authorize: apiKeyCheck(apiKeys), Logger: log, Acknowledged: acked})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle(postgres.AdminPath, admin)
	return mux, nil
}

// apiKeyCheck accepts "Authorization: Bearer <key>" for any of keys (the
// rule of package apikey). With no keys configured, nothing is accepted.
func apiKeyCheck(keys []string) func(*http.Request) bool { return apikey.New(keys).Valid }
