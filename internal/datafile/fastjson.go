package datafile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/trellis-authz/trellis/internal/rawjson"
)

// The fast path for JSON data files: one pass over the bytes straight into
// the document, with no tokens, no intermediate values and no reflection on
// the hot path beyond setting fields, each top-level list decoded on its own
// goroutine (the lists are most of the work, and a large file's resources
// and assignments are about even). It is deliberately conservative: it
// accepts only what the strict decoder (jsonWalker, then encoding/json)
// accepts and decodes to the same document, and gives up on anything else —
// a syntax error, an unknown, repeated or escaped key, a null, a value of
// another type, a number that is not a plain integer. decodeJSON then runs
// the strict decoder, so every refusal keeps its message.

// fastField is one key of an entry type.
type fastField struct {
	index  int
	kind   reflect.Kind // reflect.String, reflect.Int, reflect.Slice ([]string) or reflect.Map (attributes)
	intern bool         // the value repeats across entries (an organization id, a type)
}

// fastType describes a struct type of the format for the fast path.
type fastType struct {
	names  []string // by position in fields: a linear scan beats hashing at this size
	fields []fastField
}

// field returns the field of key raw.
func (t *fastType) field(raw []byte) (fastField, bool) {
	for i, n := range t.names {
		if n == string(raw) {
			return t.fields[i], true
		}
	}
	return fastField{}, false
}

// repeated lists the keys whose values repeat across many entries; the fast
// path shares one string per distinct value of them.
var repeated = map[string]bool{
	"organization_id": true, "type": true, "role": true, "status": true,
	"resource_type": true, "membership": true, "group": true,
}

func newFastType(t reflect.Type) *fastType {
	ft := new(fastType)
	for f := range t.Fields() {
		name := f.Tag.Get("json")
		ft.names = append(ft.names, name)
		ft.fields = append(ft.fields, fastField{index: f.Index[0], kind: f.Type.Kind(), intern: repeated[name]})
	}
	return ft
}

var (
	fastDocument = newFastType(reflect.TypeFor[document]())
	fastEntries  = func() map[reflect.Type]*fastType {
		m := make(map[reflect.Type]*fastType)
		for f := range reflect.TypeFor[document]().Fields() {
			if f.Type.Kind() == reflect.Slice {
				m[f.Type.Elem()] = newFastType(f.Type.Elem())
			}
		}
		return m
	}()
)

// fastDecoder is the state of one fast decode: of the whole document, or
// of one of its lists (a sub-decoder of the document's).
type fastDecoder struct {
	data   []byte
	off    int
	line   int
	lines  map[string][]int
	intern map[string]string

	// The document's decoder: its lists' decoders, running.
	lists   sync.WaitGroup
	sublist []*fastDecoder
	// A list's decoder: where its list ends, how many objects it holds
	// and whether it was decoded.
	end, entries int
	ok           bool
}

func newFastDecoder(data []byte, off, line int) *fastDecoder {
	return &fastDecoder{data: data, off: off, line: line, lines: make(map[string][]int), intern: make(map[string]string)}
}

// decodeJSONFast decodes data as decodeJSON would when data is a strictly
// valid JSON data file (ok), before the text check; ok is false for
// anything it is not sure of.
func decodeJSONFast(data []byte) (doc *document, lines map[string][]int, ok bool) {
	d := newFastDecoder(data, 0, 1)
	doc = new(document)
	d.ws()
	ok = d.consume('{') && d.object(reflect.ValueOf(doc).Elem(), fastDocument, true)
	d.lists.Wait()
	if d.ws(); !ok || d.off != len(d.data) {
		return nil, nil, false
	}
	for _, l := range d.sublist {
		if !l.ok {
			return nil, nil, false
		}
		for section, ls := range l.lines {
			d.lines[section] = ls
		}
	}
	return doc, d.lines, true
}

// startList starts decoding the top-level list that comes next into field,
// on a goroutine of its own, and moves past it.
func (d *fastDecoder) startList(field reflect.Value, section string) bool {
	d.ws()
	l := newFastDecoder(d.data, d.off, d.line)
	n, ok := d.skipList()
	if !ok {
		return false
	}
	l.end, l.entries = d.off, n
	d.sublist = append(d.sublist, l)
	d.lists.Go(func() { l.ok = l.list(field, section) && l.off == l.end })
	return true
}

// skipList moves past the list that comes next without decoding it,
// counting its lines and the objects it holds, n; its strings are read as
// rawString does, so that a bracket in a string is not taken for the
// list's end. What it skips is decoded and checked by the list's own
// decoder.
func (d *fastDecoder) skipList() (n int, ok bool) {
	d.ws()
	start, depth := d.off, 0
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case '"':
			if _, _, ok := d.rawString(); !ok {
				return 0, false
			}
			continue
		case '{':
			if depth == 1 {
				n++
			}
			depth++
		case '[':
			depth++
		case '}', ']':
			depth--
		}
		d.off++
		if depth <= 0 {
			break
		}
	}
	d.line += bytes.Count(d.data[start:d.off], []byte{'\n'})
	return n, depth == 0 && d.off > start && d.data[start] == '['
}

// ws skips blanks, counting lines.
func (d *fastDecoder) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case '\n':
			d.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		d.off++
	}
}

// consume reads byte c after blanks.
func (d *fastDecoder) consume(c byte) bool {
	d.ws()
	if d.off < len(d.data) && d.data[d.off] == c {
		d.off++
		return true
	}
	return false
}

// peek returns the next byte after blanks, or 0 at the end.
func (d *fastDecoder) peek() byte {
	d.ws()
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// rawString reads a string and returns its bytes between the quotes, and
// whether it holds an escape.
func (d *fastDecoder) rawString() (raw []byte, escaped, ok bool) {
	if !d.consume('"') {
		return nil, false, false
	}
	start := d.off
	for d.off < len(d.data) {
		d.off = rawjson.Special(d.data, d.off, false)
		if d.off == len(d.data) {
			break
		}
		c := d.data[d.off]
		switch {
		case c == '"':
			raw = d.data[start:d.off]
			d.off++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			d.off += 2
			continue
		default: // a control character
			return nil, false, false
		}
	}
	return nil, false, false
}

// str reads a string value.
func (d *fastDecoder) str(intern bool) (string, bool) {
	start := d.off
	raw, escaped, ok := d.rawString()
	if !ok {
		return "", false
	}
	if escaped {
		var s string
		if json.Unmarshal(d.data[start:d.off], &s) != nil {
			return "", false
		}
		return s, true
	}
	if !intern {
		return string(raw), true
	}
	if s, ok := d.intern[string(raw)]; ok {
		return s, true
	}
	s := string(raw)
	d.intern[s] = s
	return s, true
}

// value decodes the next JSON value into v with encoding/json.
func (d *fastDecoder) value(v any) bool {
	dec := json.NewDecoder(bytes.NewReader(d.data[d.off:]))
	if dec.Decode(v) != nil {
		return false
	}
	end := d.off + int(dec.InputOffset())
	d.line += bytes.Count(d.data[d.off:end], []byte{'\n'})
	d.off = end
	return true
}

// integer reads a plain integer that fits an int.
func (d *fastDecoder) integer() (int, bool) {
	d.ws()
	neg := d.off < len(d.data) && d.data[d.off] == '-'
	if neg {
		d.off++
	}
	start := d.off
	n := 0
	for d.off < len(d.data) && d.data[d.off] >= '0' && d.data[d.off] <= '9' {
		n = n*10 + int(d.data[d.off]-'0')
		d.off++
	}
	digits := d.off - start
	if digits == 0 || digits > 15 || digits > 1 && d.data[start] == '0' {
		return 0, false
	}
	if d.off < len(d.data) {
		switch d.data[d.off] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// strings reads a list of strings.
func (d *fastDecoder) strings(intern bool) ([]string, bool) {
	if !d.consume('[') {
		return nil, false
	}
	list := []string{}
	if d.peek() == ']' {
		d.off++
		return list, true
	}
	for {
		s, ok := d.str(intern)
		if !ok {
			return nil, false
		}
		list = append(list, s)
		switch d.peek() {
		case ',':
			d.off++
		case ']':
			d.off++
			return list, true
		default:
			return nil, false
		}
	}
}

// object reads the members of the object whose "{" was just read into v,
// a struct described by t; at the top level it reads the lists of entries.
func (d *fastDecoder) object(v reflect.Value, t *fastType, top bool) bool {
	var seen uint64
	if d.peek() == '}' {
		d.off++
		return true
	}
	for {
		raw, escaped, ok := d.rawString()
		if !ok || escaped {
			return false
		}
		f, ok := t.field(raw)
		if !ok || seen&(1<<f.index) != 0 {
			return false
		}
		seen |= 1 << f.index
		keyLine := d.line
		if !d.consume(':') {
			return false
		}
		field := v.Field(f.index)
		switch {
		case top && f.kind == reflect.Slice:
			if !d.startList(field, string(raw)) {
				return false
			}
		case f.kind == reflect.String:
			s, ok := d.str(f.intern)
			if !ok {
				return false
			}
			field.SetString(s)
		case f.kind == reflect.Int:
			n, ok := d.integer()
			if !ok {
				return false
			}
			field.SetInt(int64(n))
			if top {
				d.lines[string(raw)] = []int{keyLine}
			}
		case f.kind == reflect.Slice:
			ss, ok := d.strings(f.intern)
			if !ok {
				return false
			}
			field.Set(reflect.ValueOf(ss))
		case f.kind == reflect.Map: // attributes: rare, so encoding/json
			if d.peek() != '{' || !d.value(field.Addr().Interface()) {
				return false
			}
		default:
			return false
		}
		switch d.peek() {
		case ',':
			d.off++
		case '}':
			d.off++
			return true
		default:
			return false
		}
	}
}

// list reads a top-level list of entries into the slice field, recording
// the line each entry starts on.
func (d *fastDecoder) list(field reflect.Value, section string) bool {
	et := fastEntries[field.Type().Elem()]
	if et == nil || !d.consume('[') {
		return false
	}
	// Entries go straight into a slice of the size skipList counted.
	var ls []int // nil for an empty list, as the strict decoder records it
	if d.entries > 0 {
		ls = make([]int, 0, d.entries)
	}
	list := reflect.MakeSlice(field.Type(), d.entries, d.entries)
	n := 0
	finish := func() {
		field.Set(list.Slice(0, n))
		d.lines[section] = ls
	}
	if d.peek() == ']' {
		d.off++
		finish()
		return true
	}
	for {
		if d.peek() != '{' {
			return false
		}
		ls = append(ls, d.line)
		d.off++
		if n == list.Len() { // more objects than skipList counted: not so
			return false
		}
		n++
		if !d.object(list.Index(n-1), et, false) {
			return false
		}
		switch d.peek() {
		case ',':
			d.off++
		case ']':
			d.off++
			finish()
			return true
		default:
			return false
		}
	}
}
