package relstore

import (
	"bytes"
	"encoding/binary"
	"unsafe"
)

// strtab is the string table: every id, slug and external id of the
// document is stored once, as a uvarint length and its bytes in one arena,
// and named everywhere else by its number (1 and up; 0 is "no string").
// Strings are only appended; compact drops the ones nothing names any more
// and keeps every live string's number.
type strtab struct {
	arena []byte
	offs  []uint32 // number → offset of its length in arena; offs[0] unused
	free  []uint32 // numbers compact released, for reuse
	index hashIndex
	// arenaAtCompact is the arena's length after the last compaction (or
	// build): compact is due once the arena has grown well past it.
	arenaAtCompact int
}

// init sizes the table for the given number of strings and bytes. The
// index hashes through t, so t must not be copied afterwards.
func (t *strtab) init(strings, bytes int) {
	t.arena = make([]byte, 0, bytes)
	t.offs = make([]uint32, 1, strings+1)
	t.index = newIndex(strings, func(v uint32) uint64 { return hashBytes(t.bytes(v)) })
}

// bytes returns string v's bytes, which alias the arena: the caller must
// not keep them past the next change to the table.
func (t *strtab) bytes(v uint32) []byte {
	off := t.offs[v]
	if n := t.arena[off]; n < 0x80 { // a length under 128: one byte
		return t.arena[off+1 : off+1+uint32(n)]
	}
	n, w := binary.Uvarint(t.arena[off:])
	start := int(off) + w
	return t.arena[start : start+int(n)]
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
	h := hashString(s)
	if v := t.index.find(h, func(v uint32) bool { return string(t.bytes(v)) == s }); v != 0 {
		return v
	}
	if len(t.arena)+binary.MaxVarintLen64+len(s) > maxArena {
		panic("relstore: string arena exceeds 4 GiB")
	}
	off := uint32(len(t.arena))
	t.arena = binary.AppendUvarint(t.arena, uint64(len(s)))
	t.arena = append(t.arena, s...)
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

// maxArena bounds the arena: offsets are 32-bit.
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

// compact keeps the strings marked live and releases the others: their
// numbers go to the free list and the live strings are copied, in number
// order, into a new arena of just their size.
func (t *strtab) compact(live []bool) {
	size := 0
	for v := 1; v < len(t.offs); v++ {
		if live[v] {
			b := t.bytes(uint32(v))
			size += uvarintLen(len(b)) + len(b)
		}
	}
	for v := 1; v < len(t.offs); v++ {
		if !live[v] && t.offs[v] != freeOffset {
			b := t.bytes(uint32(v))
			t.index.remove(hashBytes(b), func(x uint32) bool { return x == uint32(v) })
			t.offs[v] = freeOffset
			t.free = append(t.free, uint32(v))
		}
	}
	arena := make([]byte, 0, size)
	for v := 1; v < len(t.offs); v++ {
		if live[v] {
			b := t.bytes(uint32(v))
			t.offs[v] = uint32(len(arena))
			arena = binary.AppendUvarint(arena, uint64(len(b)))
			arena = append(arena, b...)
		}
	}
	t.arena = arena
	t.arenaAtCompact = len(arena)
}

// freeOffset marks a released number in offs. Its string is never read:
// nothing names a released number.
const freeOffset = ^uint32(0)

func uvarintLen(n int) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}

func (t *strtab) heapBytes() int {
	return cap(t.arena) + 4*cap(t.offs) + 4*cap(t.free) + t.index.bytes()
}
