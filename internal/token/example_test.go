package token_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trellis-authz/trellis/internal/token"
)

// A development issuer: sign with an ephemeral key, publish its JWKS, and
// verify with a Verifier reading that JWKS.
func Example() {
	signer, err := token.NewSigner(token.RS256, "dev-key")
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "jwks")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	jwksPath := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksPath, signer.JWKS(), 0o600); err != nil {
		panic(err)
	}

	ctx := context.Background()
	v, err := token.New(ctx, token.Config{JWKSFile: jwksPath, Issuer: "https://auth.example.test"})
	if err != nil {
		panic(err)
	}

	raw, err := signer.Sign(map[string]any{
		"iss":         "https://auth.example.test",
		"sub":         "user_01",
		"org_id":      "org_01",
		"permissions": []string{"posts:read"},
		"exp":         time.Now().Add(5 * time.Minute).Unix(),
	})
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.OrganizationID, claims.Permissions)

	_, err = v.Verify(ctx, "not-a-token")
	var te *token.Error
	if errors.As(err, &te) {
		fmt.Println(te.Code)
	}
	// Output:
	// user_01 org_01 [posts:read]
	// token_malformed
}
