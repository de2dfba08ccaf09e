package relstore

import "slices"

// listtab holds immutable lists of string numbers (a grant's role keys, a
// membership's organization roles, a role's permissions), each distinct list
// once: most grants share one of a few lists. A list is named by its
// offset in data, its number (0 is the empty list); a change builds a new
// list and interns it, so lists are never edited in place. Like strtab, it
// only appends, and compact drops the lists nothing names any more.
type listtab struct {
	data  []uint32 // each list: its length, then its elements; data[0] unused
	index hashIndex
	// dataAtCompact is data's length after the last compaction.
	dataAtCompact int
}

// init sizes the table for the given number of lists. The index hashes
// through t, so t must not be copied afterwards.
func (t *listtab) init(lists int) {
	t.data = make([]uint32, 1, 2*lists+1)
	t.index = newIndex(lists, func(v uint32) uint64 { return hashList(t.get(v)) })
}

// get returns list v, aliasing the table: the caller must not modify it or
// keep it past the next change to the table.
func (t *listtab) get(v uint32) []uint32 {
	if v == 0 {
		return nil
	}
	n := t.data[v]
	return t.data[v+1 : v+1+n : v+1+n]
}

func hashList(l []uint32) uint64 {
	h := mix(uint64(len(l)))
	for _, e := range l {
		h = mix(h ^ uint64(e))
	}
	return h
}

// intern returns the number of list l (which it does not keep), adding l if
// it is new.
func (t *listtab) intern(l []uint32) uint32 {
	if len(l) == 0 {
		return 0
	}
	h := hashList(l)
	if v := t.index.find(h, func(v uint32) bool { return slices.Equal(t.get(v), l) }); v != 0 {
		return v
	}
	if len(t.data)+len(l)+1 > maxArena {
		panic("relstore: list arena exceeds 2^32 entries")
	}
	v := uint32(len(t.data))
	t.data = append(t.data, uint32(len(l)))
	t.data = append(t.data, l...)
	t.index.insert(v)
	return v
}

func (t *listtab) compactDue() bool {
	grown := len(t.data) - t.dataAtCompact
	return grown > 1<<18 && grown > t.dataAtCompact/2
}

// compact keeps the lists marked live and drops the others; every live
// list gets a new number, which the returned remap gives. The index is
// left for reindex, once the caller has renumbered the lists' elements.
func (t *listtab) compact(live bitset) remap {
	size := 1
	t.walk(func(v uint32, l []uint32) {
		if live.has(v) {
			size += 1 + len(l)
		}
	})
	data := make([]uint32, 1, size)
	var m remap
	t.walk(func(v uint32, l []uint32) {
		if live.has(v) {
			m.old = append(m.old, v)
			m.new = append(m.new, uint32(len(data)))
			data = append(data, uint32(len(l)))
			data = append(data, l...)
		}
	})
	t.data = data
	t.dataAtCompact = len(data)
	return m
}

// walk calls fn with every list of the table, in order.
func (t *listtab) walk(fn func(v uint32, l []uint32)) {
	for v := uint32(1); int(v) < len(t.data); v += 1 + t.data[v] {
		fn(v, t.get(v))
	}
}

// rename rewrites every element of every list with m.
func (t *listtab) rename(m *remap) {
	t.walk(func(_ uint32, l []uint32) {
		for i, e := range l {
			l[i] = m.of(e)
		}
	})
}

// reindex rebuilds the index, after compact and rename.
func (t *listtab) reindex() {
	n := 0
	t.walk(func(uint32, []uint32) { n++ })
	t.index = newIndex(n, t.index.hashOf)
	t.walk(func(v uint32, _ []uint32) { t.index.insert(v) })
}

func (t *listtab) heapBytes() int { return 4*cap(t.data) + t.index.bytes() }
