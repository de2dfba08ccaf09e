package datafile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFastAgrees fails t when the fast JSON path accepts data but the
// strict decoder refuses it or decodes another document or other lines.
func checkFastAgrees(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	doc, lines, ok := decodeJSONFast(data)
	if !ok {
		return false
	}
	want, wantLines, err := decodeJSONStrict(data)
	if err != nil {
		if jsonText(data) != nil {
			return true // both refuse it for its text, in decodeJSON
		}
		t.Fatalf("fast path accepted what the strict decoder refuses: %v", err)
	}
	if diff := cmp.Diff(want, doc, cmp.AllowUnexported(document{})); diff != "" {
		t.Fatalf("fast path document differs (-strict +fast):\n%s", diff)
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Fatalf("fast path lines differ (-strict +fast):\n%s", diff)
	}
	return true
}

func TestFastJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		fast bool
	}{
		{"small file", string(readFile(t, "testdata/small.json")), true},
		{"generated", string(generated(2_000, FormatJSON)), true},
		{"empty lists and object", `{"resources": [], "organizations": [{}]}`, true},
		{"max depth", "{\n\n  \"max_depth\" : 7 }", true},
		{"escaped value", `{"organizations": [{"id": "org_\u00e9\"x\\"}]}`, true},
		{"empty string list", `{"resource_types": [{"slug": "a", "parent_types": []}]}`, true},
		{"string list", "{\"roles\": [{\"slug\": \"a\",\n \"permissions\": [\"p\", \"q\"]}]}", true},
		{"unknown key", `{"resources": [{"parnet": "x"}]}`, false},
		{"case-insensitive key", `{"resources": [{"ID": "x"}]}`, false},
		{"repeated key", `{"resources": [{"id": "x", "id": "y"}]}`, false},
		{"repeated section", `{"resources": [], "resources": []}`, false},
		{"escaped key", `{"resources": [{"\u0069d": "x"}]}`, false},
		{"null value", `{"resources": [{"id": null}]}`, false},
		{"attributes", "{\"resources\": [{\"attributes\": {\"a\": [1.5,\n {\"b\": null}]}, \"id\": \"x\"}]}", true},
		{"attributes not an object", `{"resources": [{"attributes": [1]}]}`, false},
		{"null list", `{"resources": null}`, false},
		{"number for a string", `{"resources": [{"id": 1}]}`, false},
		{"float depth", `{"max_depth": 5.0}`, false},
		{"huge depth", `{"max_depth": 99999999999999999999}`, false},
		{"leading zero", `{"max_depth": 05}`, false},
		{"entry not an object", `{"resources": ["x"]}`, false},
		{"trailing data", `{} {}`, false},
		{"trailing comma", `{"resources": [{"id": "x"},]}`, false},
		{"unterminated", `{"resources": [{"id": "x`, false},
		{"control character", "{\"resources\": [{\"id\": \"a\tb\"}]}", false},
		{"not an object", `[]`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFastAgrees(t, []byte(tc.data)); got != tc.fast {
				t.Errorf("fast path taken = %v, want %v", got, tc.fast)
			}
		})
	}
}

func FuzzFastJSON(f *testing.F) {
	f.Add(readFile(f, "testdata/small.json"))
	f.Add([]byte(`{"resources": [{"id": "x", "id": "y"}], "max_depth": 3}`))
	f.Add([]byte(`{"organizations": [{"id": "org_a", "name": "\ud800"}]}`))
	f.Add([]byte("{\"organizations\": [{\"id\": \"org_a\", \"name\": \"\xff\"}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastAgrees(t, data)
	})
}
