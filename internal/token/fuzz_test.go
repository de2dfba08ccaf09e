package token_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/token"
)

var allCodes = []string{
	token.CodeMalformed, token.CodeExpired, token.CodeNotYetValid, token.CodeBadSignature,
	token.CodeUnknownKey, token.CodeAlgorithm, token.CodeIssuer, token.CodeAudience,
	token.CodeClaims, token.CodeKeysUnavailable,
}

// FuzzVerify checks that Verify never panics and returns either a
// documented *token.Error or claims that passed every check.
func FuzzVerify(f *testing.F) {
	e := testEnv(f)
	cfg := baseConfig(f, e)
	cfg.Algorithms = []string{token.RS256, token.ES256}
	v := newVerifier(f, cfg)

	valid := sign(f, e.rs, validClaims(nil))
	f.Add(valid)
	f.Add(sign(f, e.es, validClaims(nil)))
	f.Add(valid[:len(valid)-4])
	f.Add("garbage")
	f.Add("a.b.c")
	f.Add("")
	f.Add(b64(`{"alg":"none"}`) + "." + b64(mustJSON(f, validClaims(nil))) + ".")
	f.Add(hmacToken(`{"alg":"HS256","kid":"rs1"}`, mustJSON(f, validClaims(nil)), e.rs.JWKS()))
	f.Add(e.raw.sign(f, `{"alg":"RS256","kid":"raw1"}`, `{"exp":1e400}`))
	f.Add(e.raw.sign(f, `{"alg":"RS256","kid":"raw1"}`, `{"exp":"1","permissions":[null]}`))

	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(context.Background(), raw)
		if err != nil {
			var te *token.Error
			if !errors.As(err, &te) {
				t.Fatalf("Verify returned %T %v, want *token.Error", err, err)
			}
			if !slices.Contains(allCodes, te.Code) {
				t.Fatalf("Verify returned undocumented code %q", te.Code)
			}
			return
		}
		if !t0.Before(got.Expiry.Add(token.DefaultSkew)) {
			t.Fatalf("Verify accepted a token expired at %v", got.Expiry)
		}
		if got.Expiry.IsZero() || got.Expiry.Location() != time.UTC {
			t.Fatalf("Verify returned Expiry %v, want a UTC time", got.Expiry)
		}
	})
}
