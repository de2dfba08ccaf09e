package bundle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
)

// Signing algorithms a bundle can be signed with.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Signer signs bundles in OPA's format: .signatures.json holds one JWT
// whose payload lists every file with its SHA-256 digest, plus the scope
// and the (deprecated, still read) keyid claim. It is immutable and safe for
// concurrent use.
type Signer struct {
	key   crypto.Signer
	alg   string
	keyID string
	scope string
}

// NewSigner parses a PEM private key (PKCS#1, PKCS#8 or SEC 1; OPA's own
// parser) and returns a Signer. alg is RS256 or ES256, or empty to pick
// the one the key fits (RSA: RS256, P-256: ES256). keyID is the kid every
// OPA edge must map to the public key; scope, when set, must equal the
// edges' configured scope.
func NewSigner(pemKey []byte, alg, keyID, scope string) (*Signer, error) {
	if keyID == "" {
		return nil, errors.New("bundle: a signing key id is required (edges look the public key up by it)")
	}
	guess := alg
	if guess == "" {
		guess = RS256
	}
	raw, err := opabundle.NewSigningConfig(string(pemKey), guess, "").GetPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("bundle: signing key: %w", err)
	}
	var key crypto.Signer
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		key = k
		if alg == "" {
			alg = RS256
		}
		if alg != RS256 {
			return nil, fmt.Errorf("bundle: an RSA key signs RS256, not %s", alg)
		}
	case *ecdsa.PrivateKey:
		key = k
		if k.Curve != elliptic.P256() {
			return nil, errors.New("bundle: an EC signing key must be on P-256 (ES256)")
		}
		if alg == "" {
			alg = ES256
		}
		if alg != ES256 {
			return nil, fmt.Errorf("bundle: a P-256 key signs ES256, not %s", alg)
		}
	default:
		return nil, fmt.Errorf("bundle: signing key is a %T: use an RSA or P-256 key", raw)
	}
	return &Signer{key: key, alg: alg, keyID: keyID, scope: scope}, nil
}

// Algorithm returns the signing algorithm.
func (s *Signer) Algorithm() string { return s.alg }

// KeyID returns the key id written to the JWT header.
func (s *Signer) KeyID() string { return s.keyID }

// sign returns the content of .signatures.json for files.
func (s *Signer) sign(files []opabundle.FileInfo) ([]byte, error) {
	claims := map[string]any{"files": files, "keyid": s.keyID}
	if s.scope != "" {
		claims["scope"] = s.scope
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, s.keyID); err != nil {
		return nil, err
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, err
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(s.alg), s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return nil, fmt.Errorf("bundle: sign: %w", err)
	}
	return json.Marshal(opabundle.SignaturesConfig{Signatures: []string{string(tok)}})
}
