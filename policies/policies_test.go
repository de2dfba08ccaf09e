package policies_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/policies"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestExtensions(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"hours.rego":        "package trellis.ext.hours\n\ndeny_grant contains {\"code\": \"x\", \"message\": \"y\"} if input.context.closed\n",
		"net/net.rego":      "package trellis.ext.network\n\nimport data.trellis.ext.network.lib\n\ndeny contains {\"code\": \"x\", \"message\": \"y\"} if not lib.inside\n",
		"net/lib.rego":      "package trellis.ext.network.lib\n\ninside if input.context.ip == \"10.0.0.1\"\n",
		"net/net_test.rego": "package trellis.ext.network_test\n\ntest_x if true\n",
		"README.md":         "not Rego",
	})
	mods, err := policies.Extensions(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ext/hours.rego", "ext/net/net.rego", "ext/net/lib.rego", policies.ExtensionSetModule} {
		if _, ok := mods[want]; !ok {
			t.Errorf("no module %s in %v", want, mods)
		}
	}
	if len(mods) != 4 {
		t.Errorf("%d modules, want 4 (tests and other files left out)", len(mods))
	}
	if got := mods[policies.ExtensionSetModule]; !strings.Contains(got, `names := {"hours", "network"}`) || !strings.Contains(got, `conditions := {"hours"}`) {
		t.Errorf("extension set:\n%s", got)
	}
}

func TestExtensionsRefused(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"the core's package":     {"package trellis\n\ncheck := {\"allowed\": true}\n", "package trellis: an extension's package is trellis.ext.<name>"},
		"the extension set":      {"package trellis.extension_set\n\nnames := set()\n", "package trellis.extension_set"},
		"ext itself":             {"package trellis.ext\n\ndeny contains 1 if true\n", "package trellis.ext:"},
		"another package":        {"package authz\n\nallow := true\n", "package authz"},
		"a complete deny":        {"package trellis.ext.x\n\ndeny := true\n", "deny must be a set of denials"},
		"a deny in a subpackage": {"package trellis.ext.x.y\n\ndeny contains 1 if true\n", "belongs in package trellis.ext.x itself"},
		"a complete deny_grant":  {"package trellis.ext.x\n\ndeny_grant := true\n", "deny_grant must be a set of denials"},
		"a deny_grant below":     {"package trellis.ext.x.y\n\ndeny_grant contains 1 if true\n", "a deny_grant rule belongs in package trellis.ext.x itself"},
		"a syntax error":         {"package trellis.ext.x\n\ndeny contains if {\n", "rego_parse_error"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policies.Extensions(writeDir(t, map[string]string{"x.rego": tc.src}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := policies.Extensions(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no Rego modules") {
		t.Errorf("an empty dir: %v", err)
	}
	if _, err := policies.Extensions(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing dir was accepted")
	}
}
