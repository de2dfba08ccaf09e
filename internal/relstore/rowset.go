package relstore

import (
	"slices"
	"sort"
)

// chunkMax is the most rows a chunk of a rowSet holds.
const chunkMax = 256

// rowSet is a sequence of rows of one table, sorted by a key the set does
// not store (its owner compares rows by their fields), cut into chunks of
// at most chunkMax rows so that an insert moves at most a chunk. It costs 4
// bytes a row. The lists keep three (order.go, members.go).
type rowSet struct {
	chunks [][]uint32
}

// pos is a position in a set: a chunk and an index in it. A position
// past a chunk's end is the start of the next.
type pos struct{ c, i int }

// search returns the position of the first row for which below is false;
// below must hold for a prefix of the set.
func (s *rowSet) search(below func(row uint32) bool) pos {
	c := sort.Search(len(s.chunks), func(c int) bool { return !below(s.chunks[c][len(s.chunks[c])-1]) })
	if c == len(s.chunks) {
		return pos{c, 0}
	}
	return pos{c, sort.Search(len(s.chunks[c]), func(i int) bool { return !below(s.chunks[c][i]) })}
}

// at returns the row at p, or 0 past the end; p is normalized first.
func (s *rowSet) at(p pos) (uint32, pos) {
	for p.c < len(s.chunks) && p.i >= len(s.chunks[p.c]) {
		p = pos{p.c + 1, 0}
	}
	if p.c >= len(s.chunks) {
		return 0, p
	}
	return s.chunks[p.c][p.i], p
}

// before returns the row just before p, and its position; 0 at the start.
func (s *rowSet) before(p pos) (uint32, pos) {
	for p.i == 0 {
		if p.c == 0 {
			return 0, p
		}
		p = pos{p.c - 1, len(s.chunks[p.c-1])}
	}
	p.i--
	return s.chunks[p.c][p.i], p
}

// step returns the row at p and the position after it (desc false), or
// the row before p and its position (desc true); 0 at either end.
func (s *rowSet) step(p pos, desc bool) (uint32, pos) {
	if desc {
		return s.before(p)
	}
	row, p := s.at(p)
	if row != 0 {
		p.i++
	}
	return row, p
}

// insertSorted adds row to s where cmp puts it: cmp(x) orders row x of s
// against row, whose key must be new in s.
func (st *state) insertSorted(s *rowSet, row uint32, cmp func(x uint32) int) {
	p := s.search(func(x uint32) bool { return cmp(x) < 0 })
	if len(s.chunks) == 0 {
		s.chunks = [][]uint32{make([]uint32, 0, 8)}
	}
	if p.c == len(s.chunks) {
		p = pos{p.c - 1, len(s.chunks[p.c-1])}
	}
	ch := slices.Insert(s.chunks[p.c], p.i, row)
	if len(ch) > chunkMax {
		half := slices.Clone(ch[len(ch)/2:])
		ch = slices.Clip(ch[:len(ch)/2])
		s.chunks = slices.Insert(s.chunks, p.c+1, half)
	}
	s.chunks[p.c] = ch
	if st.logging() {
		st.log(func() { st.removeSorted(s, row, cmp) })
	}
}

// removeSorted drops row, found with cmp as insertSorted, from s, before
// its key changes.
func (st *state) removeSorted(s *rowSet, row uint32, cmp func(x uint32) int) {
	got, p := s.at(s.search(func(x uint32) bool { return cmp(x) < 0 }))
	if got != row {
		panic("relstore: a row is missing from its ordered set")
	}
	s.chunks[p.c] = slices.Delete(s.chunks[p.c], p.i, p.i+1)
	if len(s.chunks[p.c]) == 0 {
		s.chunks = slices.Delete(s.chunks, p.c, p.c+1)
	}
	if st.logging() {
		st.log(func() { st.insertSorted(s, row, cmp) })
	}
}

// chunked cuts rows into chunks three quarters full.
func chunked(rows []uint32) [][]uint32 {
	const fill = chunkMax * 3 / 4
	out := make([][]uint32, 0, len(rows)/fill+1)
	for len(rows) > 0 {
		n := min(fill, len(rows))
		out = append(out, slices.Clip(slices.Clone(rows[:n])))
		rows = rows[n:]
	}
	return out
}

func (s *rowSet) heapBytes() int {
	n := 24 * cap(s.chunks)
	for _, ch := range s.chunks {
		n += 4 * cap(ch)
	}
	return n
}
