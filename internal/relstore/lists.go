package relstore

import "slices"

// listtab holds immutable lists of string numbers (a grant's role keys, a
// membership's organization roles, a role's permissions), each distinct list
// once: most grants share one of a few lists. A list is named by its number
// (0 is the empty list); a change builds a new list and interns it, so
// lists are never edited in place. Like strtab, it only appends, and compact
// drops the lists nothing names any more.
type listtab struct {
	data  []uint32 // each list: its length, then its elements
	offs  []uint32 // number → offset of its length in data; offs[0] unused
	free  []uint32
	index hashIndex
	// dataAtCompact is data's length after the last compaction.
	dataAtCompact int
}

// init sizes the table for the given number of lists. The index hashes
// through t, so t must not be copied afterwards.
func (t *listtab) init(lists int) {
	t.offs = make([]uint32, 1, lists+1)
	t.index = newIndex(lists, func(v uint32) uint64 { return hashList(t.get(v)) })
}

// get returns list v, aliasing the table: the caller must not modify it or
// keep it past the next change to the table.
func (t *listtab) get(v uint32) []uint32 {
	if v == 0 {
		return nil
	}
	off := t.offs[v]
	n := t.data[off]
	return t.data[off+1 : off+1+n : off+1+n]
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
	off := uint32(len(t.data))
	t.data = append(t.data, uint32(len(l)))
	t.data = append(t.data, l...)
	var v uint32
	if n := len(t.free); n > 0 {
		v = t.free[n-1]
		t.free = t.free[:n-1]
		t.offs[v] = off
	} else {
		v = uint32(len(t.offs))
		t.offs = append(t.offs, off)
	}
	t.index.insert(v)
	return v
}

func (t *listtab) compactDue() bool {
	grown := len(t.data) - t.dataAtCompact
	return grown > 1<<18 && grown > t.dataAtCompact/2
}

// compact keeps the lists marked live and releases the others, keeping
// every live list's number.
func (t *listtab) compact(live []bool) {
	size := 0
	for v := 1; v < len(t.offs); v++ {
		if live[v] {
			size += 1 + len(t.get(uint32(v)))
		}
	}
	for v := 1; v < len(t.offs); v++ {
		if !live[v] && t.offs[v] != freeOffset {
			t.index.remove(hashList(t.get(uint32(v))), func(x uint32) bool { return x == uint32(v) })
			t.offs[v] = freeOffset
			t.free = append(t.free, uint32(v))
		}
	}
	data := make([]uint32, 0, size)
	for v := 1; v < len(t.offs); v++ {
		if live[v] {
			l := t.get(uint32(v))
			t.offs[v] = uint32(len(data))
			data = append(data, uint32(len(l)))
			data = append(data, l...)
		}
	}
	t.data = data
	t.dataAtCompact = len(data)
}

func (t *listtab) heapBytes() int {
	return 4*cap(t.data) + 4*cap(t.offs) + 4*cap(t.free) + t.index.bytes()
}
