package authz

import (
	"context"
	"sync"
	"time"
)

// headBatcher shares head-revision reads among concurrent requests: one
// query at a time, and every request that arrives while it runs waits for
// the next one, which starts when it ends. A request is only ever answered
// by a query that started after it arrived, so the head it gets is at
// least the head when it arrived: fully consistent, at most two queries'
// latency, and one query per round trip however many requests wait.
type headBatcher struct {
	read    func(context.Context) (int64, error)
	timeout time.Duration // bounds one read

	mu      sync.Mutex
	running bool
	next    *headRound // the round that starts when the running one ends
}

type headRound struct {
	done chan struct{}
	head int64
	err  error
}

// get returns a head revision read after get was called.
func (b *headBatcher) get(ctx context.Context) (int64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &headRound{done: make(chan struct{})}
	}
	r := b.next
	if !b.running {
		b.start()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.head, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// start runs the next round. b.mu is held.
func (b *headBatcher) start() {
	r := b.next
	b.next, b.running = nil, true
	go func() {
		// Not the ctx of one waiter: the round answers them all.
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		r.head, r.err = b.read(ctx)
		cancel()
		close(r.done)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.running = false
		if b.next != nil {
			b.start()
		}
	}()
}
