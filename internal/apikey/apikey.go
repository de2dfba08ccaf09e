// Package apikey checks the API keys clients send as
// "Authorization: Bearer <key>" (the scheme in any case). Every route that needs a key uses it, so the
// comparison lives in one place.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Set is the set of valid keys; several may be valid at once, for rotation.
// The zero Set accepts nothing. A Set is safe for concurrent use.
type Set struct {
	sums [][32]byte
}

// New returns the set of keys; empty strings are ignored.
func New(keys []string) Set {
	var s Set
	for _, k := range keys {
		if k != "" {
			s.sums = append(s.sums, sha256.Sum256([]byte(k)))
		}
	}
	return s
}

// Valid reports whether r carries one of the keys. It compares digests in
// constant time against every key, so neither timing nor the number of keys
// reveals anything.
func (s Set) Valid(r *http.Request) bool {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" { // the scheme is case-insensitive (RFC 9110)
		return false
	}
	got := sha256.Sum256([]byte(key))
	match := 0
	for _, want := range s.sums {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}
