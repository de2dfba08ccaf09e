// Package rawjson checks the strings of a raw JSON document before
// encoding/json decodes it. encoding/json silently replaces invalid UTF-8,
// and lone surrogate escapes such as \ud800, with U+FFFD, and decodes
// \u0000 to a NUL byte that PostgreSQL cannot store; once decoded, the
// first two can no longer be told from a client's own U+FFFD. Every JSON
// request decoder (and the JSON data file) calls CheckText on the bytes it
// decoded, so a bad string is a 400 naming its field, never a silent
// replacement or a 500.
package rawjson

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trellis-authz/trellis/internal/model"
)

// TextError is a string of a JSON document that model.CheckText would
// reject once decoded.
type TextError struct {
	// Path names the string's place: object keys joined by ".", array
	// indexes in brackets ("checks[2].resource.id"); "" for the top-level
	// value. For a bad key it is the path of the object holding the key.
	Path string
	// Key is set when the string is an object key rather than a value.
	Key bool
	// Offset is the byte offset of the string's opening quote.
	Offset int
	// Err is model.ErrNUL or model.ErrInvalidUTF8.
	Err error
}

// Reason describes the problem after the path: "contains a NUL byte", or
// "has a key that contains a NUL byte".
func (e *TextError) Reason() string {
	if e.Key {
		return "has a key that " + e.Err.Error()
	}
	return e.Err.Error()
}

// Error is "<path> <reason>", the path spelled "the document" when empty.
func (e *TextError) Error() string {
	p := e.Path
	if p == "" {
		p = "the document"
	}
	return p + " " + e.Reason()
}

// Unwrap returns Err, so errors.Is(err, model.ErrNUL) works.
func (e *TextError) Unwrap() error { return e.Err }

// frame is one open object or array on the way to the current string.
type frame struct {
	object  bool
	wantKey bool   // object: the next string is a key
	key     []byte // object: the last key read, as written (escapes kept)
	index   int    // array: index of the current element
}

// CheckText returns a *TextError for the first string of data, key or
// value, that is not valid UTF-8 or holds a NUL byte once its escapes are
// decoded (a \u0000 escape, a raw NUL, a lone or reversed surrogate
// escape, a byte sequence that is not UTF-8), or nil. It does not check
// the syntax, so decoders call it first, on the bytes as read: a raw NUL,
// which encoding/json rejects without naming the field, is then named too.
// On a document that is not JSON it never panics, but the path it names
// may be wrong (the document is refused either way). It reads data once
// and, for documents nested at most 16 deep, allocates only for the error:
// it is fit for every request.
func CheckText(data []byte) error {
	var buf [16]frame
	stack := buf[:0]
	for i := 0; i < len(data); {
		switch data[i] {
		case '{':
			stack = append(stack, frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if top := &stack[n-1]; top.object {
					top.wantKey = true
				} else {
					top.index++
				}
			}
		case '"':
			end, err := scanString(data, i)
			var top *frame
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				top = &stack[n-1]
			}
			if err != nil {
				return &TextError{Path: path(stack, top != nil), Key: top != nil, Offset: i, Err: err}
			}
			if top != nil {
				top.key, top.wantKey = data[i+1:max(end-1, i+1)], false
			}
			i = end
			continue
		}
		i++
	}
	return nil
}

// scanString reads the string whose opening quote is at data[start] and
// returns the offset just past its closing quote (len(data) when it is not
// closed), or the first problem of its decoded text.
func scanString(data []byte, start int) (end int, err error) {
	for j := start + 1; j < len(data); {
		if j = Special(data, j, true); j == len(data) {
			break
		}
		c := data[j]
		switch {
		case c == '"':
			return j + 1, nil
		case c == 0:
			return j, model.ErrNUL
		case c == '\\':
			if j+1 < len(data) && data[j+1] == 'u' {
				n, err := escape(data[j:])
				if err != nil {
					return j, err
				}
				j += n
				continue
			}
			j += 2
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(data[j:])
			if r == utf8.RuneError && size == 1 {
				return j, model.ErrInvalidUTF8
			}
			j += size
		}
	}
	return len(data), nil
}

// escape reads the \uXXXX escape (or surrogate pair of escapes) at the
// start of b and returns its length, or why its code point is not text.
// A malformed escape is left to the decoder: its length is 2.
func escape(b []byte) (int, error) {
	r, ok := hex4(b)
	switch {
	case !ok:
		return 2, nil
	case r == 0:
		return 0, model.ErrNUL
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, model.ErrInvalidUTF8 // a low surrogate with no high one before it
	case r >= 0xD800 && r <= 0xDBFF:
		if len(b) >= 12 && b[6] == '\\' {
			if lo, ok := hex4(b[6:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return 12, nil
			}
		}
		return 0, model.ErrInvalidUTF8 // a high surrogate with no low one after it
	}
	return 6, nil
}

// hex4 decodes the code unit of the escape \uXXXX at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return rune(n), err == nil
}

// path spells the place of the current string; the innermost frame is left
// out for a key (the path is then the object's).
func path(stack []frame, key bool) string {
	if key {
		stack = stack[:len(stack)-1]
	}
	var b strings.Builder
	for _, f := range stack {
		if !f.object {
			fmt.Fprintf(&b, "[%d]", f.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(f.key)
	}
	return b.String()
}
