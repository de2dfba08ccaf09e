package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Waker tells waiters that the log may have grown. The zero value is ready
// to use and safe for concurrent use.
type Waker struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel that is closed at the next Wake.
func (w *Waker) Wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// Wake wakes every current waiter.
func (w *Waker) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// notifyChannel is the channel every commit NOTIFYs (package postgres).
const notifyChannel = "trellis_changes"

// Listen wakes w at every commit of the database at dsn (LISTEN
// trellis_changes) until ctx ends, and once a second in any case, so that
// a lost notification or connection only delays a waiter. It reconnects by
// itself; errors go to log.
func (w *Waker) Listen(ctx context.Context, dsn string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Warn("events: listen", "error", err)
		}
		if ev == pq.ListenerEventReconnected {
			w.Wake() // what was notified meanwhile is lost
		}
	})
	defer func() { _ = l.Close() }()
	if err := l.Listen(notifyChannel); err != nil {
		log.Warn("events: listen; polling only", "error", err)
	}
	w.wakeOn(ctx, l.Notify)
}

// Poll wakes w once a second until ctx ends: Listen for a database that
// cannot LISTEN (a hot standby, where no NOTIFY arrives).
func (w *Waker) Poll(ctx context.Context) { w.wakeOn(ctx, nil) }

// wakeOn wakes w at every notification (none on a nil channel) and once a
// second until ctx ends.
func (w *Waker) wakeOn(ctx context.Context, notify <-chan *pq.Notification) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-notify:
			w.Wake()
		case <-tick.C:
			w.Wake()
		}
	}
}
