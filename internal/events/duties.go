package events

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"
)

// Duties is what an instance does for the event log besides serving it.
// On a writable database it wakes the log's waiters at every commit
// (LISTEN), prunes the log and, with Webhooks, delivers webhooks. On a
// read-only one (a hot standby, which replicates the log and may neither
// LISTEN nor write) it only polls for waiters, and asks every Recheck
// whether the database is still read-only: once the standby is promoted,
// the instance takes up the writable duties, without a restart.
type Duties struct {
	Log       *Log
	DSN       string // for LISTEN
	Waker     *Waker
	Retention time.Duration // what the pruner keeps
	Webhooks  bool
	// ReadOnly reports whether the database is read-only (postgres.Store's
	// InRecovery).
	ReadOnly func(context.Context) (bool, error)
	// Recheck is how often a read-only database is asked again; default
	// DefaultRecheck.
	Recheck time.Duration
	Logger  *slog.Logger
}

// DefaultRecheck is how often Duties asks a read-only database whether it
// was promoted.
const DefaultRecheck = 5 * time.Second

// pruneInterval is how often the pruner runs.
const pruneInterval = time.Hour

// Run does the duties until ctx ends; readOnly is the database's state at
// the start (ReadOnly's answer).
func (d Duties) Run(ctx context.Context, readOnly bool) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if readOnly {
		log.Info("events: read-only database: serving the event log; webhooks and pruning run on the primary's instances, or on this one once its database is promoted")
		if !d.awaitPromotion(ctx) {
			return
		}
		log.Info("events: the database is writable now (promoted): listening, pruning and delivering webhooks")
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.Waker.Listen(ctx, d.DSN, log) })
	wg.Go(func() {
		d.Log.RunPruner(ctx, d.Retention, pruneInterval, func(err error) { log.Warn("events: prune failed", "error", err) })
	})
	if d.Webhooks {
		wg.Go(func() { NewDeliverer(d.Log, DelivererConfig{Logger: log}).Run(ctx, d.Waker) })
	}
	wg.Wait()
}

// awaitPromotion polls for the waiters until the database answers that it
// is writable (true) or ctx ends (false). An error asking counts as still
// read-only: the next recheck asks again.
func (d Duties) awaitPromotion(ctx context.Context) bool {
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { d.Waker.Poll(pollCtx); close(polled) }()
	defer func() { stopPolling(); <-polled }()
	recheck := time.NewTicker(cmp.Or(d.Recheck, DefaultRecheck))
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-recheck.C:
			if ro, err := d.ReadOnly(ctx); err == nil && !ro {
				return true
			}
		}
	}
}
