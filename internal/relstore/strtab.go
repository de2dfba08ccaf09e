package relstore

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"
)

// strtab is the string table: every id, slug and external id of the
// document is stored once in one arena, as a uvarint length and its bytes.
// A string is named everywhere else by its offset in the arena, its
// number; 0 is "no string" (the arena's first byte is not a string). So a
// string costs one memory access to read, and no table of offsets.
// Strings are only appended; compact drops the ones nothing names any
// more, which renumbers the others.
type strtab struct {
	arena []byte
	index hashIndex // over numbers, by content
	// arenaAtCompact is the arena's length after the last compaction (or
	// build): compact is due once the arena has grown well past it.
	arenaAtCompact int
}

// init sizes the table for the given number of strings and bytes. The
// index hashes through t, so t must not be copied afterwards.
func (t *strtab) init(strings, bytes int) {
	t.arena = make([]byte, 1, bytes+1)
	t.index = newIndex(strings, func(v uint32) uint64 { return hashBytes(t.bytes(v)) })
}

// bytes returns string v's bytes, which alias the arena: the caller must
// not keep them past the next change to the table.
func (t *strtab) bytes(v uint32) []byte {
	if n := t.arena[v]; n < 0x80 { // a length under 128: one byte
		return t.arena[v+1 : v+1+uint32(n) : v+1+uint32(n)]
	}
	n, w := binary.Uvarint(t.arena[v:])
	start := int(v) + w
	return t.arena[start : start+int(n) : start+int(n)]
}

// str returns string v as a new Go string.
func (t *strtab) str(v uint32) string { return string(t.bytes(v)) }

// box sets out[i] to string ids[i] for each i: new Go strings, which all
// share one new buffer, one allocation instead of one per string. The
// buffer is written here only, before any string of it is made, and never
// after, which is what unsafe.String requires.
func (t *strtab) box(out []any, ids []uint32) {
	n := 0
	for _, v := range ids {
		n += len(t.bytes(v))
	}
	buf := make([]byte, 0, n)
	for i, v := range ids {
		b := t.bytes(v)
		if len(b) == 0 {
			out[i] = ""
			continue
		}
		start := len(buf)
		buf = append(buf, b...) // within capacity: buf never moves
		out[i] = unsafe.String(&buf[start], len(b))
	}
}

// lookup returns the number of s, or 0 when the table does not hold it.
func (t *strtab) lookup(s string) uint32 {
	return t.index.find(hashString(s), func(v uint32) bool { return string(t.bytes(v)) == s })
}

// intern returns the number of s, adding s to the table if it is new.
func (t *strtab) intern(s string) uint32 {
	v, _, _ := t.internHash(s)
	return v
}

// internHash is intern that also returns s's hash (hashString(s), the
// hash every index keyed by s's content uses) and whether s is new to
// the table: then nothing names it yet.
func (t *strtab) internHash(s string) (v uint32, h uint64, fresh bool) {
	h = hashString(s)
	if v := t.index.find(h, func(v uint32) bool { return string(t.bytes(v)) == s }); v != 0 {
		return v, h, false
	}
	if len(t.arena)+binary.MaxVarintLen64+len(s) > maxArena {
		panic("relstore: string arena exceeds 4 GiB")
	}
	v = uint32(len(t.arena))
	t.arena = binary.AppendUvarint(t.arena, uint64(len(s)))
	t.arena = append(t.arena, s...)
	t.index.insertHash(v, h)
	return v, h, true
}

// maxArena bounds the arena: numbers are 32-bit offsets.
const maxArena = 1<<32 - 1

// compare orders strings a and b as strings.Compare does, without copying
// them.
func (t *strtab) compare(a, b uint32) int {
	if a == b {
		return 0
	}
	return bytes.Compare(t.bytes(a), t.bytes(b))
}

// compactDue reports whether the arena has grown enough since the last
// compaction that the strings dropped since may be worth reclaiming: by
// half its size then, and at least 1 MiB. Growth alone triggers it, so its
// O(live data) cost is amortized over as many bytes of new strings.
func (t *strtab) compactDue() bool {
	grown := len(t.arena) - t.arenaAtCompact
	return grown > 1<<20 && grown > t.arenaAtCompact/2
}

// compact keeps the strings marked live and drops the others, copying the
// live ones, in order, into a new arena of just their size. Every live
// string gets a new number: the caller rewrites every number it holds
// with the returned remap.
func (t *strtab) compact(live bitset) remap {
	size := 1
	walkRecords(t.arena, func(off, end int) {
		if live.has(uint32(off)) {
			size += end - off
		}
	})
	arena := make([]byte, 1, size)
	var m remap
	walkRecords(t.arena, func(off, end int) {
		if live.has(uint32(off)) {
			m.old = append(m.old, uint32(off))
			m.new = append(m.new, uint32(len(arena)))
			arena = append(arena, t.arena[off:end]...)
		}
	})
	t.arena = arena
	t.arenaAtCompact = len(arena)
	t.index = newIndex(len(m.new), t.index.hashOf)
	for _, v := range m.new {
		t.index.insert(v)
	}
	return m
}

// walkRecords calls fn with the start and end of each record (a uvarint
// length, then that many bytes) of arena, after its unused first byte.
func walkRecords(arena []byte, fn func(off, end int)) {
	for off := 1; off < len(arena); {
		n, w := binary.Uvarint(arena[off:])
		end := off + w + int(n)
		fn(off, end)
		off = end
	}
}

// remap maps the old numbers of what a compaction kept to their new ones.
type remap struct{ old, new []uint32 } // old sorted, new[i] the new number of old[i]

// of returns the new number of v (0 stays 0). v must have been kept.
func (m *remap) of(v uint32) uint32 {
	if v == 0 {
		return 0
	}
	i, ok := slices.BinarySearch(m.old, v)
	if !ok {
		panic("relstore: compaction dropped a string or list that is still named")
	}
	return m.new[i]
}

// bitset is a set of numbers below its size.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, n/64+1) }

func (b bitset) add(v uint32) { b[v/64] |= 1 << (v % 64) }

func (b bitset) has(v uint32) bool { return b[v/64]&(1<<(v%64)) != 0 }

func uvarintLen(n int) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}

func (t *strtab) heapBytes() int { return cap(t.arena) + t.index.bytes() }
