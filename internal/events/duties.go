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
	// PruneChanges, when set, prunes the change log of what is older than
	// the time it is given (postgres.Store.PruneChangesBefore); the
	// pruner calls it just before it prunes the events of that age.
	PruneChanges func(ctx context.Context, before time.Time) error
	Webhooks     bool
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
	wg.Go(func() { d.prune(ctx, log) })
	if d.Webhooks {
		wg.Go(func() { NewDeliverer(d.Log, DelivererConfig{Logger: log}).Run(ctx, d.Waker) })
	}
	wg.Wait()
}

// prune prunes the change log (PruneChanges) and then the events older
// than Retention, at once and every pruneInterval until ctx ends. In that
// order: the change log's cut is found by the age of its events.
func (d Duties) prune(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		before := time.Now().Add(-d.Retention)
		if d.PruneChanges != nil {
			if err := d.PruneChanges(ctx, before); err != nil && ctx.Err() == nil {
				log.Warn("events: prune the change log failed", "error", err)
			}
		}
		if _, err := d.Log.Prune(ctx, before); err != nil && ctx.Err() == nil {
			log.Warn("events: prune failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
