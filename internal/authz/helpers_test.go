package authz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// fakeEngine is an Evaluator that records what it is asked and answers
// with fixed values.
type fakeEngine struct {
	value    any   // every Decide and Data answer
	err      error // every Decide and Data error
	revision int64 // Revision() and the revision of every answer
	waitErr  error // WaitFor's answer
	unloaded bool  // Loaded() is false
	// gens never move: a fakeEngine's data never changes.
	gens engine.Generations

	mu      sync.Mutex
	inputs  []ast.Value
	eps     []engine.Entrypoint
	waits   []int64
	timeout time.Duration
}

func (f *fakeEngine) Decide(_ context.Context, ep engine.Entrypoint, input ast.Value) (engine.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eps = append(f.eps, ep)
	f.inputs = append(f.inputs, input)
	return engine.Result{Value: f.value, Revision: f.revision}, f.err
}

func (f *fakeEngine) Generations() *engine.Generations { return &f.gens }

// Owners places every membership and resource in org_acme.
func (f *fakeEngine) Owners(_ context.Context, _ string, rids ...string) (string, []string, error) {
	orgs := make([]string, len(rids))
	for i := range orgs {
		orgs[i] = "org_acme"
	}
	return "org_acme", orgs, nil
}

func (f *fakeEngine) Loaded() bool { return !f.unloaded }

func (f *fakeEngine) Session(ctx context.Context, fn func(func(engine.Entrypoint, ast.Value) (engine.Result, error)) error) error {
	return fn(func(ep engine.Entrypoint, input ast.Value) (engine.Result, error) { return f.Decide(ctx, ep, input) })
}

func (f *fakeEngine) Data(_ context.Context, path string, input ast.Value) (engine.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eps = append(f.eps, engine.Entrypoint("data/"+path))
	f.inputs = append(f.inputs, input)
	return engine.Result{Value: f.value, Revision: f.revision}, f.err
}

func (f *fakeEngine) WaitFor(_ context.Context, rev int64, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, rev)
	f.timeout = timeout
	return f.waitErr
}

func (f *fakeEngine) Revision() int64 { return f.revision }

// lastInput returns the input of the last evaluation as JSON-shaped data.
func (f *fakeEngine) lastInput(t testing.TB) any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.inputs) == 0 {
		t.Fatal("nothing was evaluated")
	}
	in := f.inputs[len(f.inputs)-1]
	if in == nil {
		return nil
	}
	v, err := ast.JSON(in)
	if err != nil {
		t.Fatalf("input is not JSON: %v", err)
	}
	return v
}

func (f *fakeEngine) evaluations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.inputs)
}

// fakeVerifier returns claims, or err when it is set.
type fakeVerifier struct {
	claims token.Claims
	err    error
}

func (v fakeVerifier) Verify(context.Context, string) (token.Claims, error) {
	return v.claims, v.err
}

// bobClaims are om_bob's: org-member of org_acme in the demo dataset.
var bobClaims = token.Claims{
	Subject: "user_bob", OrganizationID: "org_acme", MembershipID: "om_bob",
	Role: "org-member", Roles: []string{"org-member"}, Permissions: []string{"org:view", "workspace:view"},
	SessionID: "session_bob", FeatureFlags: []string{"beta"}, Entitlements: []string{"audit-logs"},
}

// allowValue is a well-formed allowing decision.
var allowValue = map[string]any{"allowed": true, "decided_by": "token", "reason": map[string]any{"code": "token_permission"}}

// newService returns a Service over cfg, failing the test on error.
func newService(t testing.TB, cfg authz.Config) *authz.Service {
	t.Helper()
	s, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	demoOnce sync.Once
	demo     *engine.Engine
	demoErr  error
)

// demoEngine returns a real engine holding the embedded demo dataset, shared
// by the tests, which only read from it.
func demoEngine(t testing.TB) *engine.Engine {
	t.Helper()
	demoOnce.Do(func() {
		ctx := context.Background()
		demo, demoErr = engine.New(ctx, engine.Options{Modules: policies.Modules()})
		if demoErr != nil {
			return
		}
		demoErr = demo.LoadDataset(ctx, datafile.Demo())
	})
	if demoErr != nil {
		t.Fatalf("demo engine: %v", demoErr)
	}
	return demo
}

// diff compares JSON-shaped values.
func diff(got, want any) string { return cmp.Diff(got, want) }
