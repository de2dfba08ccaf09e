package model

import (
	"crypto/rand"
	"sync"
	"time"
)

// crockford is the alphabet of ULIDs.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes ids strictly increasing within this process: within one
// millisecond the random part is incremented (the ULID monotonic scheme).
var idGen struct {
	sync.Mutex
	lastMS  int64
	lastRnd [10]byte
}

// NewID returns prefix followed by a ULID: 48 bits of Unix milliseconds and
// 80 random bits in Crockford base32 (26 characters), as WorkOS ids are
// (prefix "role_" makes role_01HZX3…). Ids made by one process are strictly
// increasing, so ordering by id orders by creation time, which keyset
// pagination by id relies on. It is safe for concurrent use.
func NewID(prefix string) string {
	idGen.Lock()
	ms := time.Now().UnixMilli()
	if ms <= idGen.lastMS {
		ms = idGen.lastMS
		for i := len(idGen.lastRnd) - 1; i >= 0; i-- {
			idGen.lastRnd[i]++
			if idGen.lastRnd[i] != 0 {
				break
			}
		}
	} else {
		_, _ = rand.Read(idGen.lastRnd[:]) // crypto/rand.Read never fails
		idGen.lastRnd[0] &= 0x7f           // leave room to increment
	}
	idGen.lastMS = ms
	var b [16]byte
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	copy(b[6:], idGen.lastRnd[:])
	idGen.Unlock()

	// 128 bits → 26 base32 characters (the first holds 3 bits).
	var out [26]byte
	var acc uint64
	bits := 0
	j := len(out) - 1
	for i := len(b) - 1; i >= 0; i-- {
		acc |= uint64(b[i]) << bits
		bits += 8
		for bits >= 5 {
			out[j] = crockford[acc&31]
			j--
			acc >>= 5
			bits -= 5
		}
	}
	if j >= 0 {
		out[j] = crockford[acc&31]
	}
	return prefix + string(out[:])
}
