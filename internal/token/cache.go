package token

import (
	"sync"
	"time"
)

// claimsCache maps the SHA-256 of a raw token to the claims it verified to.
// An entry is served only while the current time is before the token's exp
// and only while the key set is the one the token was verified with (gen).
// From exp on, the full verification decides (it allows the skew), so the
// cache never changes the outcome of Verify, only its cost.
//
// The hit path takes a read lock only. When the cache is full, an insert
// first drops expired and stale entries and, if that is not enough, evicts
// arbitrary entries down to 7/8 of the capacity, so the O(n) sweep runs at
// most once per max/8 inserts.
type claimsCache struct {
	max int

	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	claims Claims
	exp    time.Time
	gen    uint64
}

func newClaimsCache(maxEntries int) *claimsCache {
	return &claimsCache{max: maxEntries, entries: make(map[[32]byte]cacheEntry)}
}

// get returns the cached claims for key. The caller must not modify the
// returned slices.
func (c *claimsCache) get(key [32]byte, now time.Time, gen uint64) (Claims, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok {
		return Claims{}, false
	}
	if e.gen != gen || !now.Before(e.exp) {
		c.mu.Lock()
		delete(c.entries, key)
		c.mu.Unlock()
		return Claims{}, false
	}
	return e.claims, true
}

// put stores claims, which the cache then owns, until exp.
func (c *claimsCache) put(key [32]byte, claims Claims, exp time.Time, gen uint64, now time.Time) {
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now, gen)
	}
	c.entries[key] = cacheEntry{claims: claims, exp: exp, gen: gen}
}

func (c *claimsCache) evictLocked(now time.Time, gen uint64) {
	for k, e := range c.entries {
		if e.gen != gen || !now.Before(e.exp) {
			delete(c.entries, k)
		}
	}
	target := c.max - c.max/8
	if target >= c.max {
		target = c.max - 1
	}
	for k := range c.entries { // map order is unspecified: arbitrary eviction
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}

func (c *claimsCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
