package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/console"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/devmode"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/metrics"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/progress"
	"github.com/trellis-authz/trellis/internal/requestid"
	"github.com/trellis-authz/trellis/internal/shard"
	"github.com/trellis-authz/trellis/internal/token"
)

// serveConfig is everything `trellis serve` is configured with.
type serveConfig struct {
	Addr     string
	DataFile string
	Dev      bool
	// Console serves the browser console at /console (package console).
	Console bool
	// Shard is --shard: the organizations this node holds (package shard).
	Shard string

	tokenFlags
	decisionFlags

	MaxBodyBytes  int64
	DecisionCache int
	PprofAddr     string

	// DefaultRole is the role of a membership created through the
	// WorkOS-compatible API without role_slug or role_slugs.
	DefaultRole string

	Policy   policyFlags        // policyflags.go
	Bundles  serveBundleFlags   // bundle.go
	Postgres servePostgresFlags // pgserve.go
	Events   serveEventsFlags   // events.go
}

func serveCommand(run func(context.Context, serveConfig, io.Writer, io.Writer) error) *cobra.Command {
	return configCommand("serve", "answer decision queries over HTTP (embedded demo data by default)",
		"Answer decision queries over HTTP. With no --data, serves the embedded demo dataset.",
		(*serveConfig).define, (*serveConfig).check, run)
}

func (c *serveConfig) define(fs *pflag.FlagSet) {
	defineConfig(fs)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.DataFile, "data", "", "YAML or JSON data file to load instead of the embedded demo dataset")
	fs.BoolVar(&c.Console, "console", false, "serve the browser console at /console: static pages that call this server's public API with the API key the user signs in with")
	fs.StringVar(&c.Shard, "shard", "", "hold only shard K/N of the organizations (e.g. 1/4: those whose id's CRC-32 mod 4 is 0) and answer requests about others 421 naming their shard; empty: all")
	fs.BoolVar(&c.Dev, "dev", false, "development mode: mint tokens with an ephemeral key, serve its JWKS and print example requests (never in production)")
	c.tokenFlags.register(fs)
	c.decisionFlags.register(fs)
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", httpapi.DefaultMaxBodyBytes, "largest request body accepted")
	fs.IntVar(&c.DecisionCache, "decision-cache-size", defaultDecisionCache, "single-check answers kept for the current data (0: no cache); any change of the data empties it")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve Go's net/http/pprof profiles on this loopback address (e.g. 127.0.0.1:6060); empty: off")
	fs.StringVar(&c.DefaultRole, "default-role", "", "WorkOS-compatible API: default role of memberships, overriding the one set through the API or the data file (needs --database-url); empty: that one, else the role \"member\" if it exists, else none")
	c.Policy.register(fs, true)
	c.Bundles.register(fs)
	c.Postgres.register(fs)
	c.Events.register(fs)
}

func (c *serveConfig) check() error {
	if err := c.Postgres.validate(c.DataFile); err != nil {
		return err
	}
	if err := c.Events.validate(); err != nil {
		return err
	}
	return c.validate()
}

// validate reports the first setting that cannot work, saying how to fix it.
func (c *serveConfig) validate() error {
	if _, err := shard.Parse(c.Shard); err != nil {
		return fmt.Errorf("--shard: %w", err)
	}
	if c.Dev && c.hasJWKS() {
		return errors.New("--dev mints its own tokens and cannot be combined with --jwks-url or --jwks-file: drop one")
	}
	if err := c.tokenFlags.validate(); err != nil {
		return err
	}
	if err := c.decisionFlags.validate(); err != nil {
		return err
	}
	switch {
	case c.MaxBodyBytes <= 0:
		return errors.New("--max-body-bytes must be positive")
	case c.DecisionCache < 0:
		return errors.New("--decision-cache-size must not be negative (0 turns the cache off)")
	case c.DefaultRole != "" && c.Postgres.DatabaseURL == "":
		return errors.New("--default-role is for the WorkOS-compatible API, which needs --database-url: give both or neither")
	}
	if c.PprofAddr != "" {
		return checkPprofAddr(c.PprofAddr)
	}
	return nil
}

// defaultDecisionCache is the default of --decision-cache-size. An entry
// holds its key and the decision with its reason: ~600 B for a deny on the
// demo data (a heap measurement over 10,000 entries), more for an allow
// naming its grant, so the default stays under ~50 MB.
const defaultDecisionCache = 50_000

// devIssuer is the issuer of the tokens --dev mints.
const devIssuer = "https://trellis.dev.invalid"

// service is a wired Trellis server: the handler and what --dev minted.
type service struct {
	handler http.Handler
	engine  *engine.Engine
	signer  *token.Signer // --dev only
	// data returns the data being served and source names it (--dev).
	data    func(ctx context.Context) (*model.Dataset, error)
	source  string
	authz   *authz.Service
	apiKeys []string
	metrics *metrics.Metrics
	policy  *policyReloader
	cleanup func()
}

// newService loads the data and wires engine, token verifier, service layer
// and HTTP handler. A load slower than a few seconds shows its progress:
// as a bar when term is a terminal, as log lines otherwise (term may be
// nil).
func newService(ctx context.Context, c serveConfig, log *slog.Logger, term io.Writer) (*service, error) {
	svc := &service{apiKeys: c.APIKeys, metrics: metrics.New(), cleanup: func() {}}
	eopts, err := c.Policy.engineOptions()
	if err != nil {
		return nil, err
	}
	sh, _ := shard.Parse(c.Shard) // checked by validate
	if !sh.Whole() {
		eopts.Holds = sh.Holds
	}
	var eng *engine.Engine
	var pg *pgSource          // PostgreSQL mode only
	quarantined := []string{} // data file mode: its quarantined organizations
	if c.Postgres.DatabaseURL != "" {
		if pg, err = startPostgres(ctx, eopts, c.Postgres, svc.metrics, log, term); err != nil {
			return nil, err
		}
		eng, svc.cleanup = pg.engine, pg.stop
		svc.data, svc.source = pg.store.Snapshot, "the data in PostgreSQL"
	} else {
		loadStart := time.Now()
		stages := progress.NewStages(term, log)
		if eng, err = engine.New(ctx, eopts); err != nil {
			return nil, err
		}
		ds := datafile.Demo()
		load := eng.LoadDataset
		if c.DataFile != "" {
			// An organization whose entries break a rule is held out;
			// every other one is served. The store is built while the
			// file's dataset is validated.
			stages.Report("reading the data file", 0, 0)
			ds, err = datafile.LoadIsolatedEarly(c.DataFile, func(d *model.Dataset) { load = eng.LoadEarly(d) })
			stages.Done()
			if err != nil {
				return nil, err
			}
		}
		for _, q := range ds.Quarantined {
			if !sh.Holds(q.Organization) {
				continue // another shard's
			}
			log.Warn("organization quarantined: its data breaks a rule of the data model; its decisions answer organization_unavailable",
				"org_id", q.Organization, "problems", q.String(), "file", c.DataFile)
			quarantined = append(quarantined, q.Organization)
		}
		stages.Report("building the decision store", 0, 0)
		if c.Dev {
			// --dev mints tokens for the memberships of the data it
			// serves. Otherwise nothing holds the dataset once the store
			// is built: kept, its millions of strings are what every GC
			// cycle marks (tier M: 530 MB, 6.5 M objects).
			svc.data = func(context.Context) (*model.Dataset, error) { return ds, nil }
		}
		svc.source = "the embedded demo data"
		if c.DataFile != "" {
			svc.source = "the data file " + c.DataFile
		}
		err = load(ctx, ds)
		stages.Done()
		if err != nil {
			return nil, err
		}
		log.Info("loaded "+svc.source, "organizations", len(ds.Organizations), "resources", len(ds.Resources),
			"assignments", len(ds.Assignments), "seconds", time.Since(loadStart).Seconds())
		// A data file is loaded once: its revision is the head, never stale.
		svc.metrics.SetRevision(eng.Revision(), eng.Revision())
		svc.metrics.SetStoreSize(len(ds.Organizations) + len(ds.Resources))
		svc.metrics.SetQuarantined(len(quarantined))
	}
	svc.engine = eng

	var verifier authz.Verifier
	tcfg := c.tokenFlags.config(log)
	tcfg.KeyObserver = svc.metrics
	if c.Dev {
		log.Warn("DEVELOPMENT MODE: tokens are minted with an ephemeral key anyone with this process's output can use; never run --dev in production")
		if svc.signer, err = token.NewSigner(token.RS256, "trellis-dev"); err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "trellis-dev-")
		if err != nil {
			return nil, err
		}
		prev := svc.cleanup
		svc.cleanup = func() { _ = os.RemoveAll(dir); prev() }
		tcfg.JWKSFile, tcfg.Issuer, tcfg.Algorithms = filepath.Join(dir, "jwks.json"), devIssuer, []string{token.RS256}
		if err := os.WriteFile(tcfg.JWKSFile, svc.signer.JWKS(), 0o600); err != nil {
			svc.cleanup()
			return nil, err
		}
		if len(svc.apiKeys) == 0 {
			svc.apiKeys = []string{"trellis_dev_" + randomHex(12)}
		}
	}
	if tcfg.JWKSFile != "" || tcfg.JWKSURL != "" {
		v, err := token.New(ctx, tcfg)
		if err != nil {
			svc.cleanup()
			return nil, err
		}
		verifier = v
	} else {
		log.Info("token layer off: no --jwks-url or --jwks-file; only membership subjects (with an API key) are answered")
	}

	acfg := authz.Config{Engine: eng, Tokens: verifier, MaxWait: c.MaxWait, MaxBatch: c.MaxBatch, DecisionCacheSize: c.DecisionCache}
	ready := func() (bool, map[string]any) {
		return eng.Loaded(), map[string]any{"revision": eng.Revision(), "stale": false, "quarantined_organizations": quarantined}
	}
	if pg != nil {
		acfg.Head, ready = pg.head, pg.follower.Ready
		acfg.FullyConsistent = c.Postgres.FullyConsistent
	}
	svc.policy = newPolicyReloader(c.Policy, eng, svc.metrics, log)
	dataReady := ready
	ready = func() (bool, map[string]any) {
		ok, details := dataReady()
		maps.Copy(details, svc.policy.status())
		if !sh.Whole() {
			details["shard"] = sh.String()
		}
		return ok, details
	}
	as, err := authz.New(acfg)
	if err != nil {
		svc.cleanup()
		return nil, err
	}
	svc.metrics.WatchDecisionCache(func() (uint64, uint64) {
		st := as.CacheStats()
		return st.Hits, st.Misses
	})
	var decisionLog *slog.Logger
	if c.DecisionLog {
		decisionLog = log.With("log", "decision")
	}
	svc.handler, err = httpapi.New(httpapi.Config{
		Service: as, APIKeys: svc.apiKeys, RequireAPIKey: c.RequireAPIKey, MaxBodyBytes: c.MaxBodyBytes,
		Logger: log, DecisionLog: decisionLog, Metrics: svc.metrics,
		Ready: ready,
	})
	if err != nil {
		svc.cleanup()
		return nil, err
	}
	var bundles bundle.Source = engineSource{eng}
	if pg != nil {
		bundles = storeSource{eng, pg.store}
	}
	if svc.handler, svc.policy.bundles, err = withBundles(ctx, svc.handler, c.Bundles, eopts.Modules, tcfg, bundles, svc.apiKeys, log); err != nil {
		svc.cleanup()
		return nil, err
	}
	svc.authz = as
	if svc.signer != nil {
		svc.handler = devmode.Handler(svc.handler, svc.devConfig())
	}
	if pg != nil {
		if svc.handler, err = withAdmin(svc.handler, pg.store, as.Acknowledged, svc.apiKeys, log); err != nil {
			svc.cleanup()
			return nil, err
		}
	}
	if svc.handler, err = withWorkOS(svc.handler, c, pg, as, svc.apiKeys, log); err != nil {
		svc.cleanup()
		return nil, err
	}
	var stopEvents func()
	if svc.handler, stopEvents, err = withEvents(svc.handler, c.Events, pg, c.Postgres.DatabaseURL, svc.apiKeys, c.MaxBodyBytes, log); err != nil {
		svc.cleanup()
		return nil, err
	}
	stopReloads := svc.policy.onHangup(context.WithoutCancel(ctx))
	prev := svc.cleanup
	svc.cleanup = func() { stopReloads(); stopEvents(); prev() }
	svc.handler = withMetrics(shard.Handler(svc.handler, sh, c.MaxBodyBytes), svc.metrics)
	if c.Console {
		svc.handler = console.Mount(svc.handler)
	}
	if pg != nil {
		svc.handler = withLag(svc.handler, pg.follower.Lag)
	}
	svc.handler = requestid.Handler(svc.handler)
	return svc, nil
}

// withMetrics also serves the Prometheus metrics at GET /metrics.
func withMetrics(next http.Handler, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

func (svc *service) devConfig() devmode.Config {
	return devmode.Config{Signer: svc.signer, Issuer: devIssuer, APIKeys: svc.apiKeys, Data: svc.data}
}

func serve(ctx context.Context, c serveConfig, stdout, stderr io.Writer) error {
	log := newLogger(stderr, c.LogLevel)
	// Bind first, so that a busy address fails at once, not after the load;
	// while loading, /health is live and everything else answers not_ready.
	ln, err := listen(c.Addr)
	if err != nil {
		return err
	}
	h := &swapHandler{}
	h.set(loading)
	var svc *service
	defer func() {
		if svc != nil {
			svc.cleanup()
		}
	}()
	var background []func(context.Context) error
	if c.PprofAddr != "" {
		background = append(background, func(ctx context.Context) error { return servePprof(ctx, c.PprofAddr, log) })
	}
	return serveOn(ctx, ln, h, log, func(addr string) error {
		log.Info("listening; loading the data", "addr", addr)
		if svc, err = newService(ctx, c, log, stderr); err != nil {
			return err
		}
		// Loading built the store from a parsed dataset and an AST document
		// that are garbage now: collect them and give their memory back, so
		// that the heap's next growth target follows from the store alone,
		// not from the peak of the load.
		debug.FreeOSMemory()
		h.set(svc.handler)
		log.Info("serving", "addr", addr, "revision", svc.engine.Revision())
		if svc.signer == nil {
			return nil
		}
		// Printed once serving, so the commands work as soon as they appear.
		examples, err := svc.devConfig().Examples(ctx, svc.authz, 12*time.Hour)
		if err != nil {
			return fmt.Errorf("--dev: example requests: %w", err)
		}
		return devmode.PrintHelp(stdout, "http://"+addr, svc.source, svc.apiKeys[0], examples)
	}, background...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
