package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailing is returned by Decode for data after the one JSON value.
var ErrTrailing = errors.New("unexpected data after the JSON object")

// Decode decodes data, exactly one JSON value whose strings are all text,
// into dst, refusing object fields dst does not have. Errors: a *TextError
// (CheckText), ErrTrailing, or encoding/json's own (io.EOF for no value,
// *json.SyntaxError, *json.UnmarshalTypeError, "json: unknown field …").
// It is the one strict decoder of every JSON request body.
func Decode(data []byte, dst any) error {
	if err := CheckText(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}
