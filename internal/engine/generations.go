package engine

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/index"
)

// slots is the number of organization and membership generation counters.
// Organizations and memberships share them by hash: two in one slot
// invalidate each other's answers, which costs hits but never correctness.
// 131,072 counters are 1 MiB and keep a write from touching more than a
// few other memberships' answers up to about a million of them; the table
// never grows, whatever ids requests name.
const slots = 1 << 17

// maxStampKeys is the most organizations and memberships one Stamp
// records; an answer that depends on more is stamped as depending on every
// change.
const maxStampKeys = 4

// Generations numbers the states of the data by scope (index.Scope), so
// that a cached answer can tell whether anything it depends on changed:
// Current moves with every change, a shared counter with every Shared
// change, and one counter per organization and per membership (slot) with
// every change to its data. Counters only grow, and a full Load moves them
// all (it is Shared).
//
// Publication order (publish, under the engine's writeMu, after the
// change's store transaction committed): Current first, then the shared,
// organization and membership counters, then the revision. So a reader that sees a
// revision sees every counter of the changes up to it, and a reader that
// sees any counter of a change also sees Current of that change (Stamp
// relies on this).
//
// It is safe for concurrent use; only the engine moves the counters.
type Generations struct {
	current atomic.Uint64
	shared  atomic.Uint64
	slots   [slots]atomic.Uint64
}

// Current returns the generation of the data as a whole: it moves with
// every change and is never reused, unlike a revision, which a reload of
// older data (a restored database) takes back.
func (g *Generations) Current() uint64 { return g.current.Load() }

// publish moves the counters of scope sc (see Generations for the order);
// an empty scope (no change) moves none.
func (g *Generations) publish(sc index.Scope) {
	if !sc.Shared && len(sc.Orgs) == 0 && len(sc.Memberships) == 0 {
		return
	}
	g.current.Add(1)
	if sc.Shared {
		g.shared.Add(1)
	}
	for _, org := range sc.Orgs {
		g.slots[slotOf(orgKey, org)].Add(1)
	}
	for _, om := range sc.Memberships {
		g.slots[slotOf(membershipKey, om)].Add(1)
	}
}

// Kinds of slot keys, hashed with the id so that an organization and a
// membership of the same id have slots of their own.
const (
	orgKey        = 'o'
	membershipKey = 'm'
)

// slotOf is the slot of id of a kind: the 64-bit FNV-1a hash of kind and
// id (written out, as hash/fnv would allocate), modulo slots.
func slotOf(kind byte, id string) uint32 {
	h := (uint64(14695981039346656037) ^ uint64(kind)) * 1099511628211
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return uint32(h % slots)
}

// Stamp records the generations of what an answer depends on: the shared
// data, the data of up to four organizations and memberships and, when the
// answer may change with a change anywhere (an unknown resource that a
// creation in any organization can bring into being), the data as a whole.
// It is a value without pointers, made by Generations.Stamp and checked by
// Generations.Valid.
type Stamp struct {
	current   uint64
	shared    uint64
	anyChange bool
	n         uint8
	slots     [maxStampKeys]uint32
	gens      [maxStampKeys]uint64
}

// Deps names what an answer depends on besides the shared data.
type Deps struct {
	Orgs, Memberships []string
	// AnyChange says the answer may change with any change.
	AnyChange bool
}

// Stamp returns the stamp of an answer that depends on the shared data and
// on d. since is Current as read before the caller looked d up in the data
// (Owners); ok is false when a change was published since then, because d
// may then be out of date: such an answer must not be cached.
//
// The contract that makes a valid stamp mean an unchanged answer: read
// since, look up what the answer depends on, take the stamp, and only then
// open the evaluation's store transaction. See package authz's decision
// cache for the argument.
func (g *Generations) Stamp(since uint64, d Deps) (s Stamp, ok bool) {
	s.shared = g.shared.Load()
	s.anyChange = d.AnyChange
	for _, org := range d.Orgs {
		g.add(&s, slotOf(orgKey, org))
	}
	for _, om := range d.Memberships {
		g.add(&s, slotOf(membershipKey, om))
	}
	s.current = g.current.Load()
	return s, s.current == since
}

// add records slot's generation in s, once; past maxStampKeys it makes s
// depend on every change instead.
func (g *Generations) add(s *Stamp, slot uint32) {
	for i := range s.n {
		if s.slots[i] == slot {
			return
		}
	}
	if s.n == maxStampKeys {
		s.anyChange = true
		return
	}
	s.slots[s.n], s.gens[s.n] = slot, g.slots[slot].Load()
	s.n++
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
		if g.slots[s.slots[i]].Load() != s.gens[i] {
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
		s := index.TxnStore{Ctx: ctx, Store: e.store, Txn: txn}
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
