package rawjson_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name, data string
		want       string // the decoded name, on success
		wantErr    func(error) bool
	}{
		{"one object", `{"name": "a"}`, "a", nil},
		{"whitespace around it", " \n{\"name\": \"a\"}\n ", "a", nil},
		{"a NUL escape", `{"name": "a\u0000"}`, "", func(err error) bool {
			var te *rawjson.TextError
			return errors.As(err, &te) && te.Path == "name" && errors.Is(err, model.ErrNUL)
		}},
		{"a second object", `{"name": "a"} {}`, "", func(err error) bool { return errors.Is(err, rawjson.ErrTrailing) }},
		{"trailing garbage", `{"name": "a"} x`, "", func(err error) bool { return errors.Is(err, rawjson.ErrTrailing) }},
		{"an unknown field", `{"title": "a"}`, "", func(err error) bool { return err != nil && strings.Contains(err.Error(), "unknown field") }},
		{"nothing", ``, "", func(err error) bool { return errors.Is(err, io.EOF) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got body
			err := rawjson.Decode([]byte(tt.data), &got)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Decode(%q): %v", tt.data, err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("Decode(%q): error %v, not the one wanted", tt.data, err)
			case tt.wantErr == nil && got.Name != tt.want:
				t.Errorf("Decode(%q): name %q, want %q", tt.data, got.Name, tt.want)
			}
		})
	}
}
