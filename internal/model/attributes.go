package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Attributes are a resource's or an organization's own facts for
// extensions to read (input.resource.attributes, input.organization
// attributes): a JSON object, kept as given. Trellis's own rules never
// read them. Numbers are json.Number, as everywhere in the data document,
// so a value reads back exactly; an empty object is the same as none
// (nil).
type Attributes map[string]any

// MaxAttributesBytes bounds the JSON encoding of one entity's attributes.
const MaxAttributesBytes = 16 << 10

// UnmarshalJSON decodes a JSON object (null is none), numbers as
// json.Number.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*a = nil
		return nil
	}
	m, err := decodeAttributes(b)
	if err != nil {
		return err
	}
	*a = m
	return nil
}

func decodeAttributes(b []byte) (Attributes, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("attributes must be a JSON object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// NormalizeAttributes returns v, a decoded object of any source (YAML's
// ints and floats, Go maps), as Attributes hold it: the JSON encoding's
// own decoding. It refuses a v that is not an object.
func NormalizeAttributes(v any) (Attributes, error) {
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return decodeAttributes(b)
}

// JSON is a's encoding with keys sorted (so equal attributes encode
// alike), nil for none.
func (a Attributes) JSON() []byte {
	if len(a) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any(a))
	if err != nil { // values are JSON's own: cannot fail
		panic(fmt.Sprintf("model: attributes do not encode: %v", err))
	}
	return b
}

// CheckAttributes returns nil when a fits MaxAttributesBytes and every key
// and string in it is text CheckText accepts. Its messages follow the
// field's name with no space: "attributes" + ".tags[1] contains a NUL
// byte", or + " is 17000 bytes of JSON, more than 16384".
func CheckAttributes(a Attributes) error {
	if err := checkValue("", map[string]any(a)); err != nil {
		return err
	}
	if n := len(a.JSON()); n > MaxAttributesBytes {
		return fmt.Errorf(" is %d bytes of JSON, more than %d", n, MaxAttributesBytes)
	}
	return nil
}

func checkValue(path string, v any) error {
	switch v := v.(type) {
	case string:
		if err := CheckText(v); err != nil {
			return fmt.Errorf("%s %w", path, err)
		}
	case map[string]any:
		for k, e := range v {
			if err := CheckText(k); err != nil {
				return fmt.Errorf("%s has a key that %w", path, err)
			}
			if err := checkValue(path+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkValue(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
