package main

import (
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestIssuerFlags: --issuer is repeatable and TRELLIS_ISSUERS is
// comma-separated; the first is the verifier's Issuer (bundles carry it),
// the rest its Issuers.
func TestIssuerFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   string
		first string
		rest  []string
	}{
		{"one flag", []string{"--issuer", "https://api.workos.com"}, "", "https://api.workos.com", nil},
		{"repeated", []string{"--issuer", "https://api.workos.com", "--issuer", "https://auth.example.com"}, "",
			"https://api.workos.com", []string{"https://auth.example.com"}},
		{"environment", nil, "https://api.workos.com, https://api.workos.com/user_management/client_1",
			"https://api.workos.com", []string{"https://api.workos.com/user_management/client_1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("TRELLIS_ISSUERS", tc.env)
			}
			c, err := parseServe(append([]string{"--jwks-file", "/dev/null"}, tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			cfg := c.tokenFlags.config(nil)
			if cfg.Issuer != tc.first || !cmp.Equal(cfg.Issuers, tc.rest, cmpopts.EquateEmpty()) {
				t.Fatalf("Issuer %q, Issuers %q; want %q, %q", cfg.Issuer, cfg.Issuers, tc.first, tc.rest)
			}
		})
	}
	if _, err := parseServe([]string{"--jwks-file", "/dev/null"}, io.Discard); err == nil {
		t.Fatal("a JWKS without an issuer was accepted")
	}
}
