package rawjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		path      string // "" with err nil: no problem
		key       bool
		err       error
	}{
		{"plain", `{"a": "x", "b": [1, "y", {"c": null}], "d": true}`, "", false, nil},
		{"escapes", `{"a": "tab\t quote\" backslash\\ \u00e9 \ud83d\ude00 \/"}`, "", false, nil},
		{"multibyte", `{"name": "Zoë – 東京 😀"}`, "", false, nil},
		{"replacement character typed by the client", `{"name": "\ufffd �"}`, "", false, nil},
		{"escaped NUL", `{"resource": {"external_id": "a\u0000b"}}`, "resource.external_id", false, model.ErrNUL},
		{"raw NUL", "{\"name\": \"a\x00b\"}", "name", false, model.ErrNUL},
		{"invalid byte", "{\"name\": \"a\xffb\"}", "name", false, model.ErrInvalidUTF8},
		{"truncated sequence", "{\"name\": \"\xe2\x82\"}", "name", false, model.ErrInvalidUTF8},
		{"encoded surrogate", "{\"name\": \"\xed\xa0\x80\"}", "name", false, model.ErrInvalidUTF8},
		{"lone high surrogate", `{"name": "\ud800"}`, "name", false, model.ErrInvalidUTF8},
		{"high surrogate then text", `{"name": "\ud800abcdef"}`, "name", false, model.ErrInvalidUTF8},
		{"lone low surrogate", `{"name": "\udc00"}`, "name", false, model.ErrInvalidUTF8},
		{"reversed pair", `{"name": "\ude00\ud83d"}`, "name", false, model.ErrInvalidUTF8},
		{"in an array", `{"checks": [{"permission": "p"}, {"permission": "q", "resource": {"id": "x\u0000"}}]}`, "checks[1].resource.id", false, model.ErrNUL},
		{"nested arrays", `{"a": [[1, "ok"], ["\udfff"]]}`, "a[1][0]", false, model.ErrInvalidUTF8},
		{"key", `{"input": {"ok": 1, "b\u0000d": 2}}`, "input", true, model.ErrNUL},
		{"top-level key", "{\"\xff\": 1}", "", true, model.ErrInvalidUTF8},
		{"after a value with a bracket", `{"a": "[}{", "b": "\u0000"}`, "b", false, model.ErrNUL},
		{"top-level string", `"\u0000"`, "", false, model.ErrNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rawjson.CheckText([]byte(tc.doc))
			if tc.err == nil {
				if err != nil {
					t.Fatalf("CheckText = %v, want nil", err)
				}
				return
			}
			var te *rawjson.TextError
			if !errors.As(err, &te) {
				t.Fatalf("CheckText = %v, want a *TextError", err)
			}
			if te.Path != tc.path || te.Key != tc.key || !errors.Is(err, tc.err) {
				t.Fatalf("CheckText = {Path: %q, Key: %v, Err: %v}, want {%q, %v, %v}", te.Path, te.Key, te.Err, tc.path, tc.key, tc.err)
			}
			if tc.doc[te.Offset] != '"' {
				t.Errorf("Offset %d is not the string's opening quote", te.Offset)
			}
		})
	}
}

// FuzzCheckText: CheckText never panics, and a document it accepts that
// encoding/json decodes has only strings (keys included) model.CheckText
// accepts, with exactly the U+FFFD characters the document spells itself:
// encoding/json replaced nothing.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{
		`{"a": "b"}`, `{"a": "\u0000"}`, `{"a": "\ud800"}`, "{\"a\": \"\xff\"}", `[{"a": ["\udc00"]}]`,
		`{"a": "\ud83d\ude00"}`, `{"a": "\ufffd \\ufffd \uFFFD"}`, "{\"\xef\xbf\xbd\": \"\xed\xa0\x80\"}", `{"a`, `"\`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := rawjson.CheckText(doc)
		var v any
		if err != nil || json.Unmarshal(doc, &v) != nil {
			return
		}
		decoded := 0
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if model.CheckText(x) != nil {
					t.Fatalf("CheckText accepts %q, which decodes to %q", doc, x)
				}
				decoded += strings.Count(x, "\ufffd")
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
		if spelled := replacementsSpelled(doc); decoded != spelled {
			t.Fatalf("CheckText accepts %q: it decodes to %d U+FFFD but spells %d", doc, decoded, spelled)
		}
	})
}

// replacementsSpelled counts the U+FFFD characters a valid JSON document
// spells: as UTF-8, or as a \ufffd escape (not preceded by an odd number of
// backslashes, which would make it text).
func replacementsSpelled(doc []byte) int {
	n := bytes.Count(doc, []byte("\ufffd"))
	for i := 0; ; {
		j := bytes.Index(doc[i:], []byte(`\u`))
		if j < 0 {
			return n
		}
		j += i
		slashes := 0
		for k := j; k >= 0 && doc[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 && j+6 <= len(doc) && bytes.EqualFold(doc[j+2:j+6], []byte("fffd")) {
			n++
		}
		i = j + 1
	}
}

func BenchmarkCheckText(b *testing.B) {
	doc := []byte(`{"token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJvcmdfaWQiOiJvcmdfYWNtZSJ9.c2ln", "permission": "project:edit",
		"resource": {"type": "project", "external_id": "api", "organization_id": "org_acme"}, "consistency": {"at_least_revision": 3}}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := rawjson.CheckText(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSpecial compares Special with a byte-by-byte scan on every offset of
// strings that place each kind of special byte at every position of an
// eight-byte word, after every kind of plain byte.
func TestSpecial(t *testing.T) {
	plain := []byte("aZ ~\x7f0")
	special := []byte("\"\\\x00\x1f\x80\xff\xc3")
	for _, p := range plain {
		for _, s := range special {
			for n := range 20 {
				data := append(bytes.Repeat([]byte{p}, n), s, p, '"')
				for i := range data {
					for _, high := range []bool{false, true} {
						want := i
						for want < len(data) {
							c := data[want]
							if c == '"' || c == '\\' || c < 0x20 || high && c >= 0x80 {
								break
							}
							want++
						}
						if got := rawjson.Special(data, i, high); got != want {
							t.Fatalf("rawjson.Special(%q, %d, %v) = %d, want %d", data, i, high, got, want)
						}
					}
				}
			}
		}
	}
}
