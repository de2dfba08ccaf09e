package shard_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/shard"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]shard.Shard{"": {}, "1/1": {K: 1, N: 1}, "3/4": {K: 3, N: 4}} {
		got, err := shard.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"0/4", "5/4", "1/0", "4", "a/b", "1/4/2", "-1/4"} {
		if _, err := shard.Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

// TestOf pins the hash to CRC-32 (IEEE) mod N, plus one — what HAProxy's
// crc32,mod(N),add(1) computes: values from Python's zlib.crc32.
func TestOf(t *testing.T) {
	for org, want := range map[string]int{"org_acme": 1, "org_globex": 2, "org_shard_4": 2, "org_shard_0": 1} {
		if got := shard.Of(org, 2); got != want {
			t.Errorf("Of(%q, 2) = %d, want %d", org, got, want)
		}
	}
	if got := shard.Of("org_acme", 1000); got != 2620173990%1000+1 { // zlib.crc32(b"org_acme")
		t.Errorf("Of(org_acme, 1000) = %d", got)
	}
	counts := make([]int, 4)
	s := shard.Shard{K: 2, N: 4}
	for i := range 4000 {
		org := "org_" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		counts[shard.Of(org, 4)-1]++
		if s.Holds(org) != (shard.Of(org, 4) == 2) {
			t.Fatalf("Holds(%q) disagrees with Of", org)
		}
	}
	for k, n := range counts {
		if n < 800 {
			t.Errorf("shard %d/4 got %d of 4000 organizations: %v", k+1, n, counts)
		}
	}
	if !(shard.Shard{}).Holds("org_anything") {
		t.Error("the whole does not hold an organization")
	}
}

func jwt(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + ".c2ln"
}

// TestHandler: on shard 1/2, requests of the routes about an organization
// of shard 2 are 421 naming it, whichever way they name it; those about
// shard 1 reach the next handler with their body whole; others pass.
func TestHandler(t *testing.T) {
	var reached string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reached = r.Method + " " + r.URL.Path + " " + string(body)
		w.WriteHeader(http.StatusOK)
	})
	h := shard.Handler(next, shard.Shard{K: 1, N: 2}, 1<<20)
	mine, theirs := "org_acme", "org_globex"
	type req struct {
		name, method, path, org, body string
	}
	cases := []struct {
		req
		status int
		code   string
	}{
		{req{"header, mine", "POST", "/v1/check", mine, `{"permission":"p"}`}, 200, ""},
		{req{"header, theirs", "POST", "/v1/check", theirs, `{"permission":"p"}`}, 421, "misdirected_request"},
		{req{"header wins over the token", "POST", "/v1/check", mine, `{"token":"` + jwt(map[string]any{"org_id": theirs}) + `"}`}, 200, ""},
		{req{"token, mine", "POST", "/v1/check/batch", "", `{"token":"` + jwt(map[string]any{"org_id": mine}) + `","checks":[]}`}, 200, ""},
		{req{"token, theirs", "POST", "/v1/list-resources", "", `{"token":"` + jwt(map[string]any{"org_id": theirs}) + `"}`}, 421, "misdirected_request"},
		{req{"resource organization, theirs", "POST", "/v1/list-memberships", "", `{"subject":{"organization_membership_id":"om_1"},"resource":{"type":"project","external_id":"x","organization_id":"` + theirs + `"}}`}, 421, "misdirected_request"},
		{req{"resource organization, mine", "POST", "/v1/effective-permissions", "", `{"resource":{"organization_id":"` + mine + `"}}`}, 200, ""},
		{req{"no key", "POST", "/v1/check", "", `{"subject":{"organization_membership_id":"om_1"},"resource":{"id":"authz_resource_1"}}`}, 421, "routing_key_required"},
		{req{"not a JWT", "POST", "/v1/check", "", `{"token":"abc"}`}, 421, "routing_key_required"},
		{req{"no key, data", "POST", "/v1/data/trellis_data/orgs/org_acme", "", `{}`}, 421, "routing_key_required"},
		{req{"no key, the revision passes", "POST", "/v1/data/trellis_data/revision", "", `{}`}, 200, ""},
		{req{"no key, WorkOS check", "POST", "/authorization/organization_memberships/om_1/check", "", `{}`}, 421, "routing_key_required"},
		{req{"WorkOS list, theirs", "GET", "/authorization/organization_memberships/om_1/resources", theirs, ``}, 421, "misdirected_request"},
		{req{"bundle, theirs", "GET", "/bundles/orgs/" + theirs + ".tar.gz", "", ``}, 421, "misdirected_request"},
		{req{"bundle, mine", "GET", "/bundles/orgs/" + mine + ".tar.gz", "", ``}, 200, ""},
		{req{"a write passes", "POST", "/authorization/resources", "", `{}`}, 200, ""},
		{req{"ready passes", "GET", "/ready", "", ``}, 200, ""},
		{req{"a malformed body is the handler's", "POST", "/v1/check", "", `{`}, 421, "routing_key_required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reached = ""
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.org != "" {
				r.Header.Set(shard.Header, c.org)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if c.status == 200 {
				if want := c.method + " " + c.path + " " + c.body; reached != want {
					t.Errorf("next got %q, want %q", reached, want)
				}
				return
			}
			if reached != "" {
				t.Errorf("a refused request reached next: %q", reached)
			}
			var body map[string]string
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if body["code"] != c.code {
				t.Errorf("code %q, want %q (%s)", body["code"], c.code, body["message"])
			}
			if c.code == "misdirected_request" {
				if got := w.Header().Get(shard.ShardHeader); got != "2/2" {
					t.Errorf("%s: %q, want 2/2", shard.ShardHeader, got)
				}
				if !strings.Contains(body["message"], "shard 2/2") || !strings.Contains(body["message"], theirs) {
					t.Errorf("message does not name the organization and its shard: %q", body["message"])
				}
			}
		})
	}
	r := httptest.NewRequest("POST", "/v1/check", strings.NewReader(`{}`))
	w := httptest.NewRecorder()
	shard.Handler(next, shard.Shard{}, 1<<20).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("the whole, a request without a key: %d, want it served", w.Code)
	}
}

// BenchmarkHandler is what the routing check adds to a request on a shard
// node, by how the request names its organization.
func BenchmarkHandler(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	tok := jwt(map[string]any{"org_id": "org_acme", "sub": "user_1", "organization_membership_id": "om_1", "permissions": []string{"a:b", "c:d"}})
	for _, c := range []struct {
		name, header, body string
	}{
		{"header", "org_acme", `{"subject":{"organization_membership_id":"om_1"},"permission":"project:edit","resource":{"id":"authz_resource_1"}}`},
		{"token", "", `{"token":"` + tok + `","permission":"project:edit","resource":{"id":"authz_resource_1"}}`},
	} {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"whole", next}, {"shard", shard.Handler(next, shard.Shard{K: 1, N: 2}, 1<<20)}} {
			b.Run(c.name+"/"+h.name, func(b *testing.B) {
				for b.Loop() {
					r := httptest.NewRequest("POST", "/v1/check", strings.NewReader(c.body))
					if c.header != "" {
						r.Header.Set(shard.Header, c.header)
					}
					w := httptest.NewRecorder()
					h.h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatal(w.Code, w.Body)
					}
				}
			})
		}
	}
}
