package devmode_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/devmode"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

const issuer = "https://dev.test.invalid"

// setup serves ds with a verifier of signer's key and returns the dev
// config and the service.
func setup(t *testing.T, ds *model.Dataset) (devmode.Config, *authz.Service) {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(token.RS256, "dev")
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, signer.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := token.New(ctx, token.Config{JWKSFile: jwks, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := authz.New(authz.Config{Engine: eng, Tokens: v})
	if err != nil {
		t.Fatal(err)
	}
	return devmode.Config{Signer: signer, Issuer: issuer, APIKeys: []string{"k-0123456789abcdef"},
		Data: func(context.Context) (*model.Dataset, error) { return ds, nil }}, svc
}

// TestExamplesFromTheData: the examples are about the data served, and
// answer what their comments say.
func TestExamplesFromTheData(t *testing.T) {
	ds, err := datafile.Load(filepath.Join("testdata", "mine.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, svc := setup(t, ds)
	examples, err := cfg.Examples(context.Background(), svc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, ex := range examples {
		comments = append(comments, ex.Comment)
	}
	want := []string{
		"Allowed by the token: om_ann's session token carries folder:list for org_x.",
		"Allowed by inheritance: om_ann has role folder-reader on folder:f1, which holds doc:d1.",
		"Denied: om_ben has no role with doc:read on doc:d1 or above it.",
		"A membership subject needs the API key; effective permissions and listing work the same way.",
		"Every doc om_ann may act on with doc:read.",
	}
	if d := cmp.Diff(want, comments); d != "" {
		t.Fatalf("examples (-want +got):\n%s", d)
	}
	var out strings.Builder
	if err := devmode.PrintHelp(&out, "http://127.0.0.1:1", "the data file mine.yaml", "k", examples); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "demo") || !strings.Contains(out.String(), "with the data file mine.yaml") {
		t.Errorf("help:\n%s", out.String())
	}

	// Empty data: no examples, said so.
	cfg, svc = setup(t, &model.Dataset{})
	if examples, err = cfg.Examples(context.Background(), svc, time.Hour); err != nil || len(examples) != 0 {
		t.Fatalf("examples on no data: %v %v", examples, err)
	}
}

// TestMint: POST /dev/tokens mints a token the server's verifier accepts,
// with the membership's claims; it needs the API key and a known
// membership.
func TestMint(t *testing.T) {
	ds := datafile.Demo()
	cfg, svc := setup(t, ds)
	srv := httptest.NewServer(devmode.Handler(http.NotFoundHandler(), cfg))
	defer srv.Close()
	ctx := context.Background()
	key := cfg.APIKeys[0]

	resp, err := devmode.Mint(ctx, srv.Client(), srv.URL, key, devmode.TokenRequest{MembershipID: "om_bob", TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Claims["role"] != "org-member" || resp.Claims["org_id"] != "org_acme" || time.Until(resp.ExpiresAt) > 10*time.Minute {
		t.Errorf("claims %v, expires %v", resp.Claims, resp.ExpiresAt)
	}
	check := func(tok, perm, typ, ext string) authz.Decision {
		d, _, err := svc.Check(ctx, authz.Subject{Token: tok}, authz.Check{Permission: perm, Resource: authz.ResourceRef{Type: typ, ExternalID: ext}}, authz.Consistency{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check(resp.Token, "workspace:view", "workspace", "acme-sales"); !d.Allowed || d.DecidedBy != "token" {
		t.Errorf("the minted token: %+v", d)
	}
	if d := check(resp.Token, "project:delete", "project", "crm"); d.Allowed {
		t.Errorf("bob's token allows project:delete on crm: %+v", d)
	}
	perms := []string{"project:delete"}
	resp, err = devmode.Mint(ctx, srv.Client(), srv.URL, key, devmode.TokenRequest{MembershipID: "om_bob", Permissions: &perms})
	if err != nil {
		t.Fatal(err)
	}
	if d := check(resp.Token, "project:delete", "project", "crm"); !d.Allowed || d.DecidedBy != "token" {
		t.Errorf("a token given project:delete: %+v", d)
	}
	for name, tc := range map[string]struct {
		key  string
		req  devmode.TokenRequest
		want string
	}{
		"no key":             {"", devmode.TokenRequest{MembershipID: "om_bob"}, "(unauthorized)"},
		"wrong key":          {"nope", devmode.TokenRequest{MembershipID: "om_bob"}, "(unauthorized)"},
		"unknown membership": {key, devmode.TokenRequest{MembershipID: "om_zed"}, `"om_zed" is not in the data`},
		"no membership":      {key, devmode.TokenRequest{}, "organization_membership_id is required"},
		"ttl too long":       {key, devmode.TokenRequest{MembershipID: "om_bob", TTL: "48h"}, "at most 24h"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := devmode.Mint(ctx, srv.Client(), srv.URL, tc.key, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
