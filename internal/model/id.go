package model

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Id prefixes: each kind of entity with an id has WorkOS's prefix.
const (
	PrefixOrganization = "org_"
	PrefixMembership   = "om_"
	PrefixUser         = "user_"
	PrefixPermission   = "perm_"
	PrefixRole         = "role_"
	PrefixResource     = "authz_resource_"
	PrefixAssignment   = "role_assignment_"
	PrefixGroup        = "group_"
	// PrefixGroupAssignment is WorkOS's prefix of group role assignments;
	// ids of the data file and the admin API may also have
	// PrefixAssignment.
	PrefixGroupAssignment = "gra_"
)

// MaxIDLength bounds the length of an id in bytes, its prefix included. It
// leaves room for a root resource id derived from a long organization id
// (RootResourceID).
const MaxIDLength = 255

// CheckID returns nil when id has the documented shape of an id with
// prefix: the prefix, then at least one of the ASCII letters, digits, "_"
// and "-", at most MaxIDLength bytes in all. Ids made by NewID (a ULID),
// derived by the data file (hex digits), root resource ids
// ("authz_resource_root_" and an organization id) and readable ids such as
// "org_acme" and "role_assignment_carol_acme_web" all have it. The error
// says what is wrong and reads after the field's name.
func CheckID(prefix, id string) error {
	rest, ok := strings.CutPrefix(id, prefix)
	switch {
	case !ok || rest == "":
		return fmt.Errorf("must be %q followed by letters, digits, _ or -", prefix)
	case len(id) > MaxIDLength:
		return fmt.Errorf("is %d bytes long; ids are at most %d", len(id), MaxIDLength)
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("may hold only letters, digits, _ and - after %q", prefix)
		}
	}
	return nil
}

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
