package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Signer issues tokens with an ephemeral key, for `trellis serve --dev`
// and for tests. It is not meant for production: the key lives only in
// memory and is never rotated. A Signer is immutable and safe for
// concurrent use.
type Signer struct {
	alg  jwa.SignatureAlgorithm
	kid  string
	key  crypto.Signer
	jwks []byte
}

// NewSigner generates a key for alg: RSA-2048 for "RS256", P-256 for
// "ES256"; any other alg is an error. kid is written to the JWKS and to
// every token header; an empty kid omits it from both (a verifier accepts
// kid-less tokens only while its key set holds a single key).
func NewSigner(alg string, kid string) (*Signer, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("token: signer algorithm %q is not supported: use RS256 or ES256", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("token: generate %s key: %w", alg, err)
	}

	pub, err := jwk.FromRaw(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token: public jwk: %w", err)
	}
	for name, value := range map[string]any{jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(name, value); err != nil {
			return nil, fmt.Errorf("token: set jwk %s: %w", name, err)
		}
	}
	if kid != "" {
		if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
			return nil, fmt.Errorf("token: set jwk kid: %w", err)
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("token: build jwks: %w", err)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: marshal jwks: %w", err)
	}
	return &Signer{alg: jwa.SignatureAlgorithm(alg), kid: kid, key: key, jwks: doc}, nil
}

// JWKS returns the public key set as JSON ({"keys":[...]}) with kid, alg
// and use "sig". The caller owns the returned slice.
func (s *Signer) JWKS() []byte { return append([]byte(nil), s.jwks...) }

// Sign returns a compact JWS whose header carries alg, typ "JWT" and kid
// (when set), and whose payload is claims marshaled with encoding/json
// exactly as given: the caller supplies iss, exp and every other claim,
// which also lets tests produce deliberately invalid tokens. It fails only
// if claims cannot be marshaled or signing fails.
func (s *Signer) Sign(claims map[string]any) (string, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: marshal claims: %w", err)
	}
	hdr := jws.NewHeaders()
	for name, value := range map[string]any{jws.AlgorithmKey: s.alg, jws.TypeKey: "JWT"} {
		if err := hdr.Set(name, value); err != nil {
			return "", fmt.Errorf("token: set header %s: %w", name, err)
		}
	}
	if s.kid != "" {
		if err := hdr.Set(jws.KeyIDKey, s.kid); err != nil {
			return "", fmt.Errorf("token: set header kid: %w", err)
		}
	}
	tok, err := jws.Sign(body, jws.WithKey(s.alg, s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return string(tok), nil
}
