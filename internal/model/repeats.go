package model

import (
	"hash/maphash"
	"math/bits"
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
	// Each key is its hash's high bits and the entry's index in the low
	// ones: plain integers sort fastest, and entries of equal high bits
	// come out in entry order. Fewer hash bits only make more runs for
	// equal to look into.
	low := uint(bits.Len(uint(n)))
	index := uint64(1)<<low - 1
	seed := maphash.MakeSeed()
	ks := make([]uint64, 0, n)
	var h maphash.Hash
	for i := range n {
		if include != nil && !include(i) {
			continue
		}
		h.SetSeed(seed) // and resets it
		hash(&h, i)
		ks = append(ks, h.Sum64()&^index|uint64(i))
	}
	slices.Sort(ks)
	rep := make([]bool, n)
	var firsts []int // of a run of equal hashes: the first entry of each distinct key
	for s := 0; s < len(ks); {
		e := s + 1
		for e < len(ks) && ks[e]&^index == ks[s]&^index {
			e++
		}
		firsts = firsts[:0]
		for _, k := range ks[s:e] { // in entry order
			i := int(k & index)
			if slices.ContainsFunc(firsts, func(f int) bool { return equal(f, i) }) {
				rep[i] = true
			} else {
				firsts = append(firsts, i)
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
