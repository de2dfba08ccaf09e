// Package token verifies AuthKit-style session JWTs (compact JWS, RS256 or
// ES256) against an issuer's JSON Web Key Set and extracts the claims that
// authorization needs. It also provides Signer, an ephemeral-key token
// issuer for development and tests.
//
// Verification uses jwx v2 for key parsing (jwk) and for the signature
// primitives (jws.NewVerifier), but frames the token and checks the claims
// itself, because jwt.Parse is more lenient than an authorization service
// should be: it accepts the JWS JSON serialization, non-canonical base64
// and unencoded (b64=false) payloads, reads exp from strings and RFC 3339
// dates, skips the expiry check when exp is 0, and its strictness knobs are
// process-wide settings. Owning the key selection also lets Verify tell an
// unknown kid from a bad signature from a disallowed algorithm.
package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// maxTokenBytes bounds the work done on untrusted input before anything is
// parsed. AuthKit templates are limited to 3072 bytes, so real tokens are a
// fraction of this.
const maxTokenBytes = 16 << 10

// Verifier verifies session tokens. It is safe for concurrent use by
// multiple goroutines. It starts no goroutines and holds no resources that
// need closing; the key set is refreshed inline by the Verify call that
// needs it.
type Verifier struct {
	issuers         []string
	audience        string
	algorithms      []string
	skew            time.Duration
	membershipClaim string
	now             func() time.Time
	keys            *keySource
	cache           *claimsCache // nil when disabled
}

// New validates cfg, loads the key set once and returns a Verifier. An
// invalid cfg yields an error that names the field to fix; a key set that
// cannot be fetched, read or parsed, or that holds no usable key, yields an
// error too, so a wrong JWKSURL or JWKSFile is caught at start-up. ctx
// bounds that initial load only; it is not retained.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		issuers:         cfg.Issuers,
		audience:        cfg.Audience,
		algorithms:      cfg.Algorithms,
		skew:            cfg.Skew,
		membershipClaim: cfg.MembershipClaim,
		now:             cfg.Now,
		keys:            newKeySource(cfg),
	}
	if cfg.CacheSize > 0 {
		v.cache = newClaimsCache(cfg.CacheSize)
	}
	if err := v.keys.init(ctx); err != nil {
		return nil, fmt.Errorf("token: load signing keys from %s: %w", v.keys.name, err)
	}
	return v, nil
}

// Verify checks raw, a compact JWS such as an AuthKit access token
// (without any "Bearer " prefix), and returns its claims.
//
// Every failure is reported as a *Error whose Code says why; Verify never
// panics on any input. In order, it rejects: malformed framing; an alg
// outside Config.Algorithms (so none and HS*, including HS256 keyed with the
// public key, are refused before any key is touched); a kid that matches
// no key after one rate-limited refresh; a key whose type or own alg does
// not fit the header alg; a bad signature; and then claims that are
// mistyped, expired, not yet valid, from another issuer or for another
// audience. jku, x5u and jwk headers are ignored: keys come only from the
// configured source.
//
// Successful results are cached by the token's SHA-256 until its exp;
// failures are not cached. ctx bounds a key set fetch, if this call
// triggers one.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	c, err := v.verify(ctx, raw)
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

// verify returns *Error rather than error so that Verify can never return
// a non-nil error interface holding a nil pointer.
func (v *Verifier) verify(ctx context.Context, raw string) (Claims, *Error) {
	if raw == "" {
		return Claims{}, newError(CodeMalformed, "token is empty")
	}
	if len(raw) > maxTokenBytes {
		return Claims{}, newError(CodeMalformed, fmt.Sprintf("token is longer than %d bytes", maxTokenBytes))
	}
	now := v.now()
	snap := v.keys.current(ctx)

	var sum [32]byte
	if v.cache != nil {
		sum = digest(raw)
		if c, ok := v.cache.get(sum, now, snap.gen); ok {
			return c.clone(), nil
		}
	}

	body, gen, e := v.checkSignature(ctx, raw, snap)
	if e != nil {
		return Claims{}, e
	}
	c, e := v.claims(body, now)
	if e != nil {
		return Claims{}, e
	}
	if v.cache != nil {
		v.cache.put(sum, c, c.Expiry, gen, now)
	}
	return c.clone(), nil
}

// tokenBufs are buffers digest copies a token into: hashing needs bytes,
// and a fresh copy per check would be a ~1 KB allocation on the path of
// every cached verification.
var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// digest is the SHA-256 of raw, the key of the verified-token cache.
func digest(raw string) [32]byte {
	bp := tokenBufs.Get().(*[]byte)
	*bp = append((*bp)[:0], raw...)
	sum := sha256.Sum256(*bp)
	tokenBufs.Put(bp)
	return sum
}

// header holds the JOSE header fields Verify acts on.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// checkSignature frames raw, selects the key and verifies the signature.
// It returns the decoded payload and the generation of the key set whose
// key verified it.
func (v *Verifier) checkSignature(ctx context.Context, raw string, snap *keySnapshot) ([]byte, uint64, *Error) {
	h64, p64, s64, ok := split(raw)
	if !ok {
		return nil, 0, newError(CodeMalformed, "token is not a compact JWS (three base64url segments separated by dots)")
	}
	hb, err := decodeSegment(h64)
	if err != nil {
		return nil, 0, newError(CodeMalformed, "token header is not valid base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil || !bytes.HasPrefix(bytes.TrimSpace(hb), []byte("{")) {
		return nil, 0, newError(CodeMalformed, "token header is not a JSON object with string alg and kid")
	}
	if !slices.Contains(v.algorithms, h.Alg) {
		return nil, 0, newError(CodeAlgorithm, fmt.Sprintf("algorithm %q is not allowed", truncate(h.Alg)))
	}
	if h.Crit != nil || h.B64 != nil {
		return nil, 0, newError(CodeMalformed, "token header uses crit or b64, which are not supported")
	}
	body, err := decodeSegment(p64)
	if err != nil {
		return nil, 0, newError(CodeMalformed, "token payload is not valid base64url")
	}
	sig, err := decodeSegment(s64)
	if err != nil || len(sig) == 0 {
		return nil, 0, newError(CodeMalformed, "token signature is missing or not valid base64url")
	}

	key, snap, e := v.keys.lookup(ctx, snap, h.Kid)
	if e != nil {
		return nil, 0, e
	}
	if key.alg != "" && key.alg != h.Alg {
		return nil, 0, newError(CodeAlgorithm, fmt.Sprintf("key %q is for %s, not %s", truncate(key.kid), key.alg, h.Alg))
	}
	switch key.pub.(type) {
	case *rsa.PublicKey:
		if h.Alg != RS256 {
			return nil, 0, newError(CodeAlgorithm, fmt.Sprintf("key %q is an RSA key and cannot verify %s", truncate(key.kid), h.Alg))
		}
	case *ecdsa.PublicKey:
		if h.Alg != ES256 {
			return nil, 0, newError(CodeAlgorithm, fmt.Sprintf("key %q is an EC key and cannot verify %s", truncate(key.kid), h.Alg))
		}
	}

	verifier, err := jws.NewVerifier(jwa.SignatureAlgorithm(h.Alg))
	if err != nil {
		// Unreachable: RS256 and ES256 are always registered.
		return nil, 0, &Error{Code: CodeAlgorithm, Message: fmt.Sprintf("algorithm %q is not available", h.Alg), cause: err}
	}
	// The signing input is the token's own first two segments, as RFC 7515
	// defines it (jws.Verify would re-encode the decoded header instead).
	if err := verifier.Verify([]byte(raw[:len(h64)+1+len(p64)]), sig, key.pub); err != nil {
		return nil, 0, newError(CodeBadSignature, "token signature is invalid")
	}
	return body, snap.gen, nil
}

// split returns the three segments of a compact JWS, requiring that the
// whole string uses only the base64url alphabet and exactly two dots. The
// base64 decoder would otherwise skip CR and LF.
func split(raw string) (h, p, s string, ok bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", "", "", false
		}
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h == "" || p == "" || strings.Contains(s, ".") {
		return "", "", "", false
	}
	return h, p, s, true
}

// decodeSegment decodes unpadded base64url, rejecting non-canonical
// encodings.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// truncate keeps attacker-controlled text in messages short.
func truncate(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}
