package main

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/metrics"
	"github.com/trellis-authz/trellis/policies"
)

// policyFlags choose the policies a command evaluates or ships: Trellis's
// own, and a team's extensions (README "Extensions").
type policyFlags struct {
	PolicyDir string
	Budget    time.Duration
}

func (p *policyFlags) register(fs *pflag.FlagSet, budget bool) {
	fs.StringVar(&p.PolicyDir, "policy-dir", "", "directory of your own Rego modules, packages trellis.ext.<name>: extensions that may deny what Trellis allows (README \"Extensions\")")
	if budget {
		fs.DurationVar(&p.Budget, "policy-budget", engine.DefaultBudget, "with --policy-dir: the longest one evaluation may take; past it the decision fails, and so denies")
	}
}

// modules returns Trellis's policy modules with the extensions.
func (p policyFlags) modules() (map[string]string, error) {
	mods := policies.Modules()
	if p.PolicyDir == "" {
		return mods, nil
	}
	ext, err := policies.Extensions(p.PolicyDir)
	if err != nil {
		return nil, err
	}
	maps.Copy(mods, ext)
	return mods, nil
}

// engineOptions are the options of the engine of a server.
func (p policyFlags) engineOptions() (engine.Options, error) {
	mods, err := p.modules()
	return engine.Options{Modules: mods, Budget: p.Budget}, err
}

// policyReloader reloads --policy-dir into a server's engine and bundle
// server (`kill -HUP`): one reload at a time, each atomic in the engine
// (engine.SetModules); a set that fails to load leaves the one in use.
type policyReloader struct {
	flags   policyFlags
	engine  *engine.Engine
	bundles *bundle.Server // nil without bundles
	metrics *metrics.Metrics
	log     *slog.Logger

	mu      sync.Mutex
	lastErr error // of the last reload; guarded by mu
}

func newPolicyReloader(flags policyFlags, eng *engine.Engine, m *metrics.Metrics, log *slog.Logger) *policyReloader {
	m.SetPolicy(eng.PolicyRevision())
	return &policyReloader{flags: flags, engine: eng, metrics: m, log: log}
}

// reload reads --policy-dir again and puts it in use.
func (r *policyReloader) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flags.PolicyDir == "" {
		r.log.Info("policy reload asked for, but there is no --policy-dir: nothing to reload")
		return nil
	}
	mods, err := r.flags.modules()
	if err == nil {
		err = r.engine.SetModules(ctx, mods)
	}
	r.metrics.ObservePolicyReload(err)
	r.lastErr = err
	if err != nil {
		r.log.Error("policy reload failed; the policies in use stay", "policy_dir", r.flags.PolicyDir,
			"policy_revision", r.engine.PolicyRevision(), "err", err.Error())
		return err
	}
	if r.bundles != nil {
		r.bundles.SetModules(mods)
	}
	r.metrics.SetPolicy(r.engine.PolicyRevision())
	r.log.Info("policies reloaded", "policy_dir", r.flags.PolicyDir, "policy_revision", r.engine.PolicyRevision())
	return nil
}

// status is what /ready says of the policies: their revision, and why the
// last reload failed if it did.
func (r *policyReloader) status() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := map[string]any{"policy_revision": r.engine.PolicyRevision()}
	if r.lastErr != nil {
		st["policy_reload_error"] = r.lastErr.Error()
	}
	return st
}

// onHangup reloads on every SIGHUP until stop is called (which returns
// once no reload runs). SIGHUP no longer ends the process.
func (r *policyReloader) onHangup(ctx context.Context) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				_ = r.reload(ctx) // logged, counted and shown on /ready
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}
