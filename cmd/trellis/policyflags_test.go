package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/bundle"
)

// examples are the example extensions of README "Extensions".
const examples = "../../policies/examples"

// TestServeWithExtensions: serve --policy-dir decides with the examples,
// reading the request's context; an extension that does not compile, or
// is not in a package of its own, keeps the server from starting.
func TestServeWithExtensions(t *testing.T) {
	const key = "extension-test-key-0123456789"
	url := startService(t, testConfig(t, "--policy-dir", examples, "--api-key", key))
	deploy := func(ctx any) map[string]any {
		return map[string]any{"subject": map[string]any{"organization_membership_id": "om_bob"}, "permission": "app:deploy",
			"resource": map[string]any{"type": "app", "external_id": "api-gateway", "organization_id": "org_acme"}, "context": ctx}
	}
	if code, d := post(t, url, "/v1/check", key, deploy(map[string]any{"time": "2026-12-07T10:00:00Z"})); code != 200 || d["allowed"] != true {
		t.Errorf("a deploy on a Monday morning: %d %v", code, d)
	}
	code, d := post(t, url, "/v1/check", key, deploy(map[string]any{"time": "2026-12-07T19:00:00Z"}))
	if reason, _ := d["reason"].(map[string]any); code != 200 || d["allowed"] != false || d["decided_by"] != "extension" || reason["rule"] != "data.trellis.ext.business_hours.deny" {
		t.Errorf("a deploy in the evening: %d %v", code, d)
	}
	// A runtime error in an extension denies, naming the rule that failed
	// (a helper of the deny rule here); a list it
	// breaks fails whole, naming it too.
	code, d = post(t, url, "/v1/check", key, deploy(map[string]any{"time": "yesterday"}))
	if reason, _ := d["reason"].(map[string]any); code != 200 || d["allowed"] != false || d["decided_by"] != "extension" ||
		reason["code"] != "extension_error" || reason["rule"] != "data.trellis.ext.business_hours.now_ns" ||
		!strings.HasPrefix(fmt.Sprint(reason["location"]), "ext/business_hours.rego:") || !strings.Contains(fmt.Sprint(reason["message"]), "parse") {
		t.Errorf("a context the extension cannot read: %d %v, want a denial naming the rule", code, d)
	}
	code, d = post(t, url, "/v1/list-resources", key, map[string]any{"subject": map[string]any{"organization_membership_id": "om_bob"},
		"permission": "app:deploy", "context": map[string]any{"time": "yesterday"}})
	if msg, _ := d["message"].(string); code != 500 || d["code"] != "extension_error" || !strings.Contains(msg, "data.trellis.ext.business_hours.now_ns") {
		t.Errorf("a list the extension cannot decide: %d %v, want 500 extension_error naming the rule", code, d)
	}
	if code, d := post(t, url, "/v1/check", key, deploy(42)); code != 400 || !strings.Contains(d["message"].(string), "context") {
		t.Errorf("a context that is not an object: %d %v", code, d)
	}

	for name, src := range map[string]string{
		"a compile error":    "package trellis.ext.x\n\ndeny contains {\"code\": \"c\", \"message\": m} if m := undefined_function(1)\n",
		"the core's package": "package trellis\n\nallow := true\n",
	} {
		dir := t.TempDir()
		writeFile(t, dir, "x.rego", []byte(src))
		if _, err := newService(context.Background(), testConfig(t, "--policy-dir", dir), slog.New(slog.DiscardHandler), nil); err == nil {
			t.Errorf("%s: the server started", name)
		}
	}
}

// TestTestCommandWithExtensions: trellis test --policy-dir decides with the
// extensions, and a test's context reaches them.
func TestTestCommandWithExtensions(t *testing.T) {
	demo, err := filepath.Abs("../../internal/datafile/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, t.TempDir(), "ext.test.yaml", []byte(`data: `+demo+`
attributes:
  "project:web": {confidential: true}
organization_attributes:
  org_globex: {networks: ["10.20.0.0/16"]}
tests:
  - name: deploys in business hours only
    check:
      - {membership: om_bob, permission: "app:deploy", resource: "app:api-gateway", context: {time: "2026-12-07T10:00:00Z"}, allowed: true}
      - {membership: om_bob, permission: "app:deploy", resource: "app:api-gateway", context: {time: "2026-12-07T19:00:00Z"}, allowed: false, decided_by: extension}
  - name: attributes set in the test file reach the extensions
    check:
      - {membership: om_bob, permission: "project:edit", resource: "project:web", allowed: false, decided_by: extension}
      - {membership: om_bob, permission: "project:edit", resource: "project:api", allowed: true}
      - {membership: om_frank, permission: "project:view", resource: "project:lab", context: {ip: "10.20.0.1"}, allowed: true}
      - {membership: om_frank, permission: "project:view", resource: "project:lab", context: {ip: "10.30.0.1"}, allowed: false, decided_by: extension}
`))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"test", "--policy-dir", examples, file}, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"test", file}, &out, io.Discard); err == nil {
		t.Error("without --policy-dir the evening deploy was denied")
	}
	bad := writeFile(t, t.TempDir(), "bad.test.yaml", []byte("attributes:\n  \"project:nope\": {a: 1}\ntests:\n  - name: x\n    check: []\n"))
	if err := run(context.Background(), []string{"test", bad}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "no resource project:nope") {
		t.Errorf("attributes of an unknown resource: %v", err)
	}
}

// TestServeReloadsPolicies: SIGHUP reloads --policy-dir into decisions,
// bundles, /ready and /metrics; a set that does not compile keeps the one
// in use and says why on /ready.
func TestServeReloadsPolicies(t *testing.T) {
	const key = "reload-test-key-0123456789abcdef"
	dir := t.TempDir()
	ext := func(code string) []byte {
		return []byte("package trellis.ext.gate\n\ndeny contains {\"code\": \"" + code + "\", \"message\": \"no deploys\"} if endswith(input.permission, \":deploy\")\n")
	}
	writeFile(t, dir, "gate.rego", ext("first"))
	url := startService(t, testConfig(t, "--policy-dir", dir, "--api-key", key))
	denial := func() string {
		t.Helper()
		code, d := post(t, url, "/v1/check", key, map[string]any{"subject": map[string]any{"organization_membership_id": "om_bob"},
			"permission": "app:deploy", "resource": map[string]any{"type": "app", "external_id": "api-gateway", "organization_id": "org_acme"}})
		reason, _ := d["reason"].(map[string]any)
		if code != 200 || d["allowed"] != false {
			t.Fatalf("check: %d %v, want a denial", code, d)
		}
		return fmt.Sprint(reason["code"])
	}
	ready := func() map[string]any {
		t.Helper()
		code, body := get(t, url+"/ready")
		if code != 200 {
			t.Fatalf("/ready: %d %v", code, body)
		}
		return body
	}
	hangup := func(until func() bool) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !until(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the reload did not happen within 10 s")
			}
		}
	}
	if got := denial(); got != "first" {
		t.Fatalf("denied by %q, want the first extension", got)
	}
	first := ready()["policy_revision"]

	writeFile(t, dir, "gate.rego", ext("second"))
	hangup(func() bool { return denial() == "second" })
	second := ready()["policy_revision"]
	if second == first || ready()["policy_reload_error"] != nil {
		t.Errorf("/ready after the reload: %v (the revision was %v)", ready(), first)
	}
	metrics := scrape(t, url)
	for _, want := range []string{`trellis_policy_info{revision="` + fmt.Sprint(second) + `"} 1`, `trellis_policy_reloads_total{result="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/bundles/trellis.tar.gz", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c, err := bundle.Read(raw, nil); err != nil || !strings.Contains(c.Modules["ext/gate.rego"], `"second"`) {
		t.Errorf("the bundle after the reload: %v, module %q", err, c.Modules["ext/gate.rego"])
	}

	writeFile(t, dir, "gate.rego", []byte("package trellis.ext.gate\n\ndeny contains x if x := undefined_function(1)\n"))
	hangup(func() bool { return ready()["policy_reload_error"] != nil })
	if got, rev := denial(), ready()["policy_revision"]; got != "second" || rev != second {
		t.Errorf("after a failed reload: denied by %q at policy revision %v, want the second set, %v", got, rev, second)
	}
	if !strings.Contains(fmt.Sprint(ready()["policy_reload_error"]), "undefined_function") {
		t.Errorf("/ready does not say why the reload failed: %v", ready())
	}
	if !strings.Contains(scrape(t, url), `trellis_policy_reloads_total{result="error"} 1`) {
		t.Error("/metrics does not count the failed reload")
	}
}
