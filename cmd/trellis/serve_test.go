package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/token"
)

const testIssuer = "https://issuer.test"

// jwksServer serves a JWKS that a test can rotate.
type jwksServer struct {
	mu   sync.Mutex
	keys []json.RawMessage
	hits int
	*httptest.Server
}

func newJWKSServer(t testing.TB, signers ...*token.Signer) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, signers...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits++
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, signers ...*token.Signer) {
	t.Helper()
	var keys []json.RawMessage
	for _, sg := range signers {
		var set struct{ Keys []json.RawMessage }
		if err := json.Unmarshal(sg.JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, set.Keys...)
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func newSigner(t testing.TB, kid string) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(token.RS256, kid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mint signs an AuthKit-style token for a demo membership.
func mint(t testing.TB, s *token.Signer, d devToken, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	raw, err := s.Sign(map[string]any{
		"iss": testIssuer, "sub": d.User, "org_id": d.Organization, "role": d.Role,
		"permissions": d.Permissions, "organization_membership_id": d.Membership,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func testConfig(t testing.TB, args ...string) serveConfig {
	t.Helper()
	c, err := parseServe(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startService wires the server like `trellis serve` does and serves it on a
// free loopback port.
func startService(t testing.TB, c serveConfig) string {
	t.Helper()
	svc, err := newService(context.Background(), c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.cleanup)
	srv := httptest.NewServer(svc.handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// post sends body to url+path and decodes the JSON answer.
func post(t testing.TB, url, path, apiKey string, body any) (int, map[string]any) {
	t.Helper()
	var buf []byte
	switch b := body.(type) {
	case string:
		buf = []byte(b)
	default:
		var err error
		if buf, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(buf))
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: decode answer: %v", path, err)
	}
	return resp.StatusCode, out
}

func check(perm, typ, ext string) map[string]any {
	return map[string]any{"permission": perm, "resource": map[string]any{"type": typ, "external_id": ext}}
}

func withToken(tok string, req map[string]any) map[string]any {
	req["token"] = tok
	return req
}

func TestServeEndToEnd(t *testing.T) {
	k1, k2, forger := newSigner(t, "k1"), newSigner(t, "k2"), newSigner(t, "k1")
	jwks := newJWKSServer(t, k1)
	url := startService(t, testConfig(t, "--jwks-url", jwks.URL, "--issuer", testIssuer,
		"--jwks-min-refresh", "1ms", "--api-key", "old-key-0123456789abcdef", "--api-key", "new-key-0123456789abcdef", "--max-batch", "3"))
	bob, carol := mint(t, k1, bobToken, time.Hour), mint(t, k1, carolToken, time.Hour)

	tests := []struct {
		name      string
		req       map[string]any
		allowed   bool
		decidedBy string
		reason    map[string]any // subset of the reason to compare
	}{
		{"allow by token", withToken(bob, check("workspace:view", "workspace", "acme-sales")), true, "token",
			map[string]any{"code": "token_permission"}},
		{"allow by inheritance", withToken(bob, check("project:edit", "project", "api")), true, "assignment",
			map[string]any{"code": "role_assignment", "role": "workspace-admin"}},
		{"deny without a grant", withToken(carol, check("project:edit", "project", "api")), false, "none",
			map[string]any{"code": "no_grant"}},
		{"deny in another organization", withToken(bob, check("workspace:view", "workspace", "globex-rnd")), false, "none",
			map[string]any{"code": "unknown_resource"}},
		{"deny a forged token", withToken(mint(t, forger, bobToken, time.Hour), check("workspace:view", "workspace", "acme-sales")), false, "none",
			map[string]any{"code": token.CodeBadSignature}},
		{"deny an expired token", withToken(mint(t, k1, bobToken, -time.Hour), check("workspace:view", "workspace", "acme-sales")), false, "none",
			map[string]any{"code": token.CodeExpired}},
		{"deny an unknown permission", withToken(bob, check("project:fly", "project", "api")), false, "none",
			map[string]any{"code": "unknown_permission"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, got := post(t, url, "/v1/check", "", tc.req)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, got)
			}
			if got["allowed"] != tc.allowed || got["decided_by"] != tc.decidedBy {
				t.Errorf("got allowed=%v decided_by=%v, want %v %v (%v)", got["allowed"], got["decided_by"], tc.allowed, tc.decidedBy, got["reason"])
			}
			reason, _ := got["reason"].(map[string]any)
			for k, want := range tc.reason {
				if reason[k] != want {
					t.Errorf("reason.%s = %v, want %v (reason %v)", k, reason[k], want, reason)
				}
			}
			if id, _ := got["decision_id"].(string); len(id) != 32 {
				t.Errorf("decision_id = %q", got["decision_id"])
			}
			if _, ok := got["revision"].(float64); !ok {
				t.Errorf("no revision in %v", got)
			}
		})
	}

	t.Run("explanation names the grant path", func(t *testing.T) {
		_, got := post(t, url, "/v1/check", "", withToken(bob, check("project:edit", "project", "api")))
		res := got["reason"].(map[string]any)["resource"].(map[string]any)
		if res["type"] != "workspace" || res["external_id"] != "acme-eng" {
			t.Errorf("grant resource = %v, want workspace acme-eng", res)
		}
	})

	t.Run("key rotation", func(t *testing.T) {
		jwks.set(t, k1, k2)
		_, got := post(t, url, "/v1/check", "", withToken(mint(t, k2, bobToken, time.Hour), check("workspace:view", "workspace", "acme-sales")))
		if got["allowed"] != true {
			t.Errorf("token signed with the rotated-in key: %v", got)
		}
	})

	t.Run("batch", func(t *testing.T) {
		status, got := post(t, url, "/v1/check/batch", "", map[string]any{"token": bob, "checks": []any{
			check("project:edit", "project", "api"), check("project:edit", "project", "crm"), check("workspace:view", "workspace", "acme-eng"),
		}})
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, got)
		}
		var allowed []any
		for _, r := range got["results"].([]any) {
			allowed = append(allowed, r.(map[string]any)["allowed"])
		}
		if diff := cmp.Diff(allowed, []any{true, false, true}); diff != "" {
			t.Errorf("batch allowed (-got +want):\n%s", diff)
		}
		status, got = post(t, url, "/v1/check/batch", "", map[string]any{"token": bob, "checks": []any{
			check("a:b", "x", "1"), check("a:b", "x", "2"), check("a:b", "x", "3"), check("a:b", "x", "4"),
		}})
		if status != http.StatusBadRequest || got["code"] != "invalid_request" {
			t.Errorf("oversized batch: %d %v", status, got)
		}
	})

	t.Run("list resources pages agree with checks", func(t *testing.T) {
		var ids []string
		cursor := ""
		for range 10 {
			req := map[string]any{"token": bob, "permission": "project:edit", "resource_type": "project", "limit": 1, "cursor": cursor}
			status, got := post(t, url, "/v1/list-resources", "", req)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, got)
			}
			for _, id := range got["resource_ids"].([]any) {
				ids = append(ids, id.(string))
			}
			next, _ := got["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(ids) != 2 {
			t.Fatalf("bob edits projects %v, want api and web", ids)
		}
		for _, id := range ids {
			_, got := post(t, url, "/v1/check", "", map[string]any{"token": bob, "permission": "project:edit", "resource": map[string]any{"id": id}})
			if got["allowed"] != true {
				t.Errorf("listed %s but check says %v", id, got)
			}
		}
	})

	t.Run("membership subject needs an API key", func(t *testing.T) {
		req := map[string]any{"subject": map[string]any{"organization_membership_id": "om_bob"},
			"resource": map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"}}
		if status, got := post(t, url, "/v1/effective-permissions", "", req); status != http.StatusUnauthorized || got["code"] != "unauthorized" {
			t.Errorf("no key: %d %v", status, got)
		}
		if status, _ := post(t, url, "/v1/effective-permissions", "wrong", req); status != http.StatusUnauthorized {
			t.Errorf("wrong key: %d", status)
		}
		for _, key := range []string{"old-key-0123456789abcdef", "new-key-0123456789abcdef"} {
			status, got := post(t, url, "/v1/effective-permissions", key, req)
			if status != http.StatusOK {
				t.Fatalf("key %s: %d %v", key, status, got)
			}
			perms := got["permissions"].([]any)
			if len(perms) == 0 || !contains(perms, "project:edit") || contains(perms, "org:manage") {
				t.Errorf("bob's permissions on api: %v", perms)
			}
		}
	})

	t.Run("list memberships", func(t *testing.T) {
		status, got := post(t, url, "/v1/list-memberships", "new-key-0123456789abcdef", map[string]any{"permission": "project:edit",
			"resource": map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"}})
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, got)
		}
		ids := got["membership_ids"].([]any)
		if !contains(ids, "om_bob") || !contains(ids, "om_alice") || contains(ids, "om_carol") || contains(ids, "om_dave") {
			t.Errorf("memberships that edit api: %v", ids)
		}
	})

	t.Run("data API", func(t *testing.T) {
		in := map[string]any{"input": withToken(bob, check("project:edit", "project", "api"))}
		status, got := post(t, url, "/v1/data/trellis/check", "new-key-0123456789abcdef", in)
		if status != http.StatusOK || got["result"].(map[string]any)["allowed"] != true {
			t.Errorf("data API check: %d %v", status, got)
		}
		forged := map[string]any{"input": map[string]any{"token": map[string]any{"org_id": "org_acme", "permissions": []string{"project:edit"}},
			"permission": "project:edit", "resource": map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"}}}
		if status, got := post(t, url, "/v1/data/trellis/check", "new-key-0123456789abcdef", forged); status != http.StatusBadRequest {
			t.Errorf("claims supplied as input.token: %d %v", status, got)
		}
		status, got = post(t, url, "/v1/data/trellis/no_such_rule", "new-key-0123456789abcdef", map[string]any{"input": map[string]any{}})
		if _, has := got["result"]; status != http.StatusOK || has {
			t.Errorf("undefined document: %d %v", status, got)
		}
		if status, _ := post(t, url, "/v1/data/trellis/check", "", in); status != http.StatusUnauthorized {
			t.Errorf("data API without key: %d", status)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			status     int
		}{
			{"malformed", `{"token": `, http.StatusBadRequest},
			{"unknown field", `{"token": "x", "permision": "a"}`, http.StatusBadRequest},
			{"wrong type", `{"token": "x", "permission": 7}`, http.StatusBadRequest},
			{"two objects", `{"token": "x"} {}`, http.StatusBadRequest},
			{"empty", ``, http.StatusBadRequest},
			{"missing resource", `{"token": "x", "permission": "a"}`, http.StatusBadRequest},
			{"too large", `{"token": "` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
			{"no subject", `{"permission": "a", "resource": {"id": "r"}}`, http.StatusUnauthorized},
		} {
			status, got := post(t, url, "/v1/check", "", tc.body)
			if status != tc.status || got["code"] == nil || got["message"] == nil {
				t.Errorf("%s: %d %v, want %d with code and message", tc.name, status, got, tc.status)
			}
		}
	})
}

func TestServeJWKSFile(t *testing.T) {
	k := newSigner(t, "file-key")
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, k.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startService(t, testConfig(t, "--jwks-file", path, "--issuer", testIssuer))
	_, got := post(t, url, "/v1/check", "", withToken(mint(t, k, bobToken, time.Hour), check("project:edit", "project", "api")))
	if got["allowed"] != true || got["decided_by"] != "assignment" {
		t.Errorf("check with a JWKS file: %v", got)
	}
	_, got = post(t, url, "/v1/check", "", withToken(mint(t, newSigner(t, "file-key"), bobToken, time.Hour), check("project:edit", "project", "api")))
	if got["allowed"] != false {
		t.Errorf("forged token allowed: %v", got)
	}
}

// TestDevCurlCommands runs `trellis serve --dev`, on the demo and on a
// data file of its own, and replays the printed curl commands, as a
// newcomer pasting them would; then mints a token with the printed
// command.
func TestDevCurlCommands(t *testing.T) {
	mine := filepath.Join("..", "..", "internal", "devmode", "testdata", "mine.yaml")
	for name, tc := range map[string]struct {
		args   []string
		source string
		member string
	}{
		"demo":      {nil, "the embedded demo data", "om_bob"},
		"data file": {[]string{"--data", mine}, "the data file " + mine, "om_ben"},
	} {
		t.Run(name, func(t *testing.T) { testDevCurlCommands(t, tc.args, tc.source, tc.member) })
	}
}

func testDevCurlCommands(t *testing.T, args []string, source, member string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--dev", "--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	curl := regexp.MustCompile(`^curl -s (\S+)(?: -H 'Authorization: Bearer (\S+)')? -d '(.*)'$`)
	mintCmd := regexp.MustCompile(`^  trellis token mint --server (\S+) --api-key (\S+) --membership`)
	var answers []map[string]any
	var server, key string
	sawSource := false
	sc := bufio.NewScanner(pr)
	sc.Buffer(nil, 1<<20)
	for len(answers) < 5 && sc.Scan() {
		if strings.Contains(sc.Text(), "development mode") {
			sawSource = strings.HasSuffix(sc.Text(), " with "+source+".")
		}
		if m := mintCmd.FindStringSubmatch(sc.Text()); m != nil {
			server, key = m[1], m[2]
		}
		m := curl.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		u, _, ok := strings.Cut(m[1], "/v1/")
		if !ok {
			t.Fatalf("curl command without /v1/: %s", sc.Text())
		}
		_, got := post(t, u, m[1][len(u):], m[2], m[3])
		answers = append(answers, got)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !sawSource {
		t.Errorf("the banner does not name %s", source)
	}
	if len(answers) != 5 {
		t.Fatalf("got %d curl commands, want 5", len(answers))
	}
	var allowed []any
	for _, a := range answers[:3] {
		allowed = append(allowed, a["allowed"])
	}
	if diff := cmp.Diff(allowed, []any{true, true, false}); diff != "" {
		t.Errorf("token allow, inheritance allow, deny (-got +want):\n%s", diff)
	}
	if answers[0]["decided_by"] != "token" || answers[1]["decided_by"] != "assignment" {
		t.Errorf("decided_by: %v, %v", answers[0]["decided_by"], answers[1]["decided_by"])
	}

	// The printed mint command gives a token the server accepts.
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "mint", "--server", server, "--api-key", key, "--membership", member, "--ttl", "5m"}, &out, io.Discard); err != nil {
		t.Fatalf("token mint: %v", err)
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Fatalf("token mint printed %q, want just a JWT", out.String())
	}
	if _, got := post(t, server, "/v1/effective-permissions", "", fmt.Sprintf(`{"token": %q, "resource": {"type": "organization", "external_id": %q}}`, tok, map[string]string{"om_bob": "org_acme", "om_ben": "org_x"}[member])); len(got["permissions"].([]any)) == 0 {
		t.Errorf("the minted token has no permissions on its organization: %v", got)
	}
	if err := run(ctx, []string{"token", "mint", "--server", server, "--api-key", key, "--membership", "om_nobody"}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "not in the data") {
		t.Errorf("mint for an unknown membership: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestServeConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"dev with a production JWKS", []string{"--dev", "--jwks-url", "https://x/jwks"}, "--dev"},
		{"JWKS without issuer", []string{"--jwks-file", "x.json"}, "--issuer"},
		{"both JWKS sources", []string{"--jwks-file", "x", "--jwks-url", "y", "--issuer", "i"}, "not both"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"negative decision cache", []string{"--decision-cache-size", "-1"}, "--decision-cache-size"},
		{"profiles on a public address", []string{"--pprof-addr", "0.0.0.0:6060"}, "loopback"},
		{"profiles without a port", []string{"--pprof-addr", "127.0.0.1"}, "--pprof-addr"},
		{"fully consistent on a data file", []string{"--fully-consistent"}, "--database-url"},
		{"head database without full consistency", []string{"--database-url", "postgres://x", "--head-database-url", "postgres://y"}, "--fully-consistent"},
		{"short API key", []string{"--api-key", "0123456789abcdef", "--api-key", "short"}, "API key #2 has 5 characters: use at least 16"},
		{"missing API key file", []string{"--api-key-file", "/nonexistent/keys"}, "--api-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServe(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("API key file", func(t *testing.T) {
		file := writeFile(t, t.TempDir(), "keys", []byte("# rotated 2026-12\nfile-key-0123456789abcdef\n\n  second-key-0123456789  \n"))
		c := testConfig(t, "--api-key", "flag-key-0123456789abcdef", "--api-key-file", file)
		if diff := cmp.Diff([]string(c.APIKeys), []string{"flag-key-0123456789abcdef", "file-key-0123456789abcdef", "second-key-0123456789"}); diff != "" {
			t.Errorf("keys (-got +want):\n%s", diff)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("TRELLIS_API_KEYS", "a-0123456789abcdef, b-0123456789abcdef")
		t.Setenv("TRELLIS_ADDR", "127.0.0.1:9999")
		c := testConfig(t, "--api-key", "c-0123456789abcdef")
		if diff := cmp.Diff([]string(c.APIKeys), []string{"c-0123456789abcdef"}); diff != "" {
			t.Errorf("flag wins over the environment (-got +want):\n%s", diff)
		}
		c = testConfig(t)
		if diff := cmp.Diff([]string(c.APIKeys), []string{"a-0123456789abcdef", "b-0123456789abcdef"}); diff != "" || c.Addr != "127.0.0.1:9999" {
			t.Errorf("from the environment: keys %v addr %s", c.APIKeys, c.Addr)
		}
	})
}

func contains(xs []any, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// devToken describes a token --dev mints for a demo membership. The claims
// mirror what AuthKit puts in a session token for that membership's
// organization role, plus the organization_membership_id template claim.
type devToken struct {
	Membership, Organization, User, Role string
	Permissions                          []string
}

// The demo's org-member role grants org:view and workspace:view.
var (
	bobToken   = devToken{"om_bob", "org_acme", "user_bob", "org-member", []string{"org:view", "workspace:view"}}
	carolToken = devToken{"om_carol", "org_acme", "user_carol", "org-member", []string{"org:view", "workspace:view"}}
)

func (d devToken) mint(s *token.Signer, ttl time.Duration) (string, error) {
	now := time.Now()
	return s.Sign(map[string]any{
		"iss":                        devIssuer,
		"sub":                        d.User,
		"sid":                        "session_dev_" + d.User,
		"org_id":                     d.Organization,
		"role":                       d.Role,
		"roles":                      []string{d.Role},
		"permissions":                d.Permissions,
		"organization_membership_id": d.Membership,
		"iat":                        now.Unix(),
		"exp":                        now.Add(ttl).Unix(),
	})
}

// TestServeBusyPortFailsFast: the address is bound before the data loads,
// so a busy one fails at once, naming it.
func TestServeBusyPortFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	err = run(context.Background(), []string{"serve", "--addr", ln.Addr().String(), "--data", "../../internal/datafile/demo.yaml"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("serve on a busy address: %v", err)
	}
	t.Logf("failed in %v", time.Since(start)) // bound before loading; not asserted (timing)
}

// TestLoadingAnswersNotReady: while the data loads the server is live and
// answers every other route 503 not_ready, never a deny.
func TestLoadingAnswersNotReady(t *testing.T) {
	srv := httptest.NewServer(loading)
	defer srv.Close()
	for path, want := range map[string]int{"/health": http.StatusOK, "/ready": http.StatusServiceUnavailable, "/v1/check": http.StatusServiceUnavailable} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "") {
			t.Errorf("%s: %d (Retry-After %q), want %d", path, resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
}

// TestDataFileNotKept checks that only --dev keeps a data file's parsed
// dataset (it mints tokens from it): kept otherwise, its strings are heap
// every GC cycle marks, 530 MB at tier M.
func TestDataFileNotKept(t *testing.T) {
	mine := filepath.Join("..", "..", "internal", "devmode", "testdata", "mine.yaml")
	for _, dev := range []bool{false, true} {
		args := []string{"--data", mine}
		if dev {
			args = append(args, "--dev")
		}
		svc, err := newService(context.Background(), testConfig(t, args...), slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		svc.cleanup()
		if kept := svc.data != nil; kept != dev {
			t.Errorf("serve %v: dataset kept %v, want %v", args, kept, dev)
		}
	}
}
