package relstore

import "hash/maphash"

// hashIndex is an open-addressing hash index of entity numbers (1 and up):
// linear probing over a power-of-two []uint32, with backward-shift
// deletion, so it never holds tombstones and never needs a rebuild but to
// grow. It keeps no keys: a lookup passes the key's hash and a test that an
// entity has that key, and hashOf recomputes an entity's hash from the
// entity's own fields (or its bytes in the string arena) when the index
// grows or shifts an entry back. Beside each slot, a byte holds 7 bits of
// its entry's hash (0 marks an empty slot), so that a probe tests an
// entity only when those agree: a miss scans a few adjacent bytes instead
// of fetching an entity per slot of its run. Both are pointer-free
// allocations, which the garbage collector never scans.
type hashIndex struct {
	slots  []uint32
	tags   []uint8
	n      int
	hashOf func(v uint32) uint64
}

// minIndexSlots is the size of an index's first allocation.
const minIndexSlots = 16

func newIndex(capacity int, hashOf func(uint32) uint64) hashIndex {
	x := hashIndex{hashOf: hashOf}
	x.resize(slotsFor(capacity))
	return x
}

// slotsFor is the power of two that holds n entries at most 3/4 full.
func slotsFor(n int) int {
	size := minIndexSlots
	for size*3 < n*4 {
		size *= 2
	}
	return size
}

func (x *hashIndex) mask() uint64 { return uint64(len(x.slots) - 1) }

// tagOf is the tag of hash h: its top 7 bits, plus 1.
func tagOf(h uint64) uint8 { return uint8(h>>57) + 1 }

// find returns the entity with hash h for which eq is true, or 0.
func (x *hashIndex) find(h uint64, eq func(v uint32) bool) uint32 {
	m, t := x.mask(), tagOf(h)
	for i := h & m; ; i = (i + 1) & m {
		switch x.tags[i] {
		case 0:
			return 0
		case t:
			if v := x.slots[i]; eq(v) {
				return v
			}
		}
	}
}

// insert adds v, whose key must not be in the index yet.
func (x *hashIndex) insert(v uint32) { x.insertHash(v, x.hashOf(v)) }

// insertHash is insert for a caller that has v's hash, h, at hand.
func (x *hashIndex) insertHash(v uint32, h uint64) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(len(x.slots) * 2)
	}
	x.place(v, h)
	x.n++
}

func (x *hashIndex) place(v uint32, h uint64) {
	m := x.mask()
	i := h & m
	for x.tags[i] != 0 {
		i = (i + 1) & m
	}
	x.slots[i], x.tags[i] = v, tagOf(h)
}

// remove deletes the entity with hash h for which eq is true and returns
// it, or 0 when there is none. The entries after it in its probe run move
// back, so that every entry stays reachable from its home slot.
func (x *hashIndex) remove(h uint64, eq func(v uint32) bool) uint32 {
	m, t := x.mask(), tagOf(h)
	i := h & m
	for {
		tag := x.tags[i]
		if tag == 0 {
			return 0
		}
		if tag == t && eq(x.slots[i]) {
			break
		}
		i = (i + 1) & m
	}
	gone := x.slots[i]
	for j := (i + 1) & m; x.tags[j] != 0; j = (j + 1) & m {
		// The entry at j may fill the hole at i only if its home is not
		// in (i, j].
		home := x.hashOf(x.slots[j]) & m
		if (j-home)&m >= (j-i)&m {
			x.slots[i], x.tags[i] = x.slots[j], x.tags[j]
			i = j
		}
	}
	x.slots[i], x.tags[i] = 0, 0
	x.n--
	return gone
}

func (x *hashIndex) resize(size int) {
	old := x.slots
	oldTags := x.tags
	x.slots, x.tags = make([]uint32, size), make([]uint8, size)
	for i, v := range old {
		if oldTags[i] != 0 {
			x.place(v, x.hashOf(v))
		}
	}
}

// bytes is the heap the index occupies.
func (x *hashIndex) bytes() int { return 5 * cap(x.slots) }

// seed keys every hash of the process; indexes are never persisted, so a
// random seed costs nothing and keeps probe runs from being chosen by
// whoever names the ids.
var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(seed, s) }

func hashBytes(b []byte) uint64 { return maphash.Bytes(seed, b) }

// mix hashes integer keys: the finalizer of SplitMix64, salted with the
// process seed so that integer and string keys are equally unpredictable.
func mix(k uint64) uint64 {
	k ^= seedSalt
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9
	k = (k ^ (k >> 27)) * 0x94d049bb133111eb
	return k ^ (k >> 31)
}

var seedSalt = maphash.String(seed, "relstore")

func mix2(a, b uint32) uint64 { return mix(uint64(a)<<32 | uint64(b)) }
