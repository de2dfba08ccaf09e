package requestid_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/requestid"
)

func TestHandler(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(requestid.LogHandler(slog.NewJSONHandler(&logs, nil))).With("component", "test")
	h := requestid.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "served")
		w.WriteHeader(http.StatusTeapot)
	}))
	generated := regexp.MustCompile(`^req_[0-9a-f]{32}$`)
	for _, tc := range []struct {
		name, sent string
		keep       bool
	}{
		{"none sent", "", false},
		{"the client's", "trace-42/abc", true},
		{"with a space", "a b", false},
		{"too long", strings.Repeat("x", 129), false},
		{"non-ASCII", "café", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.sent != "" {
				req.Header.Set(requestid.Header, tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(requestid.Header)
			if tc.keep && got != tc.sent || !tc.keep && !generated.MatchString(got) {
				t.Fatalf("response id %q for a request sending %q", got, tc.sent)
			}
			var rec1 map[string]any
			if err := json.Unmarshal(logs.Bytes(), &rec1); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if rec1["request_id"] != got || rec1["component"] != "test" {
				t.Fatalf("log record %v, want request_id %q", rec1, got)
			}
		})
	}
	// Two requests without an id get two ids.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	h.ServeHTTP(a, httptest.NewRequest("GET", "/", nil))
	h.ServeHTTP(b, httptest.NewRequest("GET", "/", nil))
	if a.Header().Get(requestid.Header) == b.Header().Get(requestid.Header) {
		t.Fatal("two requests got one id")
	}
}
