package apikey_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trellis-authz/trellis/internal/apikey"
)

func TestValid(t *testing.T) {
	keys := apikey.New([]string{"old", "", "new"})
	for _, tc := range []struct {
		name, header string
		want         bool
	}{
		{"first key", "Bearer old", true},
		{"second key", "Bearer new", true},
		{"wrong key", "Bearer other", false},
		{"empty key", "Bearer ", false},
		{"no scheme", "old", false},
		{"other scheme", "Basic old", false},
		{"lower-case scheme", "bearer old", true},
		{"upper-case scheme", "BEARER new", true},
		{"scheme glued to the key", "Bearerold", false},
		{"no header", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if got := keys.Valid(r); got != tc.want {
				t.Errorf("Valid(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
	if (apikey.Set{}).Valid(httptest.NewRequest(http.MethodGet, "/", nil)) {
		t.Error("the zero Set accepted a request")
	}
}
