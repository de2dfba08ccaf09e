package model

import (
	"cmp"
	"hash/maphash"
	"slices"
)

// repeats reports, for each of n entries, whether an earlier entry among
// those included (all when include is nil) has an equal key: the flags a
// set of the keys seen so far would give, in one pass. It sorts the keys'
// hashes instead of probing a map: at millions of entries every probe of a
// map misses the processor's caches, while the sort reads memory in order.
// hash writes entry i's key; equal compares the keys of two entries, and
// is asked only of entries whose hashes are equal.
func repeats(n int, include func(i int) bool, hash func(h *maphash.Hash, i int), equal func(i, j int) bool) []bool {
	type keyed struct {
		h uint64
		i int32
	}
	seed := maphash.MakeSeed()
	ks := make([]keyed, 0, n)
	var h maphash.Hash
	for i := range n {
		if include != nil && !include(i) {
			continue
		}
		h.SetSeed(seed) // and resets it
		hash(&h, i)
		ks = append(ks, keyed{h.Sum64(), int32(i)})
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.i, b.i)) })
	rep := make([]bool, n)
	var firsts []int32 // of a run of equal hashes: the first entry of each distinct key
	for s := 0; s < len(ks); {
		e := s + 1
		for e < len(ks) && ks[e].h == ks[s].h {
			e++
		}
		firsts = firsts[:0]
		for _, k := range ks[s:e] { // in entry order
			if slices.ContainsFunc(firsts, func(f int32) bool { return equal(int(f), int(k.i)) }) {
				rep[k.i] = true
			} else {
				firsts = append(firsts, k.i)
			}
		}
		s = e
	}
	return rep
}

// writeStrings writes each of ss to h, each followed by a zero byte.
func writeStrings(h *maphash.Hash, ss ...string) {
	for _, s := range ss {
		h.WriteString(s)
		h.WriteByte(0)
	}
}
