package authz

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// decisionCache holds the policy's answers to single checks for the newest
// generation of the data only (engine.Engine.Generation: it changes with
// every change of the data and, unlike a revision, is never reused). An
// entry is the decision evaluated on exactly the generation it is filed
// under, and a lookup asks for exactly the engine's current generation,
// read after the request's consistency wait: a cached answer is therefore
// never older than the request allows, and an answer computed on older data
// is never filed once newer data was seen. A new generation empties the
// cache. A nil *decisionCache caches nothing.
type decisionCache struct {
	max int

	mu  sync.RWMutex
	gen uint64
	m   map[string]cached

	hits, misses atomic.Uint64
}

// cached is a decision and the revision of the data it was evaluated on.
type cached struct {
	d   Decision
	rev int64
}

func newDecisionCache(size int) *decisionCache {
	if size <= 0 {
		return nil
	}
	return &decisionCache{max: size, m: make(map[string]cached)}
}

// get returns the decision filed for key at generation gen. A nil key is
// never cached.
func (c *decisionCache) get(gen uint64, key []byte) (cached, bool) {
	if c == nil || key == nil {
		return cached{}, false
	}
	c.mu.RLock()
	e, ok := c.m[string(key)] // no copy of key: Go looks up without one
	ok = ok && c.gen == gen
	c.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return e, ok
}

// put files e, evaluated at generation gen, under key. At capacity it
// evicts an arbitrary entry (Go randomizes where a map's iteration starts).
func (c *decisionCache) put(gen uint64, key []byte, e cached) {
	if c == nil || key == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return
	case gen > c.gen:
		clear(c.m)
		c.gen = gen
	case len(c.m) >= c.max:
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(key)] = e
}

// CacheStats counts decision cache lookups.
type CacheStats struct {
	Hits, Misses uint64
}

// CacheStats returns the decision cache's counters (zero when it is off).
func (s *Service) CacheStats() CacheStats {
	if s.cache == nil {
		return CacheStats{}
	}
	return CacheStats{Hits: s.cache.hits.Load(), Misses: s.cache.misses.Load()}
}

// appendCheckKey appends to b the cache key of check c by subject v:
// every part of the policy input, each length-prefixed so that no two
// inputs share a key. It returns nil (not cached) for a subject whose token
// failed verification.
func appendCheckKey(b []byte, v subject, c Check) []byte {
	if v.tokenErr != nil {
		return nil
	}
	if t := v.claims; t != nil {
		b = append(b, 't')
		b = appendFields(b, t.Subject, t.OrganizationID, t.MembershipID, t.Role)
		b = binary.AppendUvarint(b, uint64(len(t.Roles)))
		b = appendFields(b, t.Roles...)
		b = binary.AppendUvarint(b, uint64(len(t.Permissions)))
		b = appendFields(b, t.Permissions...)
	} else {
		b = append(b, 'm')
		b = appendFields(b, v.membershipID)
	}
	r := c.Resource
	return appendFields(b, c.Permission, r.ID, r.Type, r.ExternalID, r.OrganizationID)
}

func appendFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}
