package engine

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/index"
)

// orgSlots is the number of organization generation counters. Organizations
// share them by hash: two organizations in one slot invalidate each other's
// answers, which costs hits but never correctness. 65,536 counters are
// 512 KiB and make a shared slot rare below tens of thousands of
// organizations; the table never grows, whatever ids requests name.
const orgSlots = 1 << 16

// maxStampOrgs is the most organizations one Stamp records; an answer that
// depends on more is stamped as depending on every change.
const maxStampOrgs = 3

// Generations numbers the states of the data by scope (index.Scope), so
// that a cached answer can tell whether anything it depends on changed:
// Current moves with every change, a shared counter with every Shared
// change and one counter per organization (slot) with every change to that
// organization. Counters only grow, and a full Load moves them all (it is
// Shared).
//
// Publication order (publish, under the engine's writeMu, after the
// change's store transaction committed): Current first, then the shared and
// organization counters, then the revision. So a reader that sees a
// revision sees every counter of the changes up to it, and a reader that
// sees any counter of a change also sees Current of that change (Stamp
// relies on this).
//
// It is safe for concurrent use; only the engine moves the counters.
type Generations struct {
	current atomic.Uint64
	shared  atomic.Uint64
	orgs    [orgSlots]atomic.Uint64
}

// Current returns the generation of the data as a whole: it moves with
// every change and is never reused, unlike a revision, which a reload of
// older data (a restored database) takes back.
func (g *Generations) Current() uint64 { return g.current.Load() }

// publish moves the counters of scope sc (see Generations for the order);
// an empty scope (no change) moves none.
func (g *Generations) publish(sc index.Scope) {
	if !sc.Shared && len(sc.Orgs) == 0 {
		return
	}
	g.current.Add(1)
	if sc.Shared {
		g.shared.Add(1)
	}
	for _, org := range sc.Orgs {
		g.orgs[orgSlot(org)].Add(1)
	}
}

// orgSlot is the slot of org: its 64-bit FNV-1a hash (written out, as
// hash/fnv would allocate), modulo orgSlots.
func orgSlot(org string) uint16 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(org); i++ {
		h ^= uint64(org[i])
		h *= 1099511628211
	}
	return uint16(h % orgSlots)
}

// Stamp records the generations of what an answer depends on: the shared
// data, the data of up to three organizations and, when the answer may
// change with a change anywhere (an unknown resource that a creation in any
// organization can bring into being), the data as a whole. It is a value
// without pointers, made by Generations.Stamp and checked by
// Generations.Valid.
type Stamp struct {
	current   uint64
	shared    uint64
	anyChange bool
	n         uint8
	slots     [maxStampOrgs]uint16
	gens      [maxStampOrgs]uint64
}

// Stamp returns the stamp of an answer that depends on the shared data,
// the data of orgs and, with anyChange, on every change. since is Current
// as read before the caller looked up orgs in the data (Owners); ok is
// false when a change was published since then, because orgs may then be
// out of date: such an answer must not be cached.
//
// The contract that makes a valid stamp mean an unchanged answer: read
// since, look up what the answer depends on, take the stamp, and only then
// open the evaluation's store transaction. See package authz's decision
// cache for the argument.
func (g *Generations) Stamp(since uint64, orgs []string, anyChange bool) (s Stamp, ok bool) {
	s.shared = g.shared.Load()
	s.anyChange = anyChange
	for _, org := range orgs {
		slot := orgSlot(org)
		known := false
		for i := range s.n {
			known = known || s.slots[i] == slot
		}
		if known {
			continue
		}
		if s.n == maxStampOrgs {
			s.anyChange = true
			break
		}
		s.slots[s.n], s.gens[s.n] = slot, g.orgs[slot].Load()
		s.n++
	}
	s.current = g.current.Load()
	return s, s.current == since
}

// Valid reports whether nothing s depends on has changed since s was
// taken.
func (g *Generations) Valid(s *Stamp) bool {
	if s.anyChange && g.current.Load() != s.current {
		return false
	}
	if g.shared.Load() != s.shared {
		return false
	}
	for i := range s.n {
		if g.orgs[s.slots[i]].Load() != s.gens[i] {
			return false
		}
	}
	return true
}

// Generations returns the engine's generation counters.
func (e *Engine) Generations() *Generations { return &e.gens }

// Owners returns the organization of membership om and of each resource in
// rids, as the data holds them now, read in one store transaction: "" for
// an id the data does not hold (or an empty one). The caller owns the
// returned slice.
func (e *Engine) Owners(ctx context.Context, om string, rids ...string) (string, []string, error) {
	var org string
	orgs := make([]string, len(rids))
	err := storage.Txn(ctx, e.store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		s := txnStore{ctx: ctx, store: e.store, txn: txn}
		var err error
		if org, _, err = index.MembershipOrganization(s, om); err != nil {
			return err
		}
		for i, rid := range rids {
			if orgs[i], _, err = index.ResourceOrganization(s, rid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("engine: read owners: %w", err)
	}
	return org, orgs, nil
}
