package model

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestAttributes(t *testing.T) {
	var r Resource
	if err := json.Unmarshal([]byte(`{"id":"r","attributes":{"b":1.50,"a":[true,"x"],"n":12345678901234567890}}`), &r); err != nil {
		t.Fatal(err)
	}
	want := Attributes{"a": []any{true, "x"}, "b": json.Number("1.50"), "n": json.Number("12345678901234567890")}
	if !reflect.DeepEqual(r.Attributes, want) {
		t.Fatalf("decoded %#v, want %#v", r.Attributes, want)
	}
	if got := string(r.Attributes.JSON()); got != `{"a":[true,"x"],"b":1.50,"n":12345678901234567890}` {
		t.Errorf("JSON() = %s: keys sorted, numbers as written", got)
	}
	// A YAML decoding's ints and floats read as JSON's.
	n, err := NormalizeAttributes(map[string]any{"b": 1.5, "a": []any{true, "x"}, "n": 7})
	if err != nil || !reflect.DeepEqual(n, Attributes{"a": []any{true, "x"}, "b": json.Number("1.5"), "n": json.Number("7")}) {
		t.Errorf("NormalizeAttributes = %#v, %v", n, err)
	}
	for _, bad := range []string{`[]`, `"x"`, `1`} {
		if err := json.Unmarshal([]byte(`{"attributes":`+bad+`}`), &r); err == nil || !strings.Contains(err.Error(), "attributes must be a JSON object") {
			t.Errorf("attributes %s: err %v, want a refusal", bad, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"attributes":{}}`), &r); err != nil || r.Attributes != nil {
		t.Errorf("{} is none: %#v, %v", r.Attributes, err)
	}
}

func TestCheckAttributes(t *testing.T) {
	for _, c := range []struct {
		a    Attributes
		want string // "" = accepted
	}{
		{nil, ""},
		{Attributes{"tags": []any{"a", "b\x00"}}, ".tags[1] contains a NUL byte"},
		{Attributes{"o": map[string]any{"k\x00": true}}, ".o has a key that contains a NUL byte"},
		{Attributes{"s": "\xff"}, ".s is not valid UTF-8"},
		{Attributes{"big": strings.Repeat("x", MaxAttributesBytes)}, " is 16394 bytes of JSON, more than 16384"},
	} {
		err := CheckAttributes(c.a)
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("CheckAttributes(%.40v) = %q, want %q", c.a, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("CheckAttributes(%.40v) accepted, want %q", c.a, c.want)
		}
	}
	d := Dataset{
		Organizations: []Organization{{ID: "o", Attributes: Attributes{"x": "\x00"}}},
	}
	err := d.Validate()
	if err == nil || !strings.Contains(err.Error(), "attributes.x contains a NUL byte") {
		t.Errorf("Validate: %v, want the organization's attributes named", err)
	}
}
