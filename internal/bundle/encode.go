package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// encoder writes JSON in the canonical form OPA hashes a structured bundle
// file in (v1/bundle/hash.go): compact, object keys in byte order, strings
// escaped as encoding/json does with HTML escaping off. Writing that exact
// form lets the builder hash data.json as it writes it, instead of parsing
// it back as OPA's own signer does.
type encoder struct {
	w        *bufio.Writer
	esc      *json.Encoder // fallback for strings that need escaping
	escBuf   bytes.Buffer
	progress func(entries int64)
	entries  int64
	err      error
}

// progressEvery is how many object entries are written between two
// progress reports.
const progressEvery = 250_000

func newEncoder(w io.Writer, progress func(int64)) *encoder {
	e := &encoder{w: bufio.NewWriterSize(w, 1<<20), progress: progress}
	e.esc = json.NewEncoder(&e.escBuf)
	e.esc.SetEscapeHTML(false)
	return e
}

func (e *encoder) flush() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

func (e *encoder) entry() {
	e.entries++
	if e.progress != nil && e.entries%progressEvery == 0 {
		e.progress(e.entries)
	}
}

func (e *encoder) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			e.escBuf.Reset()
			_ = e.esc.Encode(s) // a string always encodes
			_, _ = e.w.Write(bytes.TrimSuffix(e.escBuf.Bytes(), []byte("\n")))
			return
		}
	}
	_ = e.w.WriteByte('"')
	_, _ = e.w.WriteString(s)
	_ = e.w.WriteByte('"')
}

// goValue writes a JSON-shaped Go value (map[string]any, []any, string,
// json.Number, float64, int, int64, bool, nil).
func (e *encoder) goValue(v any) {
	if e.err != nil {
		return
	}
	switch x := v.(type) {
	case nil:
		_, _ = e.w.WriteString("null")
	case bool:
		_, _ = e.w.WriteString(strconv.FormatBool(x))
	case string:
		e.str(x)
	case json.Number:
		_, _ = e.w.WriteString(x.String())
	case int:
		_, _ = e.w.WriteString(strconv.Itoa(x))
	case int64:
		_, _ = e.w.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			e.err = fmt.Errorf("bundle: cannot encode %v as JSON", x)
			return
		}
		b, _ := json.Marshal(x)
		_, _ = e.w.Write(b)
	case []any:
		_ = e.w.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				_ = e.w.WriteByte(',')
			}
			e.goValue(el)
		}
		_ = e.w.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		_ = e.w.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				_ = e.w.WriteByte(',')
			}
			e.str(k)
			_ = e.w.WriteByte(':')
			e.goValue(x[k])
			e.entry()
		}
		_ = e.w.WriteByte('}')
	case ast.Value:
		e.astValue(x)
	case *ast.Term:
		e.astValue(x.Value)
	default:
		e.err = fmt.Errorf("bundle: cannot encode %T as JSON", v)
	}
}

// astValue writes an AST value (as package index builds and OPA's store
// holds) without converting it to Go values first.
func (e *encoder) astValue(v ast.Value) {
	if e.err != nil {
		return
	}
	switch x := v.(type) {
	case ast.Null:
		_, _ = e.w.WriteString("null")
	case ast.Boolean:
		_, _ = e.w.WriteString(strconv.FormatBool(bool(x)))
	case ast.String:
		e.str(string(x))
	case ast.Number:
		_, _ = e.w.WriteString(string(x))
	case *ast.Array:
		_ = e.w.WriteByte('[')
		for i := 0; i < x.Len(); i++ {
			if i > 0 {
				_ = e.w.WriteByte(',')
			}
			e.astValue(x.Elem(i).Value)
		}
		_ = e.w.WriteByte(']')
	case ast.Object:
		// Foreach visits keys sorted by ast.Compare, which orders strings by
		// bytes; every key in a Trellis document is a string.
		_ = e.w.WriteByte('{')
		first := true
		x.Foreach(func(k, v *ast.Term) {
			s, ok := k.Value.(ast.String)
			if !ok {
				if e.err == nil {
					e.err = fmt.Errorf("bundle: object key %v is not a string", k)
				}
				return
			}
			if !first {
				_ = e.w.WriteByte(',')
			}
			first = false
			e.str(string(s))
			_ = e.w.WriteByte(':')
			e.astValue(v.Value)
			e.entry()
		})
		_ = e.w.WriteByte('}')
	case ast.Set:
		e.err = fmt.Errorf("bundle: sets cannot be written as JSON")
	default:
		e.err = fmt.Errorf("bundle: cannot encode %T as JSON", v)
	}
}

// chunks is an append-only in-memory file made of fixed-size chunks, so
// that a data.json of hundreds of megabytes grows without the copying and
// zeroing of a doubling bytes.Buffer.
type chunks struct {
	bufs [][]byte
	n    int
}

const chunkSize = 4 << 20

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.bufs) == 0 || len(c.bufs[len(c.bufs)-1]) == chunkSize {
			c.bufs = append(c.bufs, make([]byte, 0, chunkSize))
		}
		last := &c.bufs[len(c.bufs)-1]
		k := min(chunkSize-len(*last), len(p))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	c.n += n
	return n, nil
}

func (c *chunks) Len() int { return c.n }

func (c *chunks) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, b := range c.bufs {
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
