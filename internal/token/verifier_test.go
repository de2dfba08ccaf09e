package token_test

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/trellis-authz/trellis/internal/token"
)

// env holds the keys shared by the table tests.
type env struct {
	rs      *token.Signer // RS256, kid rs1
	es      *token.Signer // ES256, kid es1
	other   *token.Signer // RS256, a different key that also claims kid rs1
	unknown *token.Signer // RS256, kid not in the key set
	noKid   *token.Signer // RS256 without kid
	raw     *rawSigner    // RS256, kid raw1, signs arbitrary bytes
	jwks    []byte        // rs + es + raw
}

var (
	envOnce sync.Once
	sharedE *env
)

func testEnv(tb testing.TB) *env {
	tb.Helper()
	envOnce.Do(func() {
		e := &env{
			rs:      signer(tb, "main", token.RS256, "rs1"),
			es:      signer(tb, "main", token.ES256, "es1"),
			other:   signer(tb, "other", token.RS256, "rs1"),
			unknown: signer(tb, "main", token.RS256, "nope"),
			noKid:   signer(tb, "main", token.RS256, ""),
			raw:     newRawSigner(tb, "raw1"),
		}
		e.jwks = mergeJWKS(tb, e.rs.JWKS(), e.es.JWKS(), e.raw.jwks)
		sharedE = e
	})
	if sharedE == nil {
		tb.Fatal("test keys could not be generated")
	}
	return sharedE
}

// baseConfig verifies against e.jwks at t0.
func baseConfig(tb testing.TB, e *env) token.Config {
	tb.Helper()
	return token.Config{
		JWKSFile: writeJWKS(tb, e.jwks),
		Issuer:   issuer,
		Now:      func() time.Time { return t0 },
	}
}

// hmacToken builds an HS256 token keyed with secret.
func hmacToken(header, payload string, secret []byte) string {
	input := b64(header) + "." + b64(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// publicKeyPEM returns the PEM of the RSA public key in a Signer's JWKS: the
// secret an algorithm-confusion attacker would try.
func publicKeyPEM(tb testing.TB, s *token.Signer) []byte {
	tb.Helper()
	set, err := jwk.Parse(s.JWKS())
	if err != nil {
		tb.Fatal(err)
	}
	k, _ := set.Key(0)
	var pub rsa.PublicKey
	if err := k.Raw(&pub); err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	e := testEnv(t)
	allowBoth := func(_ testing.TB, _ *env, c *token.Config) { c.Algorithms = []string{token.RS256, token.ES256} }
	withJWKS := func(doc func(testing.TB, *env) []byte) func(testing.TB, *env, *token.Config) {
		return func(tb testing.TB, e *env, c *token.Config) {
			c.JWKSFile = writeJWKS(tb, doc(tb, e))
			c.Algorithms = []string{token.RS256, token.ES256}
		}
	}
	rsWith := func(overrides map[string]any) func(testing.TB, *env) string {
		return func(tb testing.TB, e *env) string { return sign(tb, e.rs, validClaims(overrides)) }
	}
	rawPayload := func(payload string) func(testing.TB, *env) string {
		return func(tb testing.TB, e *env) string {
			return e.raw.sign(tb, `{"alg":"RS256","kid":"raw1"}`, payload)
		}
	}
	rawHeader := func(header string) func(testing.TB, *env) string {
		return func(tb testing.TB, e *env) string {
			return e.raw.sign(tb, header, mustJSON(tb, validClaims(nil)))
		}
	}
	literal := func(s string) func(testing.TB, *env) string {
		return func(testing.TB, *env) string { return s }
	}
	valid := rsWith(nil)
	withPerms := func(c token.Claims, perms []string) token.Claims { c.Permissions = perms; return c }

	tests := []struct {
		name     string
		cfg      func(testing.TB, *env, *token.Config) // optional
		token    func(testing.TB, *env) string
		wantCode string
		want     token.Claims // when wantCode == ""
	}{
		// Valid tokens.
		{name: "valid RS256", token: valid, want: wantClaims()},
		{name: "valid ES256 when allowed", cfg: allowBoth, want: wantClaims(),
			token: func(tb testing.TB, e *env) string { return sign(tb, e.es, validClaims(nil)) }},
		{name: "minimal claims", want: token.Claims{Expiry: t0.Add(time.Minute)},
			token: rsWith(map[string]any{"sub": deleteClaim, "sid": deleteClaim, "org_id": deleteClaim, "role": deleteClaim,
				"roles": deleteClaim, "permissions": deleteClaim, "organization_membership_id": deleteClaim,
				"iat": deleteClaim, "jti": deleteClaim, "exp": t0.Add(time.Minute).Unix()})},
		{name: "empty permissions are nil", token: rsWith(map[string]any{"permissions": []string{}}), want: withPerms(wantClaims(), nil)},
		{name: "fractional exp", token: rsWith(map[string]any{"exp": float64(t0.Unix()) + 60.5}),
			want: func() token.Claims {
				c := wantClaims()
				c.Expiry = t0.Add(60*time.Second + 500*time.Millisecond)
				return c
			}()},
		{name: "custom membership claim",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.MembershipClaim = "om" },
			token: rsWith(map[string]any{"om": "om_custom"}),
			want:  func() token.Claims { c := wantClaims(); c.MembershipID = "om_custom"; return c }()},
		{name: "unknown extra claims are ignored", token: rsWith(map[string]any{"act": map[string]any{"sub": "x"}, "email": "a@b.c"}), want: wantClaims()},
		{name: "feature flags and entitlements are kept", token: rsWith(map[string]any{"entitlements": []string{"audit-logs"}, "feature_flags": []string{"beta"}}),
			want: func() token.Claims {
				c := wantClaims()
				c.Entitlements, c.FeatureFlags = []string{"audit-logs"}, []string{"beta"}
				return c
			}()},
		{name: "feature_flags of the wrong type", token: rsWith(map[string]any{"feature_flags": "beta"}), wantCode: token.CodeClaims},
		{name: "single-key set accepts token without kid",
			cfg:   func(tb testing.TB, e *env, c *token.Config) { c.JWKSFile = writeJWKS(tb, e.noKid.JWKS()) },
			token: func(tb testing.TB, e *env) string { return sign(tb, e.noKid, validClaims(nil)) }, want: wantClaims()},
		{name: "key without alg verifies",
			cfg: withJWKS(func(tb testing.TB, e *env) []byte {
				return editJWKS(tb, e.rs.JWKS(), func(k map[string]any) { delete(k, "alg") })
			}),
			token: valid, want: wantClaims()},

		// Time.
		{name: "expired", token: rsWith(map[string]any{"exp": t0.Add(-31 * time.Second).Unix()}), wantCode: token.CodeExpired},
		{name: "expired exactly at exp+skew", token: rsWith(map[string]any{"exp": t0.Add(-30 * time.Second).Unix()}), wantCode: token.CodeExpired},
		{name: "expired within default skew", token: rsWith(map[string]any{"exp": t0.Add(-29 * time.Second).Unix()}),
			want: func() token.Claims { c := wantClaims(); c.Expiry = t0.Add(-29 * time.Second); return c }()},
		{name: "expired beyond custom skew",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Skew = 5 * time.Second },
			token: rsWith(map[string]any{"exp": t0.Add(-6 * time.Second).Unix()}), wantCode: token.CodeExpired},
		{name: "nbf in the future", token: rsWith(map[string]any{"nbf": t0.Add(31 * time.Second).Unix()}), wantCode: token.CodeNotYetValid},
		{name: "nbf within skew", token: rsWith(map[string]any{"nbf": t0.Add(29 * time.Second).Unix()}), want: wantClaims()},
		{name: "iat in the future", token: rsWith(map[string]any{"iat": t0.Add(time.Minute).Unix()}), wantCode: token.CodeNotYetValid},

		// Issuer and audience.
		{name: "wrong issuer", token: rsWith(map[string]any{"iss": "https://evil.example"}), wantCode: token.CodeIssuer},
		{name: "issuer with trailing slash is another issuer", token: rsWith(map[string]any{"iss": issuer + "/"}), wantCode: token.CodeIssuer},
		{name: "missing issuer", token: rsWith(map[string]any{"iss": deleteClaim}), wantCode: token.CodeIssuer},
		{name: "a second configured issuer", token: rsWith(map[string]any{"iss": "https://api.workos.com/user_management/client_01"}), want: wantClaims(),
			cfg: func(_ testing.TB, _ *env, c *token.Config) {
				c.Issuers = []string{"https://auth.example.com", "https://api.workos.com/user_management/client_01"}
			}},
		{name: "an issuer not in the list", token: rsWith(map[string]any{"iss": "https://auth.example.com/"}), wantCode: token.CodeIssuer,
			cfg: func(_ testing.TB, _ *env, c *token.Config) { c.Issuers = []string{"https://auth.example.com"} }},
		{name: "audience match string",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Audience = "client_01" },
			token: rsWith(map[string]any{"aud": "client_01"}), want: wantClaims()},
		{name: "audience match in array",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Audience = "client_01" },
			token: rsWith(map[string]any{"aud": []string{"other", "client_01"}}), want: wantClaims()},
		{name: "audience mismatch",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Audience = "client_01" },
			token: rsWith(map[string]any{"aud": []string{"client_02"}}), wantCode: token.CodeAudience},
		{name: "audience missing",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Audience = "client_01" },
			token: valid, wantCode: token.CodeAudience},
		{name: "audience not configured ignores aud", token: rsWith(map[string]any{"aud": "anything"}), want: wantClaims()},

		// Signatures and keys.
		{name: "signed by another key with the same kid", token: func(tb testing.TB, e *env) string { return sign(tb, e.other, validClaims(nil)) },
			wantCode: token.CodeBadSignature},
		{name: "payload swapped after signing", wantCode: token.CodeBadSignature,
			token: func(tb testing.TB, e *env) string {
				good := strings.Split(sign(tb, e.rs, validClaims(nil)), ".")
				evil := strings.Split(sign(tb, e.rs, validClaims(map[string]any{"role": "owner"})), ".")
				return good[0] + "." + evil[1] + "." + good[2]
			}},
		{name: "unknown kid", token: func(tb testing.TB, e *env) string { return sign(tb, e.unknown, validClaims(nil)) },
			wantCode: token.CodeUnknownKey},
		{name: "no kid with several keys", token: func(tb testing.TB, e *env) string { return sign(tb, e.noKid, validClaims(nil)) },
			wantCode: token.CodeUnknownKey},
		{name: "key with use enc is not used",
			cfg: withJWKS(func(tb testing.TB, e *env) []byte {
				return mergeJWKS(tb, editJWKS(tb, e.rs.JWKS(), func(k map[string]any) { k["use"] = "enc" }), e.es.JWKS())
			}),
			token: valid, wantCode: token.CodeUnknownKey},

		// Algorithms.
		{name: "alg none without signature", wantCode: token.CodeAlgorithm,
			token: func(tb testing.TB, e *env) string {
				return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(mustJSON(tb, validClaims(nil))) + "."
			}},
		{name: "alg none with kid and signature", wantCode: token.CodeAlgorithm,
			token: func(tb testing.TB, e *env) string {
				good := strings.Split(sign(tb, e.rs, validClaims(nil)), ".")
				return b64(`{"alg":"none","kid":"rs1"}`) + "." + good[1] + "." + good[2]
			}},
		{name: "alg None spelled differently", wantCode: token.CodeAlgorithm,
			token: rawHeader(`{"alg":"None","kid":"raw1"}`)},
		{name: "missing alg", wantCode: token.CodeAlgorithm, token: rawHeader(`{"kid":"raw1"}`)},
		{name: "HS256 keyed with the RSA public key PEM", wantCode: token.CodeAlgorithm,
			token: func(tb testing.TB, e *env) string {
				return hmacToken(`{"alg":"HS256","typ":"JWT","kid":"rs1"}`, mustJSON(tb, validClaims(nil)), publicKeyPEM(tb, e.rs))
			}},
		{name: "HS256 keyed with the JWKS bytes", wantCode: token.CodeAlgorithm,
			token: func(tb testing.TB, e *env) string {
				return hmacToken(`{"alg":"HS256","kid":"rs1"}`, mustJSON(tb, validClaims(nil)), e.rs.JWKS())
			}},
		{name: "ES256 token when only RS256 allowed", token: func(tb testing.TB, e *env) string { return sign(tb, e.es, validClaims(nil)) },
			wantCode: token.CodeAlgorithm},
		{name: "RS384 is never allowed", wantCode: token.CodeAlgorithm, token: rawHeader(`{"alg":"RS384","kid":"raw1"}`)},
		{name: "key alg differs from header alg", wantCode: token.CodeAlgorithm,
			cfg: withJWKS(func(tb testing.TB, e *env) []byte {
				return editJWKS(tb, e.es.JWKS(), func(k map[string]any) { k["alg"] = "RS256" })
			}),
			token: func(tb testing.TB, e *env) string { return sign(tb, e.es, validClaims(nil)) }},
		{name: "RS256 header naming an EC key", wantCode: token.CodeAlgorithm,
			cfg: withJWKS(func(tb testing.TB, e *env) []byte {
				return editJWKS(tb, e.es.JWKS(), func(k map[string]any) { delete(k, "alg") })
			}),
			token: rawHeader(`{"alg":"RS256","kid":"es1"}`)},

		// Malformed input.
		{name: "empty", token: literal(""), wantCode: token.CodeMalformed},
		{name: "one segment", token: literal("abc"), wantCode: token.CodeMalformed},
		{name: "two segments", token: literal("abc.def"), wantCode: token.CodeMalformed},
		{name: "a.b.c", token: literal("a.b.c"), wantCode: token.CodeMalformed},
		{name: "four segments", token: func(tb testing.TB, e *env) string { return valid(tb, e) + ".x" }, wantCode: token.CodeMalformed},
		{name: "dots only", token: literal(".."), wantCode: token.CodeMalformed},
		{name: "bearer prefix", token: func(tb testing.TB, e *env) string { return "Bearer " + valid(tb, e) }, wantCode: token.CodeMalformed},
		{name: "trailing newline", token: func(tb testing.TB, e *env) string { return valid(tb, e) + "\n" }, wantCode: token.CodeMalformed},
		{name: "newline inside a segment", wantCode: token.CodeMalformed,
			token: func(tb testing.TB, e *env) string { v := valid(tb, e); return v[:10] + "\r\n" + v[10:] }},
		{name: "padded base64", wantCode: token.CodeMalformed,
			token: func(tb testing.TB, e *env) string {
				p := strings.Split(valid(tb, e), ".")
				h := `{"alg":"RS256","kid":"rs1"} ` // 28 bytes, so the encoding ends in "="
				return base64.URLEncoding.EncodeToString([]byte(h)) + "." + p[1] + "." + p[2]
			}},
		{name: "non-canonical signature encoding", wantCode: token.CodeMalformed,
			token: func(tb testing.TB, e *env) string {
				v := valid(tb, e)
				last := v[len(v)-1]
				// 256-byte signatures end in a character carrying 2 data bits
				// and 4 zero bits; set one of the zero bits.
				idx := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
				return v[:len(v)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx|1])
			}},
		{name: "JWS JSON serialization", token: literal(`{"payload":"e30","signatures":[]}`), wantCode: token.CodeMalformed},
		{name: "header is not JSON", token: literal(b64("not json") + "." + b64("{}") + ".c2ln"), wantCode: token.CodeMalformed},
		{name: "header is a JSON array", token: literal(b64(`["RS256"]`) + "." + b64("{}") + ".c2ln"), wantCode: token.CodeMalformed},
		{name: "header is JSON null", token: literal(b64(`null`) + "." + b64("{}") + ".c2ln"), wantCode: token.CodeMalformed},
		{name: "alg is not a string", token: literal(b64(`{"alg":256}`) + "." + b64("{}") + ".c2ln"), wantCode: token.CodeMalformed},
		{name: "kid is not a string", token: literal(b64(`{"alg":"RS256","kid":1}`) + "." + b64("{}") + ".c2ln"), wantCode: token.CodeMalformed},
		{name: "missing signature", wantCode: token.CodeMalformed,
			token: func(tb testing.TB, e *env) string {
				p := strings.Split(valid(tb, e), ".")
				return p[0] + "." + p[1] + "."
			}},
		{name: "too long", token: literal(strings.Repeat("a", 16<<10) + ".b.c"), wantCode: token.CodeMalformed},
		{name: "crit header", token: rawHeader(`{"alg":"RS256","kid":"raw1","crit":["exp"],"exp":1}`), wantCode: token.CodeMalformed},
		{name: "unencoded payload header", token: rawHeader(`{"alg":"RS256","kid":"raw1","b64":false,"crit":["b64"]}`), wantCode: token.CodeMalformed},
		{name: "signed payload is a JSON array", token: rawPayload(`[]`), wantCode: token.CodeMalformed},
		{name: "signed payload is JSON null", token: rawPayload(`null`), wantCode: token.CodeMalformed},
		{name: "signed payload is not JSON", token: rawPayload(`exp=1`), wantCode: token.CodeMalformed},

		// Claim types.
		{name: "missing exp", token: rsWith(map[string]any{"exp": deleteClaim}), wantCode: token.CodeClaims},
		{name: "exp zero", token: rsWith(map[string]any{"exp": 0}), wantCode: token.CodeClaims},
		{name: "exp negative", token: rsWith(map[string]any{"exp": -5}), wantCode: token.CodeClaims},
		{name: "exp absurdly large", token: rsWith(map[string]any{"exp": 1e20}), wantCode: token.CodeClaims},
		{name: "exp as numeric string", token: rsWith(map[string]any{"exp": "4102444800"}), wantCode: token.CodeClaims},
		{name: "exp as RFC 3339 string", token: rsWith(map[string]any{"exp": "2100-01-01T00:00:00Z"}), wantCode: token.CodeClaims},
		{name: "exp null", token: rsWith(map[string]any{"exp": nil}), wantCode: token.CodeClaims},
		{name: "nbf as string", token: rsWith(map[string]any{"nbf": "soon"}), wantCode: token.CodeClaims},
		{name: "iat as bool", token: rsWith(map[string]any{"iat": true}), wantCode: token.CodeClaims},
		{name: "iss as number", token: rsWith(map[string]any{"iss": 1}), wantCode: token.CodeClaims},
		{name: "permissions as string", token: rsWith(map[string]any{"permissions": "posts:read"}), wantCode: token.CodeClaims},
		{name: "permissions with a number", token: rsWith(map[string]any{"permissions": []any{"posts:read", 1}}), wantCode: token.CodeClaims},
		{name: "permissions with null", token: rsWith(map[string]any{"permissions": []any{"posts:read", nil}}), wantCode: token.CodeClaims},
		{name: "permissions null", token: rsWith(map[string]any{"permissions": nil}), wantCode: token.CodeClaims},
		{name: "roles as object", token: rsWith(map[string]any{"roles": map[string]any{"admin": true}}), wantCode: token.CodeClaims},
		{name: "sub as number", token: rsWith(map[string]any{"sub": 42}), wantCode: token.CodeClaims},
		{name: "org_id null", token: rsWith(map[string]any{"org_id": nil}), wantCode: token.CodeClaims},
		{name: "role as array", token: rsWith(map[string]any{"role": []string{"admin"}}), wantCode: token.CodeClaims},
		{name: "sid as object", token: rsWith(map[string]any{"sid": map[string]any{}}), wantCode: token.CodeClaims},
		{name: "membership claim as number", token: rsWith(map[string]any{"organization_membership_id": 7}), wantCode: token.CodeClaims},
		{name: "aud as number when audience configured",
			cfg:   func(_ testing.TB, _ *env, c *token.Config) { c.Audience = "client_01" },
			token: rsWith(map[string]any{"aud": 1}), wantCode: token.CodeClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t, e)
			if tt.cfg != nil {
				tt.cfg(t, e, &cfg)
			}
			v := newVerifier(t, cfg)
			got, err := v.Verify(context.Background(), tt.token(t, e))
			if code := errorCode(t, err); code != tt.wantCode {
				t.Fatalf("Verify error = %v (code %q), want code %q", err, code, tt.wantCode)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify claims mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := testEnv(t)
	goodFile := writeJWKS(t, e.jwks)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srv := newJWKSServer(t, []byte(`not json`))
	failing := newJWKSServer(t, e.jwks)
	failing.Fail(http.StatusInternalServerError)

	tests := []struct {
		name    string
		cfg     token.Config
		wantErr string
	}{
		{name: "no key source", cfg: token.Config{Issuer: issuer}, wantErr: "set JWKSURL or JWKSFile"},
		{name: "both key sources", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, JWKSURL: "https://x.example/jwks"}, wantErr: "set only one"},
		{name: "relative URL", cfg: token.Config{Issuer: issuer, JWKSURL: "/jwks"}, wantErr: "absolute http or https URL"},
		{name: "ftp URL", cfg: token.Config{Issuer: issuer, JWKSURL: "ftp://x.example/jwks"}, wantErr: "absolute http or https URL"},
		{name: "missing issuer", cfg: token.Config{JWKSFile: goodFile}, wantErr: "token: an issuer is required"},
		{name: "empty issuer in the list", cfg: token.Config{JWKSFile: goodFile, Issuers: []string{issuer, ""}}, wantErr: "no issuer may be empty"},
		{name: "negative refresh interval", cfg: token.Config{JWKSFile: goodFile, Issuer: issuer, RefreshInterval: -time.Second}, wantErr: "refresh interval"},
		{name: "HS256 allowed", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, Algorithms: []string{"RS256", "HS256"}}, wantErr: `algorithm "HS256" is not supported`},
		{name: "none allowed", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, Algorithms: []string{"none"}}, wantErr: `algorithm "none" is not supported`},
		{name: "RS384 allowed", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, Algorithms: []string{"RS384"}}, wantErr: `algorithm "RS384" is not supported`},
		{name: "negative skew", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, Skew: -time.Second}, wantErr: "skew -1s is negative"},
		{name: "negative refresh interval", cfg: token.Config{Issuer: issuer, JWKSFile: goodFile, MinRefreshInterval: -time.Second}, wantErr: "min refresh interval -1s is negative"},
		{name: "missing file", cfg: token.Config{Issuer: issuer, JWKSFile: filepath.Join(dir, "absent.json")}, wantErr: "no such file"},
		{name: "file not JSON", cfg: token.Config{Issuer: issuer, JWKSFile: file("bad.json", "{")}, wantErr: "parse jwks"},
		{name: "file without keys", cfg: token.Config{Issuer: issuer, JWKSFile: file("empty.json", `{"keys":[]}`)}, wantErr: "no usable signing key"},
		{name: "file with only a symmetric key", cfg: token.Config{Issuer: issuer, JWKSFile: file("oct.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`)}, wantErr: "no usable signing key"},
		{name: "file with a private key", cfg: token.Config{Issuer: issuer, JWKSFile: file("priv.json", privateJWKS(t))}, wantErr: "private key"},
		{name: "duplicate kid", cfg: token.Config{Issuer: issuer, JWKSFile: file("dup.json", string(mergeJWKS(t, e.rs.JWKS(), e.other.JWKS())))}, wantErr: `two keys with kid "rs1"`},
		{name: "URL serves junk", cfg: token.Config{Issuer: issuer, JWKSURL: srv.URL}, wantErr: "parse jwks"},
		{name: "URL fails", cfg: token.Config{Issuer: issuer, JWKSURL: failing.URL}, wantErr: "unexpected status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := token.New(context.Background(), tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want error containing %q", v, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// privateJWKS returns a JWKS holding a private RSA key.
func privateJWKS(tb testing.TB) string {
	tb.Helper()
	r := newRawSigner(tb, "priv")
	k, err := jwk.FromRaw(r.key)
	if err != nil {
		tb.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		tb.Fatal(err)
	}
	return mustJSON(tb, set)
}

func TestVerifyJWKSURLRotationAndRateLimit(t *testing.T) {
	a := signer(t, "rot", token.RS256, "a")
	b := signer(t, "rot", token.RS256, "b")
	z := signer(t, "rot", token.RS256, "z")
	srv := newJWKSServer(t, a.JWKS())
	clk := newClock(t0)
	v := newVerifier(t, token.Config{JWKSURL: srv.URL, Issuer: issuer, Now: clk.Now})
	ctx := context.Background()
	long := validClaims(map[string]any{"exp": t0.Add(time.Hour).Unix()})
	tokA, tokB, tokZ := sign(t, a, long), sign(t, b, long), sign(t, z, long)

	check := func(step, raw, wantCode string, wantHits int64) {
		t.Helper()
		_, err := v.Verify(ctx, raw)
		if code := errorCode(t, err); code != wantCode {
			t.Errorf("%s: Verify error = %v, want code %q", step, err, wantCode)
		}
		if got := srv.hits.Load(); got != wantHits {
			t.Errorf("%s: JWKS fetched %d times, want %d", step, got, wantHits)
		}
	}

	check("initial fetch by New, key a", tokA, "", 1)
	check("unknown kid b right after start is rate-limited", tokB, token.CodeUnknownKey, 1)

	srv.Serve(mergeJWKS(t, a.JWKS(), b.JWKS()))
	check("rotated server, still within the interval", tokB, token.CodeUnknownKey, 1)

	clk.Add(token.DefaultMinRefreshInterval + time.Second)
	check("after the interval the unknown kid triggers a refresh", tokB, "", 2)
	check("key b is now known", tokB, "", 2)
	check("key a still works", tokA, "", 2)

	for i := range 10 {
		check(fmt.Sprintf("unknown kid flood is rate-limited (%d)", i), tokZ, token.CodeUnknownKey, 2)
	}
	clk.Add(token.DefaultMinRefreshInterval + time.Second)
	check("one refresh per interval for a kid that stays unknown", tokZ, token.CodeUnknownKey, 3)
	check("and then rate-limited again", tokZ, token.CodeUnknownKey, 3)

	srv.Fail(http.StatusServiceUnavailable)
	clk.Add(token.DefaultMinRefreshInterval + time.Second)
	check("refresh failure is reported as keys unavailable", tokZ, token.CodeKeysUnavailable, 4)
	check("known keys survive a failed refresh", tokB, "", 4)

	// The issuer withdraws key a; the periodic refresh drops it and the
	// cache no longer vouches for tokens it signed.
	srv.Serve(b.JWKS())
	clk.Add(16 * time.Minute)
	check("periodic refresh drops withdrawn key a", tokA, token.CodeUnknownKey, 5)
	check("key b still verifies", tokB, "", 5)
}

func TestVerifyConcurrentUnknownKidFetchesOnce(t *testing.T) {
	a := signer(t, "conc", token.RS256, "a")
	b := signer(t, "conc", token.RS256, "b")
	srv := newJWKSServer(t, a.JWKS())
	clk := newClock(t0)
	v := newVerifier(t, token.Config{JWKSURL: srv.URL, Issuer: issuer, Now: clk.Now})
	srv.Serve(mergeJWKS(t, a.JWKS(), b.JWKS()))
	clk.Add(time.Minute)
	tokA, tokB := sign(t, a, validClaims(nil)), sign(t, b, validClaims(nil))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		raw := tokA
		if i%2 == 0 {
			raw = tokB
		}
		wg.Go(func() {
			got, err := v.Verify(context.Background(), raw)
			if err != nil {
				errs <- err
				return
			}
			if diff := cmp.Diff(wantClaims(), got); diff != "" {
				errs <- errors.New(diff)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Verify: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (New + one refresh)", got)
	}
}

func TestVerifyJWKSFile(t *testing.T) {
	a := signer(t, "file", token.RS256, "a")
	b := signer(t, "file", token.ES256, "b")
	path := writeJWKS(t, a.JWKS())
	clk := newClock(t0)
	v := newVerifier(t, token.Config{JWKSFile: path, Issuer: issuer, Now: clk.Now, Algorithms: []string{token.RS256, token.ES256}})
	ctx := context.Background()

	if _, err := v.Verify(ctx, sign(t, a, validClaims(nil))); err != nil {
		t.Fatalf("Verify token of key a: %v", err)
	}
	if err := os.WriteFile(path, mergeJWKS(t, a.JWKS(), b.JWKS()), 0o600); err != nil {
		t.Fatal(err)
	}
	tokB := sign(t, b, validClaims(nil))
	if _, err := v.Verify(ctx, tokB); errorCode(t, err) != token.CodeUnknownKey {
		t.Fatalf("Verify token of new key b within the refresh interval = %v, want %s", err, token.CodeUnknownKey)
	}
	clk.Add(token.DefaultMinRefreshInterval)
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("Verify token of new key b after the refresh interval: %v", err)
	}
}

func TestVerifyCacheIsTransparent(t *testing.T) {
	e := testEnv(t)
	for _, size := range []int{0, -1} { // default cache, no cache
		t.Run("CacheSize="+map[int]string{0: "default", -1: "disabled"}[size], func(t *testing.T) {
			clk := newClock(t0)
			cfg := baseConfig(t, e)
			cfg.Now, cfg.CacheSize = clk.Now, size
			v := newVerifier(t, cfg)
			ctx := context.Background()
			exp := t0.Add(time.Minute)
			raw := sign(t, e.rs, validClaims(map[string]any{"exp": exp.Unix()}))
			want := wantClaims()
			want.Expiry = exp

			first, err := v.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("first Verify: %v", err)
			}
			first.Permissions[0] = "mutated by caller"
			first.Roles = append(first.Roles[:0], "mutated")

			steps := []struct {
				name     string
				at       time.Time
				wantCode string
			}{
				{"again at t0", t0, ""},
				{"just before exp", exp.Add(-time.Second), ""},
				{"after exp within skew", exp.Add(token.DefaultSkew - time.Second), ""},
				{"at exp plus skew", exp.Add(token.DefaultSkew), token.CodeExpired},
				{"long after", exp.Add(time.Hour), token.CodeExpired},
			}
			for _, s := range steps {
				clk.Set(s.at)
				got, err := v.Verify(ctx, raw)
				if code := errorCode(t, err); code != s.wantCode {
					t.Fatalf("%s: Verify error = %v, want code %q", s.name, err, s.wantCode)
				}
				if err != nil {
					continue
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: claims mismatch (-want +got):\n%s", s.name, diff)
				}
			}
		})
	}
}

func TestVerifyErrorIsOnlyTokenError(t *testing.T) {
	// A typed nil *Error inside a non-nil error interface would make
	// err != nil true on success.
	e := testEnv(t)
	v := newVerifier(t, baseConfig(t, e))
	_, err := v.Verify(context.Background(), sign(t, e.rs, validClaims(nil)))
	if err != nil {
		t.Fatalf("Verify valid token = %#v, want untyped nil", err)
	}
	_, err = v.Verify(context.Background(), "x")
	var te *token.Error
	if !errors.As(err, &te) || te.Code != token.CodeMalformed || te.Message == "" {
		t.Fatalf("Verify(%q) = %#v, want *token.Error with code %s and a message", "x", err, token.CodeMalformed)
	}
	if got, want := err.Error(), token.CodeMalformed+": "+te.Message; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestVerifyKeyRotationWithinIntervals: a token signed by a key the issuer
// just added is accepted on its first use (an unknown kid refreshes the set
// at once, at most once per MinRefreshInterval), and a key it withdrew stops
// verifying, cached tokens included, once RefreshInterval has passed.
func TestVerifyKeyRotationWithinIntervals(t *testing.T) {
	a := signer(t, "rot2", token.RS256, "a")
	b := signer(t, "rot2", token.RS256, "b")
	srv := newJWKSServer(t, a.JWKS())
	clk := newClock(t0)
	v := newVerifier(t, token.Config{JWKSURL: srv.URL, Issuer: issuer, Now: clk.Now, RefreshInterval: time.Minute})
	ctx := context.Background()
	long := validClaims(map[string]any{"exp": t0.Add(time.Hour).Unix()})
	tokA, tokB := sign(t, a, long), sign(t, b, long)
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	clk.Add(token.DefaultMinRefreshInterval + time.Millisecond)
	srv.Serve(mergeJWKS(t, a.JWKS(), b.JWKS()))
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("the new key's token on its first use: %v", err)
	}
	srv.Serve(b.JWKS())
	clk.Add(59 * time.Second)
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("within the refresh interval the cached set still holds key a: %v", err)
	}
	clk.Add(2 * time.Second)
	if _, err := v.Verify(ctx, tokA); errorCode(t, err) != token.CodeUnknownKey {
		t.Fatalf("withdrawn key a after the refresh interval: %v", err)
	}
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatal(err)
	}
}
