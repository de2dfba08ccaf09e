package token_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/trellis-authz/trellis/internal/token"
)

const issuer = "https://api.workos.com"

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a settable, race-safe time source for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Signers are expensive (RSA key generation), so tests share a few.
var (
	signersMu sync.Mutex
	signers   = map[string]*token.Signer{}
)

// signer returns a shared Signer for (name, alg, kid); different names
// give different keys even with the same kid.
func signer(tb testing.TB, name, alg, kid string) *token.Signer {
	tb.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	id := name + "|" + alg + "|" + kid
	if s, ok := signers[id]; ok {
		return s
	}
	s, err := token.NewSigner(alg, kid)
	if err != nil {
		tb.Fatalf("NewSigner(%q, %q): %v", alg, kid, err)
	}
	signers[id] = s
	return s
}

// sign signs claims with s, failing the test on error.
func sign(tb testing.TB, s *token.Signer, claims map[string]any) string {
	tb.Helper()
	raw, err := s.Sign(claims)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return raw
}

// validClaims returns a complete AuthKit-style claim set issued at t0 and
// expiring five minutes later, with overrides applied; an override whose
// value is deleteClaim removes the claim.
func validClaims(overrides map[string]any) map[string]any {
	c := map[string]any{
		"iss":                        issuer,
		"sub":                        "user_01",
		"sid":                        "session_01",
		"jti":                        "01HZX",
		"org_id":                     "org_01",
		"role":                       "admin",
		"roles":                      []string{"admin", "member"},
		"permissions":                []string{"posts:read", "posts:write"},
		"organization_membership_id": "om_01",
		"iat":                        t0.Unix(),
		"exp":                        t0.Add(5 * time.Minute).Unix(),
	}
	for k, v := range overrides {
		if v == deleteClaim {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

type deleteMarker struct{}

var deleteClaim = deleteMarker{}

// wantClaims is what Verify returns for validClaims(nil).
func wantClaims() token.Claims {
	return token.Claims{
		Subject:        "user_01",
		OrganizationID: "org_01",
		Role:           "admin",
		MembershipID:   "om_01",
		SessionID:      "session_01",
		Roles:          []string{"admin", "member"},
		Permissions:    []string{"posts:read", "posts:write"},
		Expiry:         t0.Add(5 * time.Minute),
	}
}

// rawSigner signs arbitrary header and payload bytes with an RS256 key,
// for tokens Signer cannot produce (odd headers, non-object payloads).
type rawSigner struct {
	kid  string
	key  *rsa.PrivateKey
	jwks []byte
}

func newRawSigner(tb testing.TB, kid string) *rawSigner {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := jwk.FromRaw(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
		tb.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		tb.Fatal(err)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawSigner{kid: kid, key: key, jwks: doc}
}

// sign returns b64(header).b64(payload).b64(RS256 signature).
func (r *rawSigner) sign(tb testing.TB, header, payload string) string {
	tb.Helper()
	input := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, r.key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// mergeJWKS concatenates the keys of several JWKS documents.
func mergeJWKS(tb testing.TB, docs ...[]byte) []byte {
	tb.Helper()
	var out struct {
		Keys []map[string]any `json:"keys"`
	}
	for _, d := range docs {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(d, &set); err != nil {
			tb.Fatalf("parse jwks: %v", err)
		}
		out.Keys = append(out.Keys, set.Keys...)
	}
	return []byte(mustJSON(tb, out))
}

// editJWKS applies edit to every key of doc.
func editJWKS(tb testing.TB, doc []byte, edit func(key map[string]any)) []byte {
	tb.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		tb.Fatalf("parse jwks: %v", err)
	}
	for _, k := range set.Keys {
		edit(k)
	}
	return []byte(mustJSON(tb, set))
}

// writeJWKS writes doc to a fresh file and returns its path.
func writeJWKS(tb testing.TB, doc []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// newVerifier calls token.New, failing the test on error.
func newVerifier(tb testing.TB, cfg token.Config) *token.Verifier {
	tb.Helper()
	v, err := token.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

// errorCode returns the Code of err, "" for nil, and fails the test if err
// is not a *token.Error.
func errorCode(tb testing.TB, err error) string {
	tb.Helper()
	if err == nil {
		return ""
	}
	var te *token.Error
	if !errors.As(err, &te) {
		tb.Fatalf("error %v (%T) is not a *token.Error", err, err)
	}
	return te.Code
}

// jwksServer serves a swappable JWKS document and counts requests.
type jwksServer struct {
	*httptest.Server
	doc    atomic.Pointer[[]byte]
	status atomic.Int64
	hits   atomic.Int64
}

func newJWKSServer(tb testing.TB, doc []byte) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.Serve(doc)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if code := s.status.Load(); code != 0 {
			http.Error(w, "unavailable", int(code))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.doc.Load()) // a failed write shows up as a client error in the test
	}))
	tb.Cleanup(s.Close)
	return s
}

// Serve replaces the served document and clears any failure status.
func (s *jwksServer) Serve(doc []byte) {
	s.doc.Store(&doc)
	s.status.Store(0)
}

// Fail makes the server answer every request with status.
func (s *jwksServer) Fail(status int) { s.status.Store(int64(status)) }
