package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/policies"
)

// probeModules are the core's modules with the extension src, of package
// trellis.ext.probe.
func probeModules(src string) map[string]string { return enginetest.Extended("probe", src) }

// extended returns an engine on the demo data with the extension src, of
// package trellis.ext.probe.
func extended(t *testing.T, src string, budget time.Duration) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engine.Options{Modules: probeModules(src), Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(context.Background(), datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	return e
}

// bobEdits is om_bob's check of project:edit on project:api, which the
// core allows (a role on workspace:acme-eng), with context ctx.
func bobEdits(ctx string) ast.Value {
	return ast.MustParseTerm(`{"subject": {"organization_membership_id": "om_bob"}, "permission": "project:edit",
		"resource": {"id": "authz_resource_acme_api"}, "context": ` + ctx + `}`).Value
}

// TestExtensionsDenyNeverAllow: an extension denies with its reason; one
// that fails at run time (a builtin error, its time budget) makes the
// decision fail, never allow; without extensions nothing is bounded.
func TestExtensionsDenyNeverAllow(t *testing.T) {
	ctx := context.Background()
	if newEngine(t).Extended() {
		t.Fatal("the core alone is extended")
	}
	e := extended(t, `deny contains {"code": "closed", "message": "outside business hours"} if input.context.hour >= 18`, 0)
	if !e.Extended() {
		t.Fatal("not extended")
	}
	r, err := e.Decide(ctx, engine.Check, bobEdits(`{"hour": 20}`))
	if err != nil {
		t.Fatal(err)
	}
	d := r.Value.(map[string]any)
	if d["allowed"] != false || d["decided_by"] != "extension" || d["reason"].(map[string]any)["rule"] != "data.trellis.ext.probe.deny" {
		t.Errorf("denied by the extension: %v", d)
	}
	if r, err := e.Decide(ctx, engine.Check, bobEdits(`{"hour": 9}`)); err != nil || r.Value.(map[string]any)["allowed"] != true {
		t.Errorf("within hours: %v, %v", r.Value, err)
	}

	broken := extended(t, `deny contains {"code": "x", "message": "y"} if to_number(input.context.n) > 3`, 0)
	var xe *engine.ExtensionError
	r, err = broken.Decide(ctx, engine.Check, bobEdits(`{"n": "not a number"}`))
	if !errors.As(err, &xe) || xe.Rule != "data.trellis.ext.probe.deny" || !strings.HasPrefix(xe.Location, "ext/probe.rego:3:") ||
		!strings.Contains(xe.Error(), "to_number") || xe.Budget != 0 {
		t.Errorf("a builtin error in an extension: %v, %#v; want an ExtensionError naming the rule, where and why", r.Value, err)
	}
	cond := extended(t, `deny_grant contains {"code": "x", "message": "y"} if to_number(input.context.n) > 3`, 0)
	r, err = cond.Decide(ctx, engine.Check, bobEdits(`{"n": "not a number"}`))
	if !errors.As(err, &xe) || xe.Rule != "data.trellis.ext.probe.deny_grant" {
		t.Errorf("a builtin error in a grant condition: %v, %v; want an ExtensionError naming deny_grant", r.Value, err)
	}
	if r, err := cond.Decide(ctx, engine.Check, bobEdits(`{"n": 5}`)); err != nil || r.Value.(map[string]any)["decided_by"] != "extension" {
		t.Errorf("a grant condition holding back bob's only grant: %v, %v", r.Value, err)
	}
	// On the compact store too, lists, members and permissions read no
	// whole collection to apply grant conditions.
	for ep, in := range map[engine.Entrypoint]string{
		engine.ListResources:        `{"subject": {"organization_membership_id": "om_bob"}, "permission": "project:edit", "context": {"n": 5}}`,
		engine.ListMemberships:      `{"permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}, "context": {"n": 5}}`,
		engine.EffectivePermissions: `{"subject": {"organization_membership_id": "om_bob"}, "resource": {"id": "authz_resource_acme_api"}, "context": {"n": 5}}`,
	} {
		r, err := cond.Decide(ctx, ep, ast.MustParseTerm(in).Value)
		if err != nil {
			t.Errorf("%s with a grant condition: %v", ep, err)
			continue
		}
		v := r.Value.(map[string]any)
		if got := fmt.Sprint(v["ids"], v["permissions"]); strings.Contains(got, "om_bob") || strings.Contains(got, "project:edit") || strings.Contains(got, "authz_resource_acme_api") {
			t.Errorf("%s: %s lists what the condition holds back", ep, got)
		}
	}
	const slowRule = `deny contains {"code": "x", "message": "y"} if count([n | some n in numbers.range(1, 100000000)]) < 0`
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := extended(t, slowRule, time.Minute).Decide(short, engine.Check, bobEdits(`{}`)); err == nil || errors.As(err, &xe) {
		t.Errorf("a request that ends within the budget: %v; want an error that blames no extension", err)
	}

	slow := extended(t, slowRule, 50*time.Millisecond)
	start := time.Now()
	r, err = slow.Decide(ctx, engine.Check, bobEdits(`{}`))
	if !errors.As(err, &xe) || xe.Budget != 50*time.Millisecond || xe.Rule != "data.trellis.ext" || !strings.Contains(xe.Error(), "budget of 50ms") {
		t.Errorf("an extension past its budget: %v, %v; want an ExtensionError naming the budget", r.Value, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the budget did not stop the evaluation: %s", took)
	}
}

// TestSetModules: new policies apply to every decision that begins after
// SetModules, atomically, while decisions run; modules that do not compile
// leave the policies in use as they were.
func TestSetModules(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	if err := e.LoadDataset(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	allowed := func() bool {
		t.Helper()
		r, err := e.Decide(ctx, engine.Check, bobEdits(`{"hour": 20}`))
		if err != nil {
			t.Fatal(err)
		}
		return r.Value.(map[string]any)["allowed"] == true
	}
	core := e.PolicyRevision()
	if !allowed() || e.Extended() {
		t.Fatal("the core alone denies, or is extended")
	}
	closed := probeModules(`deny contains {"code": "closed", "message": "closed"} if input.context.hour >= 18`)

	// Decisions run throughout the swap; each sees one set or the other.
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := e.Decide(ctx, engine.Check, bobEdits(`{"hour": 20}`)); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := e.SetModules(ctx, closed); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("a decision during SetModules: %v", err)
	}
	if allowed() || !e.Extended() || e.PolicyRevision() == core {
		t.Errorf("after SetModules: allowed %v, extended %v, revision %s (was %s)", allowed(), e.Extended(), e.PolicyRevision(), core)
	}
	extendedRev := e.PolicyRevision()
	if err := e.SetModules(ctx, probeModules(`deny contains x if x := undefined_function(1)`)); err == nil {
		t.Error("modules that do not compile were set")
	}
	if allowed() || e.PolicyRevision() != extendedRev {
		t.Errorf("a failed SetModules changed the policies: allowed %v, revision %s", allowed(), e.PolicyRevision())
	}
	if err := e.SetModules(ctx, policies.Modules()); err != nil {
		t.Fatal(err)
	}
	if !allowed() || e.Extended() || e.PolicyRevision() != core {
		t.Errorf("back to the core: allowed %v, extended %v, revision %s, want %s", allowed(), e.Extended(), e.PolicyRevision(), core)
	}
}

// TestContextFree: an extension that reads only its input's check,
// subject, token and attributes leaves answers cacheable; one that reads
// the context, the clock or other data does not.
func TestContextFree(t *testing.T) {
	if !newEngine(t).ContextFree() {
		t.Error("the core alone is not context-free")
	}
	for src, want := range map[string]bool{
		`deny contains {"code": "x", "message": "y"} if input.resource.attributes.confidential`:                                   true,
		`deny contains {"code": "x", "message": "y"} if "suspended" in input.token.entitlements`:                                  true,
		"import data.trellis\n\ndeny contains {\"code\": \"x\", \"message\": \"y\"} if not trellis.core_allows(\"project:view\")": true,
		"deny contains {\"code\": \"x\", \"message\": \"y\"} if not inside\n\ninside if input.organization.attributes.open":       true,
		`deny contains {"code": "x", "message": "y"} if input.context.ip == "10.0.0.1"`:                                           false,
		`deny contains {"code": "x", "message": "y"} if { some k, _ in input; k == "context" }`:                                   false,
		`deny contains {"code": "x", "message": "y"} if { k := "context"; input[k].ip }`:                                          false,
		`deny contains {"code": "x", "message": "y"} if time.now_ns() > 0`:                                                        false,
		`deny contains {"code": "x", "message": "y"} if { x := rand.intn("k", 10); x > 5 }`:                                       false,
		`deny contains {"code": "x", "message": "y"} if data.trellis_data.attributes["other"].confidential`:                       false,
		`deny contains {"code": "x", "message": "y"} if data.trellis.request_context.ip`:                                          false,
	} {
		if got := extended(t, src, 0).ContextFree(); got != want {
			t.Errorf("ContextFree = %v, want %v, for\n%s", got, want, src)
		}
	}
}
