package datafile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

// entryKinds describes each struct type of the format for error messages,
// keyed by its Go name as yaml.v3 prints it ("datafile.resourceEntry").
var entryKinds = func() map[string]entryKind {
	docType := reflect.TypeFor[document]()
	m := map[string]entryKind{"datafile." + docType.Name(): {"the top level", docType}}
	for f := range docType.Fields() {
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			m["datafile."+f.Type.Elem().Name()] = entryKind{"a " + f.Tag.Get("yaml") + " entry", f.Type.Elem()}
		}
	}
	return m
}()

// goTypeNames rewrites the Go type names in yaml.v3's messages.
var goTypeNames = func() *strings.Replacer {
	var pairs []string
	docType := reflect.TypeFor[document]()
	for f := range docType.Fields() {
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			pairs = append(pairs, "[]datafile."+f.Type.Elem().Name(), "the "+f.Tag.Get("yaml")+" list")
		}
	}
	for name, k := range entryKinds {
		pairs = append(pairs, name, k.desc)
	}
	return strings.NewReplacer(pairs...)
}()

type entryKind struct {
	desc string // "a resources entry"
	typ  reflect.Type
}

// keys lists the file keys of struct type t, from its tag for format.
func keys(t reflect.Type, format string) []string {
	var ks []string
	for f := range t.Fields() {
		ks = append(ks, f.Tag.Get(format))
	}
	return ks
}

// decodeYAML decodes one YAML document strictly into a document.
func decodeYAML(data []byte) (doc *document, err error) {
	// yaml.v3 reports its own errors by panicking and recovering; should a
	// bug panic with anything else, a data file must still not bring the
	// process down.
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("yaml: decoder failed: %v", r)
		}
	}()
	if err := yamlText(data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	doc = new(document)
	if err := dec.Decode(doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("yaml: the data file is empty")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, yamlTypeError(te)
		}
		return nil, err // already "yaml: line N: …"
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return doc, nil
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("yaml: line %d: a data file holds one YAML document; remove the second", max(extra.Line, 1))
	}
}

var yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.*) not found in type (datafile\.\w+)$`)

// yamlTypeError rewrites yaml.v3's messages in the file's terms: keys and
// entry kinds instead of Go type names.
func yamlTypeError(te *yaml.TypeError) error {
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if g := yamlUnknownField.FindStringSubmatch(m); g != nil {
			if k, ok := entryKinds[g[3]]; ok {
				m = fmt.Sprintf("line %s: unknown field %q in %s (known fields: %s)", g[1], g[2], k.desc, strings.Join(keys(k.typ, "yaml"), ", "))
			}
		}
		msgs[i] = goTypeNames.Replace(m)
	}
	return fmt.Errorf("yaml: %s", strings.Join(msgs, "; "))
}

// yamlLines returns, for each top-level key whose value is a sequence, the
// line of each entry, and for max_depth the line of its key. It returns
// what it can of a file that does not parse.
func yamlLines(data []byte) map[string][]int {
	lines := make(map[string][]int)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return lines
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return lines
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		if val.Kind != yaml.SequenceNode {
			lines[key.Value] = []int{key.Line}
			continue
		}
		ls := make([]int, len(val.Content))
		for j, item := range val.Content {
			ls[j] = item.Line
		}
		lines[key.Value] = ls
	}
	return lines
}

// decodeJSON decodes data strictly into a document. Besides what
// encoding/json's DisallowUnknownFields rejects, it rejects keys that match
// a field only case-insensitively and repeated keys, as YAML does. It also
// returns the lines of the entries, as yamlLines does.
func decodeJSON(data []byte) (*document, map[string][]int, error) {
	// The text check, a pass over every byte, runs beside the decode.
	text := make(chan error, 1)
	go func() { text <- jsonText(data) }()
	doc, lines, ok := decodeJSONFast(data)
	var err error
	if !ok {
		doc, lines, err = decodeJSONWalk(data)
	}
	if textErr := <-text; err == nil {
		err = textErr
	}
	if err != nil {
		return nil, nil, err
	}
	return doc, lines, nil
}

// decodeJSONStrict is decodeJSON without the fast path.
func decodeJSONStrict(data []byte) (*document, map[string][]int, error) {
	doc, lines, err := decodeJSONWalk(data)
	if err == nil {
		err = jsonText(data)
	}
	if err != nil {
		return nil, nil, err
	}
	return doc, lines, nil
}

// decodeJSONWalk is the strict decode without the text check: a token walk
// that checks the keys and records the lines, then encoding/json.
func decodeJSONWalk(data []byte) (*document, map[string][]int, error) {
	w := &jsonWalker{
		dec:   json.NewDecoder(bytes.NewReader(data)),
		lc:    lineCounter{data: data, line: 1},
		lines: make(map[string][]int),
	}
	if err := w.document(); err != nil {
		return nil, nil, fmt.Errorf("json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	doc := new(document)
	if err := dec.Decode(doc); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			line, _ := position(data, int(te.Offset))
			return nil, nil, fmt.Errorf("json: line %d: field %s: want %s, got a JSON %s", line, te.Field, kindName(te.Type), te.Value)
		}
		return nil, nil, fmt.Errorf("json: %w", err)
	}
	return doc, w.lines, nil
}

// jsonText reports a NUL or invalid UTF-8 in a JSON data file, with its line.
func jsonText(data []byte) error {
	var te *rawjson.TextError
	if errors.As(rawjson.CheckText(data), &te) {
		line, _ := position(data, te.Offset)
		return fmt.Errorf("json: line %d: %w", line, te)
	}
	return nil
}

// yamlText reports a NUL byte or invalid UTF-8 written as such in a YAML
// file with its line and, when the rest of the file parses, the key it is
// under ("yaml: line 3: organizations[0].name is not valid UTF-8"). yaml.v3
// rejects both without a line; an escape ("\0") decodes to a string that
// Validate reports instead.
func yamlText(data []byte) error {
	off, err := badText(data)
	if err == nil {
		return nil
	}
	line, _ := position(data, off)
	// Parse a copy with the bad bytes replaced (same lines) to find the key.
	clean := bytes.Clone(data)
	for o := off; o < len(clean); {
		r, size := utf8.DecodeRune(clean[o:])
		if r == 0 || r == utf8.RuneError && size == 1 {
			clean[o] = '?'
		}
		o += size
	}
	var root yaml.Node
	where := "the file"
	if yaml.Unmarshal(clean, &root) == nil && len(root.Content) > 0 {
		if p := yamlPathAt(root.Content[0], line, ""); p != "" {
			where = p
		}
	}
	return fmt.Errorf("yaml: line %d: %s %w", line, where, err)
}

// badText returns the offset of data's first NUL byte or byte that is not
// part of valid UTF-8, and which of model.ErrNUL and model.ErrInvalidUTF8
// it is; err is nil when there is none.
func badText(data []byte) (off int, err error) {
	if bytes.IndexByte(data, 0) < 0 && utf8.Valid(data) {
		return 0, nil // the common case, at memory speed
	}
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		switch {
		case r == 0:
			return off, model.ErrNUL
		case r == utf8.RuneError && size == 1:
			return off, model.ErrInvalidUTF8
		}
		off += size
	}
	return 0, nil
}

// yamlPathAt returns the path ("resources[2].name") of the last key or
// list entry at or before line in n, in document order, which is the one a
// byte on that line belongs to; "" when there is none.
func yamlPathAt(n *yaml.Node, line int, prefix string) string {
	found := ""
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line > line {
				break
			}
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			found = p
			if sub := yamlPathAt(v, line, p); sub != "" {
				found = sub
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if item.Line > line {
				break
			}
			p := fmt.Sprintf("%s[%d]", prefix, i)
			found = p
			if sub := yamlPathAt(item, line, p); sub != "" {
				found = sub
			}
		}
	}
	return found
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// jsonWalker checks the keys of a JSON data file token by token.
type jsonWalker struct {
	dec   *json.Decoder
	lc    lineCounter
	lines map[string][]int
}

// where names a place in the file for error messages.
type where struct {
	section string // "" for the top level
	index   int
}

func (w where) String() string {
	if w.section == "" {
		return "the top level"
	}
	return fmt.Sprintf("%s[%d]", w.section, w.index)
}

func (w *jsonWalker) document() error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("line %d: the top level must be an object", w.line())
	}
	if err := w.object(reflect.TypeFor[document](), where{}); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		if err != nil {
			return w.syntax(err)
		}
		return fmt.Errorf("line %d: unexpected data after the top-level object", w.line())
	}
	return nil
}

// object checks the keys of the object whose "{" was just read, and walks
// into the lists of entries of the top level.
func (w *jsonWalker) object(t reflect.Type, at where) error {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		fields[f.Tag.Get("json")] = f.Type
	}
	seen := make(map[string]bool, len(fields))
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		ft, ok := fields[key]
		if !ok {
			return fmt.Errorf("line %d: unknown field %q in %s (known fields: %s)", w.line(), key, at, strings.Join(keys(t, "json"), ", "))
		}
		if seen[key] {
			return fmt.Errorf("line %d: field %q appears twice in %s", w.line(), key, at)
		}
		seen[key] = true
		if at.section == "" && ft.Kind() == reflect.Slice {
			err = w.list(ft.Elem(), key)
		} else {
			if at.section == "" {
				w.lines[key] = []int{w.line()}
			}
			err = w.skip()
		}
		if err != nil {
			return err
		}
	}
	_, err := w.token() // "}"
	return err
}

// list walks a top-level list of entries, recording where each starts.
func (w *jsonWalker) list(elem reflect.Type, section string) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return w.skipRest(tok) // not a list: decoding reports the type
	}
	var ls []int
	for i := 0; w.dec.More(); i++ {
		ls = append(ls, w.lc.lineOfNext(int(w.dec.InputOffset())))
		tok, err := w.token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && d == '{' {
			err = w.object(elem, where{section, i})
		} else {
			err = w.skipRest(tok)
		}
		if err != nil {
			return err
		}
	}
	w.lines[section] = ls
	_, err = w.token() // "]"
	return err
}

// skip reads one value.
func (w *jsonWalker) skip() error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	return w.skipRest(tok)
}

// skipRest reads the rest of the value that starts with tok.
func (w *jsonWalker) skipRest(tok json.Token) error {
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := w.token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

func (w *jsonWalker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.syntax(err)
	}
	return tok, nil
}

// line is the line of the end of the last token read.
func (w *jsonWalker) line() int { return w.lc.lineAt(int(w.dec.InputOffset())) }

func (w *jsonWalker) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(w.lc.data, int(se.Offset))
		return fmt.Errorf("line %d, column %d: %w", line, col, se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("line %d: unexpected end of input", w.lc.lineAt(len(w.lc.data)))
	}
	return err
}

// lineCounter turns increasing byte offsets into line numbers in time
// linear in the data overall.
type lineCounter struct {
	data []byte
	off  int // lines before off are counted
	line int // line at off
}

func (c *lineCounter) lineAt(off int) int {
	off = min(max(off, 0), len(c.data))
	if off < c.off {
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(c.data[c.off:off], []byte{'\n'})
	c.off = off
	return c.line
}

// lineOfNext is the line of the first byte at or after off that is not
// blank or a comma: where the next value starts.
func (c *lineCounter) lineOfNext(off int) int {
	for off < len(c.data) && strings.IndexByte(" \t\r\n,", c.data[off]) >= 0 {
		off++
	}
	return c.lineAt(off)
}

// position returns the 1-based line and column of byte offset off.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}
