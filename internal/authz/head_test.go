package authz

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeadBatcherIsFresh: many requests read the head while writes commit.
// Every request must get a head at least the one committed when it asked
// (no answer from a read that started before it), reads never overlap, and
// waiting requests share reads.
func TestHeadBatcherIsFresh(t *testing.T) {
	var committed atomic.Int64
	var inRead, reads atomic.Int32
	overlap := make(chan struct{}, 1)
	b := &headBatcher{timeout: time.Second, read: func(context.Context) (int64, error) {
		if inRead.Add(1) > 1 {
			select {
			case overlap <- struct{}{}:
			default:
			}
		}
		defer inRead.Add(-1)
		reads.Add(1)
		h := committed.Load()
		time.Sleep(200 * time.Microsecond) // commits go on meanwhile
		return h, nil
	}}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				committed.Add(1)
				time.Sleep(20 * time.Microsecond)
			}
		}
	})
	const readers, each = 16, 100
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for range each {
				before := committed.Load()
				got, err := b.get(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if got < before {
					t.Errorf("head %d, but %d had committed before the request", got, before)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	writers.Wait()
	select {
	case <-overlap:
		t.Error("two head reads ran at once")
	default:
	}
	if n := reads.Load(); n >= readers*each {
		t.Errorf("%d reads for %d requests: none shared", n, readers*each)
	}
	t.Logf("%d reads for %d requests", reads.Load(), readers*each)
}

// TestHeadBatcherCanceled: a request whose context ends stops waiting.
func TestHeadBatcherCanceled(t *testing.T) {
	release := make(chan struct{})
	b := &headBatcher{timeout: time.Second, read: func(context.Context) (int64, error) { <-release; return 1, nil }}
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.get(ctx); err == nil {
		t.Fatal("no error after the context ended")
	}
}
