package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestClientCommands runs check, explain, list and permissions against a
// server on the demo data, with a membership subject and with a token from
// token mint.
func TestClientCommands(t *testing.T) {
	const key = "client-test-key-0123456789"
	url := startService(t, testConfig(t, "--dev", "--api-key", key))
	ctx := context.Background()
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, "--server", url, "--api-key", key), &out, io.Discard)
		return out.String(), err
	}
	exitCode := func(err error) int {
		var exit *exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &exit):
			return exit.code
		}
		return -1
	}

	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"check", "--membership", "om_bob", "project:edit", "project:api"}, 0,
			"allowed: om_bob may project:edit on project:api: role workspace-admin on workspace:acme-eng grants project:edit\n"},
		{[]string{"check", "project:edit", "project:api", "--membership", "om_carol"}, 1,
			"denied: om_carol may not project:edit on project:api: membership om_carol holds no role granting project:edit on project:api or its ancestors (no_grant)\n"},
		{[]string{"check", "--membership", "om_bob", "project:edit", "authz_resource_acme_api", "--output", "json"}, 0, `"allowed":true`},
		{[]string{"check", "--membership", "om_bob", "project:edit"}, 2, ""},
		{[]string{"check", "project:edit", "project:api"}, 2, ""},
		{[]string{"check", "--membership", "om_bob", "--output", "yaml", "project:edit", "project:api"}, 2, ""},
	} {
		out, err := cli(tc.args...)
		if got := exitCode(err); got != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%v: exit %d (%v), output %q; want exit %d, output with %q", tc.args, got, err, out, tc.code, tc.out)
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"check", "--server", "http://127.0.0.1:1", "--membership", "om_bob", "project:edit", "project:api"}, &out, io.Discard); exitCode(err) != 2 {
		t.Errorf("an unreachable server: %v, want exit 2", err)
	}

	// explain, golden on the demo.
	got, err := cli("explain", "--membership", "om_bob", "app:deploy", "app:api-gateway")
	if err != nil {
		t.Fatal(err)
	}
	const golden = `ALLOWED  om_bob  app:deploy  app:api-gateway  (decided by assignment, revision 0)
  role workspace-admin, assigned to om_bob
  workspace:acme-eng     authz_resource_acme_eng  ← role workspace-admin here
  └─ project:api         authz_resource_acme_api
     └─ app:api-gateway  authz_resource_acme_api_gateway  ← app:deploy inherited here
`
	if got != golden {
		t.Errorf("explain:\n%s\nwant:\n%s", got, golden)
	}
	got, err = cli("explain", "--membership", "om_dave", "project:edit", "project:crm")
	if err != nil || got != "DENIED  om_dave  project:edit  project:crm  (decided by none, revision 0)\n  cause: membership_inactive\n  membership om_dave is not active\n" {
		t.Errorf("explain a denial: %v\n%s", err, got)
	}

	tok, err := cli("token", "mint", "--membership", "om_bob")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	if got, err := cli("explain", "--token", tok, "workspace:view", "workspace:acme-sales"); err != nil || !strings.Contains(got, "(decided by token") {
		t.Errorf("explain with a token: %v\n%s", err, got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "resources", "--token", tok, "project:edit", "--type", "project"}, "authz_resource_acme_api\nauthz_resource_acme_web\n"},
		{[]string{"list", "resources", "--membership", "om_dave", "project:view", "--output", "json"}, "[]\n"},
		{[]string{"list", "resources", "--membership", "om_bob", "app:deploy", "--parent", "project:api"}, "authz_resource_acme_api_gateway\n"},
		{[]string{"list", "memberships", "project:edit", "project:web", "--organization", "org_acme"}, "om_alice\nom_bob\nom_carol\n"},
		{[]string{"permissions", "--membership", "om_carol", "project:web"}, "app:view\norg:view\nproject:edit\nproject:view\nworkspace:view\n"},
	} {
		if got, err := cli(tc.args...); err != nil || got != tc.want {
			t.Errorf("%v: %v\n%q, want %q", tc.args, err, got, tc.want)
		}
	}
}
