package authz

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/trellis-authz/trellis/internal/engine"
)

// decisionCache holds the policy's answers to single checks (and pages of
// list-resources, see Service.cachedPages), each with the
// stamp (engine.Stamp) of the generations of what it depends on: an entry
// is served only while that stamp is valid, so a change in one
// organization leaves the answers about every other organization in place,
// and a grant or membership change leaves every other membership's.
//
// # What an answer depends on
//
// A check by membership M (named by the subject, or by the token) reads
// (policies/trellis, and index.Scope for how the data divides): the
// permission and environment roles — shared data; the resource, its
// ancestors and their organization roles — the data of the resource's
// organization; for a reference by type and external id, lookup[O] for the
// organization O the policy resolves it in — the reference's organization,
// else the token's, else M's; and M's entry and grants — M's data. Token
// claims are input. So the answer depends on the shared data, the
// resource's organization and M (dependsOn), the organizations looked up by
// the engine (Engine.Owners: Go prepares, the policy still decides). A
// reference by external id depends on every candidate organization of the
// lookup, a superset of the one the policy picks. A membership the data
// does not hold is M's data too (its creation is a change of M), but a
// resource the data does not hold may be created in any organization, so
// such an answer depends on every change; so does a reference the policy
// cannot place in any organization.
//
// # Why a valid stamp means an unchanged answer
//
// The engine publishes a change after its store transaction committed,
// moving Current, then the shared, organization and membership counters of
// its scope, then the revision (engine.Generations). On a miss, Service
// reads since := Current, looks up the owners (store transaction S0), takes
// the stamp of what the answer depends on (which fails unless Current is
// still since), and only then evaluates (transaction S ⊇ S0's changes). A
// hit is served at the published revision R, read before the stamp is
// checked, and only if the entry was evaluated at a revision ≤ R.
//
//  1. The dependencies are those of S. A change that alters them (deletes
//     or creates the resource, moves the resource or the membership to
//     another organization) is in the scope they had before it: the
//     resource's organization, every change for a resource the data did
//     not hold, or shared. If such a change is in S but not in S0, it
//     committed after since was read; had it been published before the
//     stamp, Current would have moved and nothing is cached; otherwise it
//     publishes after the stamp, which then becomes invalid.
//  2. The answer holds at R. Every change in R's data but not in S
//     committed after S began, so after the stamp was taken, and was
//     published before R was read. Had it touched what the answer depends
//     on, the stamp would be invalid now. S holds no change beyond R,
//     since the entry's revision is ≤ R (the change feed applies
//     revisions in increasing order, one at a time). So R's data gives the
//     same answer as S's, and R is at least the revision the request
//     waited for.
//
// A full Load moves every counter, so reloading older data (a revision
// number reused) never revives an answer.
//
// A nil *decisionCache caches nothing.
type decisionCache struct {
	max int

	mu sync.RWMutex
	m  map[string]cached

	hits, misses atomic.Uint64
	// listHits and listMisses count, of hits and misses, the lookups of
	// list-resources pages.
	listHits, listMisses atomic.Uint64
}

// cached is a decision (or a list-resources page), the revision of the
// data it was evaluated on, and the stamp of what it depends on.
type cached struct {
	d     Decision
	page  *Page
	rev   int64
	stamp engine.Stamp
}

func newDecisionCache(size int) *decisionCache {
	if size <= 0 {
		return nil
	}
	return &decisionCache{max: size, m: make(map[string]cached)}
}

// get returns the entry filed under key if it still holds at revision rev,
// the published revision read before the call. A nil key is never cached.
func (c *decisionCache) get(gens *engine.Generations, rev int64, key []byte) (cached, bool) {
	if c == nil || key == nil {
		return cached{}, false
	}
	c.mu.RLock()
	e, ok := c.m[string(key)] // no copy of key: Go looks up without one
	c.mu.RUnlock()
	ok = ok && e.rev <= rev && gens.Valid(&e.stamp)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return e, ok
}

// evictionProbes is how many entries put looks at, at capacity, for one
// that is no longer valid before it evicts one that is.
const evictionProbes = 8

// put files e under key. At capacity it evicts an entry whose stamp is no
// longer valid among a few arbitrary ones (Go randomizes where a map's
// iteration starts), else the first of them.
func (c *decisionCache) put(gens *engine.Generations, key []byte, e cached) {
	if c == nil || key == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(key)]; !ok && len(c.m) >= c.max {
		victim, n := "", 0
		for k, old := range c.m {
			if n == 0 {
				victim = k
			}
			if !gens.Valid(&old.stamp) {
				victim = k
				break
			}
			if n++; n == evictionProbes {
				break
			}
		}
		delete(c.m, victim)
	}
	c.m[string(key)] = e
}

// CacheStats counts decision cache lookups: Hits and Misses all of them,
// ListHits and ListMisses those of list-resources pages.
type CacheStats struct {
	Hits, Misses         uint64
	ListHits, ListMisses uint64
}

// CacheStats returns the decision cache's counters (zero when it is off).
func (s *Service) CacheStats() CacheStats {
	if s.cache == nil {
		return CacheStats{}
	}
	c := s.cache
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), ListHits: c.listHits.Load(), ListMisses: c.listMisses.Load()}
}

// stamped is the stamp of an answer about to be evaluated; ok is false
// when the answer must not be cached.
type stamped struct {
	stamp engine.Stamp
	ok    bool
}

// stamp returns, for each i in which, the stamp of the answer to checks[i]
// by v. The caller must evaluate the answers after stamp returns (see
// decisionCache).
func (s *Service) stamp(ctx context.Context, v subject, checks []Check, which []int) ([]stamped, error) {
	since := s.gens.Current()
	rids := make([]string, len(which))
	for j, i := range which {
		rids[j] = checks[i].Resource.ID
	}
	om := v.membership()
	memberOrg, resourceOrgs, err := s.owners.Owners(ctx, om, rids...)
	if err != nil {
		return nil, err
	}
	out := make([]stamped, len(which))
	for j, i := range which {
		d := dependsOn(v, checks[i].Resource, om, memberOrg, resourceOrgs[j])
		out[j].stamp, out[j].ok = s.gens.Stamp(since, d)
	}
	return out, nil
}

// dependsOn returns what the answer to a check of r by v depends on
// besides the shared data, given membership om that v names and the
// organizations the data holds for om and for resource r.ID ("" when it
// holds none; see decisionCache).
func dependsOn(v subject, r ResourceRef, om, memberOrg, resourceOrg string) engine.Deps {
	var d engine.Deps
	if om != "" {
		d.Memberships = []string{om}
	}
	if r.ID != "" {
		if resourceOrg == "" {
			d.AnyChange = true // it may be created in any organization
		} else {
			d.Orgs = []string{resourceOrg}
		}
		return d
	}
	if r.OrganizationID != "" {
		d.Orgs = append(d.Orgs, r.OrganizationID)
	}
	if v.claims != nil {
		// The policy takes the token's org_id even when it is empty.
		d.Orgs = append(d.Orgs, v.claims.OrganizationID)
	}
	switch {
	case memberOrg != "":
		d.Orgs = append(d.Orgs, memberOrg)
	case len(d.Orgs) == 0 && om == "":
		d.AnyChange = true // no organization to look the reference up in
	}
	return d
}

// membership returns the membership v names, or "".
func (v subject) membership() string {
	if v.claims != nil {
		return v.claims.MembershipID
	}
	return v.membershipID
}

// appendCheckKey appends to b the cache key of check c by subject v:
// every part of the policy input the core reads (with wholeToken, for
// extensions, every claim of the token too), each length-prefixed so that
// no two inputs share a key. It returns nil (not cached) for a subject whose token
// failed verification.
func appendCheckKey(b []byte, v subject, c Check, wholeToken bool) []byte {
	if v.tokenErr != nil {
		return nil
	}
	if t := v.claims; t != nil {
		b = append(b, 't')
		b = appendFields(b, t.Subject, t.OrganizationID, t.MembershipID, t.Role)
		b = appendList(b, t.Roles)
		b = appendList(b, t.Permissions)
		if wholeToken { // extensions see every claim
			b = appendFields(b, t.SessionID)
			b = appendList(b, t.FeatureFlags)
			b = appendList(b, t.Entitlements)
		}
	} else {
		b = append(b, 'm')
		b = appendFields(b, v.membershipID)
	}
	r := c.Resource
	return appendFields(b, c.Permission, r.ID, r.Type, r.ExternalID, r.OrganizationID)
}

func appendList(b []byte, l []string) []byte {
	return appendFields(binary.AppendUvarint(b, uint64(len(l))), l...)
}

func appendFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}
