// Package cursor makes list cursors opaque. A cursor carries a position in
// one list (the key of an item: an id, or a slug) and is bound to the query
// that returned it: the endpoint and the filters that choose the list's
// items. A cursor that does not decode, was altered, or is used with
// another query is an error, never a position taken on trust. The native
// API (next_cursor/cursor) and the WorkOS-compatible API (list_metadata
// before/after) share this one codec.
//
// Cursors are not secret and not signed: anyone can read the position, and
// a client that recomputes the checksum can forge one. They need not be:
// a position only says where a page starts, and every item of every page
// is chosen by the query (and the policy), never by the cursor. The
// checksum tells a corrupted or hand-made cursor from a real one; the query
// tag, a cursor of one list from a cursor of another. Both are stable
// across processes and releases of this format, so any instance of a
// cluster decodes the cursors of any other.
package cursor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/trellis-authz/trellis/internal/model"
)

// Errors of Decode. Each reads after the name of the cursor's field.
var (
	// ErrMalformed: the cursor is not one a list returned: it does not
	// decode, its checksum does not match, or it is of an unknown version.
	ErrMalformed = errors.New("is not one a list returned: pass back next_cursor or list_metadata as given")
	// ErrOtherQuery: the cursor was returned by another list, or by this
	// list with other filters.
	ErrOtherQuery = errors.New("belongs to another query: a cursor is valid only with the list and filters that returned it")
)

// Layout of a decoded cursor: version, query tag, position, checksum.
const (
	version   = 1
	tagLen    = 8
	sumLen    = 4
	headerLen = 1 + tagLen
	// maxPosition bounds a position in bytes: ids and slugs are shorter.
	maxPosition = 1024
)

var enc = base64.RawURLEncoding

// Query identifies the list query a cursor belongs to. The zero value is
// the query of no endpoint and no filter; build one with For. A Query is a
// small value, safe to copy and to use concurrently.
type Query struct {
	tag [tagLen]byte
}

// For returns the Query of endpoint with filters, in the order given: two
// Queries are equal exactly when their endpoints and filters are (each
// part is length-prefixed, so no two lists of parts collide by
// concatenation). Give every filter that chooses the list's items, an
// absent one as "", and neither the page size nor the order, which a
// client may change from page to page.
func For(endpoint string, filters ...string) Query {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, part := range append([]string{endpoint}, filters...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(part)))])
		h.Write([]byte(part))
	}
	var q Query
	copy(q.tag[:], h.Sum(nil))
	return q
}

// Encode returns the cursor of position in q: URL-safe base64 without
// padding, so it goes into a query string as it is. position must be
// non-empty.
func (q Query) Encode(position string) string {
	b := make([]byte, 0, headerLen+len(position)+sumLen)
	b = append(b, version)
	b = append(b, q.tag[:]...)
	b = append(b, position...)
	sum := sha256.Sum256(b)
	return enc.EncodeToString(append(b, sum[:sumLen]...))
}

// Decode returns the position cursor c holds; "" (no cursor: the first
// page) for "". It returns ErrMalformed or ErrOtherQuery, unwrapped, when c
// is not a cursor Encode returned for q.
func (q Query) Decode(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	if enc.DecodedLen(len(c)) > headerLen+maxPosition+sumLen {
		return "", ErrMalformed
	}
	b, err := enc.DecodeString(c)
	if err != nil || len(b) < headerLen+1+sumLen || b[0] != version {
		return "", ErrMalformed
	}
	body, sum := b[:len(b)-sumLen], b[len(b)-sumLen:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:sumLen]) {
		return "", ErrMalformed
	}
	if !bytes.Equal(body[1:headerLen], q.tag[:]) {
		return "", ErrOtherQuery
	}
	position := string(body[headerLen:])
	if model.CheckText(position) != nil {
		return "", ErrMalformed // a forged cursor: Encode is given ids and slugs
	}
	return position, nil
}
