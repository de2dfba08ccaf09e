package authz_test

import (
	"context"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

func TestDecisionCacheReusesAnswersOfTheCurrentRevision(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{value: allowValue, revision: 7}
	s := newService(t, authz.Config{Engine: f, Tokens: fakeVerifier{claims: bobClaims}, DecisionCacheSize: 100})
	check := authz.Check{Permission: "project:edit", Resource: authz.ResourceRef{ID: "authz_resource_acme_api"}}

	for range 3 {
		d, ans, err := s.Check(ctx, tok, check, authz.Consistency{})
		if err != nil || !d.Allowed || ans.Revision != 7 || ans.DecisionID == "" {
			t.Fatalf("Check = %+v, %+v, %v; want an allow at revision 7 with a decision id", d, ans, err)
		}
	}
	if n := f.evaluations(); n != 1 {
		t.Fatalf("3 equal checks evaluated %d times, want 1", n)
	}
	if st := s.CacheStats(); st.Hits != 2 || st.Misses != 1 {
		t.Fatalf("CacheStats = %+v, want 2 hits and 1 miss", st)
	}

	// Another subject, permission or resource is another question.
	_, _, _ = s.Check(ctx, member, check, authz.Consistency{})
	_, _, _ = s.Check(ctx, tok, authz.Check{Permission: "project:view", Resource: check.Resource}, authz.Consistency{})
	_, _, _ = s.Check(ctx, tok, authz.Check{Permission: check.Permission, Resource: authz.ResourceRef{ID: "other"}}, authz.Consistency{})
	if n := f.evaluations(); n != 4 {
		t.Fatalf("3 different checks: %d evaluations in all, want 4", n)
	}
}

func TestDecisionCacheKeysOnEveryClaim(t *testing.T) {
	ctx := context.Background()
	check := authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}
	variants := []token.Claims{
		{OrganizationID: "org_a", Roles: []string{"a", "b"}},
		{OrganizationID: "org_a", Roles: []string{"a"}, Permissions: []string{"b"}},
		{OrganizationID: "org_a", Permissions: []string{"a", "b"}},
		{OrganizationID: "org_ab"},
		{OrganizationID: "org_a", Subject: "b"},
		{OrganizationID: "org_a", MembershipID: "b"},
		{OrganizationID: "org_a", Role: "b"},
	}
	f := &fakeEngine{value: allowValue, revision: 1}
	v := &switchingVerifier{}
	s := newService(t, authz.Config{Engine: f, Tokens: v, DecisionCacheSize: 100})
	for _, c := range variants {
		v.claims = c
		_, _, _ = s.Check(ctx, tok, check, authz.Consistency{})
	}
	if n := f.evaluations(); n != len(variants) {
		t.Fatalf("%d distinct claim sets were evaluated %d times, want %d", len(variants), n, len(variants))
	}
}

type switchingVerifier struct{ claims token.Claims }

func (v *switchingVerifier) Verify(context.Context, string) (token.Claims, error) {
	return v.claims, nil
}

func TestDecisionCacheSkipsFailedTokensAndIsOffByDefault(t *testing.T) {
	ctx := context.Background()
	check := authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}
	deny := map[string]any{"allowed": false, "decided_by": "none", "reason": map[string]any{"code": "token_expired"}}

	f := &fakeEngine{value: deny, revision: 1}
	s := newService(t, authz.Config{Engine: f, Tokens: fakeVerifier{err: &token.Error{Code: token.CodeExpired}}, DecisionCacheSize: 100})
	for range 2 {
		_, _, _ = s.Check(ctx, tok, check, authz.Consistency{})
	}
	if n := f.evaluations(); n != 2 {
		t.Fatalf("a failed token: %d evaluations for 2 checks, want 2 (never cached)", n)
	}

	f = &fakeEngine{value: allowValue, revision: 1}
	s = newService(t, authz.Config{Engine: f})
	for range 2 {
		_, _, _ = s.Check(ctx, member, check, authz.Consistency{})
	}
	if n := f.evaluations(); n != 2 || s.CacheStats() != (authz.CacheStats{}) {
		t.Fatalf("no cache: %d evaluations for 2 checks (stats %+v), want 2", n, s.CacheStats())
	}
}

func TestDecisionCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{value: allowValue, revision: 1}
	s := newService(t, authz.Config{Engine: f, DecisionCacheSize: 2})
	ids := []string{"r1", "r2", "r3", "r1", "r2", "r3"}
	for _, id := range ids {
		_, _, _ = s.Check(ctx, member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: id}}, authz.Consistency{})
	}
	// With room for 2 of 3 questions asked round-robin, at least one of
	// the second round must be evaluated again; all three hitting would
	// mean the bound is not enforced.
	if n := f.evaluations(); n < 4 {
		t.Fatalf("6 checks over 3 questions with room for 2: %d evaluations, want at least 4", n)
	}
}

func TestBatchEvaluatesOnlyUncachedChecks(t *testing.T) {
	ctx := context.Background()
	f := &fakeEngine{value: allowValue, revision: 3}
	s := newService(t, authz.Config{Engine: f, DecisionCacheSize: 100})
	a := authz.Check{Permission: "a", Resource: authz.ResourceRef{ID: "r1"}}
	b := authz.Check{Permission: "b", Resource: authz.ResourceRef{ID: "r2"}}
	if _, _, err := s.Check(ctx, member, a, authz.Consistency{}); err != nil {
		t.Fatal(err)
	}

	f.value = []any{allowValue}
	ds, ans, err := s.CheckBatch(ctx, member, []authz.Check{a, b}, authz.Consistency{})
	if err != nil || len(ds) != 2 || !ds[0].Allowed || !ds[1].Allowed || ans.Revision != 3 {
		t.Fatalf("CheckBatch = %+v, %+v, %v", ds, ans, err)
	}
	want := map[string]any{
		"subject": map[string]any{"organization_membership_id": "om_bob"},
		"checks":  []any{map[string]any{"permission": "b", "resource": map[string]any{"id": "r2"}}},
	}
	if d := diff(f.lastInput(t), want); d != "" {
		t.Fatalf("the batch evaluated more than the uncached check (-got +want):\n%s", d)
	}

	// Both are cached now: nothing is evaluated.
	before := f.evaluations()
	if _, _, err := s.CheckBatch(ctx, member, []authz.Check{b, a}, authz.Consistency{}); err != nil {
		t.Fatal(err)
	}
	if n := f.evaluations() - before; n != 0 {
		t.Fatalf("a fully cached batch was evaluated %d times", n)
	}
}

// TestCachedAnswersFollowChanges runs a real engine: an answer cached
// before a change is never served after it.
func TestCachedAnswersFollowChanges(t *testing.T) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	ds := datafile.Demo()
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	s := newService(t, authz.Config{Engine: e, DecisionCacheSize: 100})
	check := authz.Check{Permission: "project:edit", Resource: apiRef}
	ask := func(cons authz.Consistency) (bool, int64) {
		t.Helper()
		d, ans, err := s.Check(ctx, member, check, cons)
		if err != nil {
			t.Fatal(err)
		}
		return d.Allowed, ans.Revision
	}
	if ok, _ := ask(authz.Consistency{}); !ok {
		t.Fatal("om_bob may not edit project api before the change")
	}
	if ok, _ := ask(authz.Consistency{}); !ok {
		t.Fatal("om_bob may not edit project api from the cache")
	}

	var grant *model.Assignment
	for i := range ds.Assignments {
		if ds.Assignments[i].MembershipID == "om_bob" {
			grant = &ds.Assignments[i]
		}
	}
	if grant == nil {
		t.Fatal("the demo has no assignment for om_bob")
	}
	rev := e.Revision() + 1
	if err := e.Apply(ctx, rev, []model.Change{{Op: model.OpDelete, Assignment: grant}}); err != nil {
		t.Fatal(err)
	}
	if ok, got := ask(authz.Consistency{AtLeastRevision: rev}); ok || got != rev {
		t.Fatalf("after revoking om_bob's grant at revision %d: allowed=%v at revision %d; want a deny at %d", rev, ok, got, rev)
	}

	// A reload may bring back a revision number with other data (a
	// restored database): the grant is back at the same revision.
	ds.Revision = rev
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if ok, got := ask(authz.Consistency{}); !ok || got != rev {
		t.Fatalf("after reloading other data at revision %d: allowed=%v at revision %d; want the restored grant's allow", rev, ok, got)
	}
}

func TestDecisionCacheNeedsGenerations(t *testing.T) {
	_, err := authz.New(authz.Config{Engine: revisionOnly{&fakeEngine{}}, DecisionCacheSize: 10})
	if err == nil || !strings.Contains(err.Error(), "generations") {
		t.Fatalf("New with a cache on an engine without generations: %v; want an error", err)
	}
}

// revisionOnly hides fakeEngine's Generations and Owners.
type revisionOnly struct{ authz.Evaluator }

// TestExplainBypassesTheCache: an explained check names the grant's path
// and is neither served from nor stored in the cache, so plain answers
// never carry a path and explained ones always do.
func TestExplainBypassesTheCache(t *testing.T) {
	ctx := context.Background()
	s := newService(t, authz.Config{Engine: demoEngine(t), Tokens: fakeVerifier{claims: bobClaims}, DecisionCacheSize: 100})
	plain := authz.Check{Permission: "project:edit", Resource: authz.ResourceRef{Type: "project", ExternalID: "api"}}
	explained := plain
	explained.Explain = true
	for i, c := range []authz.Check{plain, explained, plain, explained} {
		d, _, err := s.Check(ctx, tok, c, authz.Consistency{})
		if err != nil || !d.Allowed {
			t.Fatalf("check %d: %+v %v", i, d, err)
		}
		path, has := d.Reason["path"].([]any)
		if has != c.Explain {
			t.Fatalf("check %d (explain %t): reason %v", i, c.Explain, d.Reason)
		}
		if has && (len(path) != 2 || path[0].(map[string]any)["external_id"] != "acme-eng" || path[1].(map[string]any)["external_id"] != "api") {
			t.Fatalf("path %v, want acme-eng then api", path)
		}
	}
	if _, _, err := s.CheckBatch(ctx, tok, []authz.Check{explained}, authz.Consistency{}); err == nil || !strings.Contains(err.Error(), "checks[0].explain") {
		t.Errorf("an explained check in a batch: %v", err)
	}
}
