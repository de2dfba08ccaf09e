package authz_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// tenants is three organizations, each with a workspace and an active
// member who may view it through an assignment of the environment role
// ws-viewer.
func tenants() *model.Dataset {
	ds := &model.Dataset{
		Revision:      1,
		ResourceTypes: []model.ResourceType{{Slug: "workspace", ParentTypes: []string{model.OrganizationType}}},
		Permissions:   []model.Permission{{Slug: "ws:view", ResourceType: "workspace"}, {Slug: "ws:edit", ResourceType: "workspace"}},
		Roles:         []model.Role{{Slug: "ws-viewer", ResourceType: "workspace", Permissions: []string{"ws:view"}}},
	}
	for _, o := range []string{"a", "b", "c"} {
		org := "org_" + o
		ds.Organizations = append(ds.Organizations, model.Organization{ID: org})
		ds.Memberships = append(ds.Memberships, model.Membership{ID: "om_" + o, UserID: "user_" + o, OrganizationID: org, Status: model.StatusActive})
		ds.Resources = append(ds.Resources, model.Resource{ID: "ws_" + o, OrganizationID: org, Type: "workspace", ExternalID: "main"})
		ds.Assignments = append(ds.Assignments, model.Assignment{ID: "ra_" + o, MembershipID: "om_" + o, RoleSlug: "ws-viewer", ResourceID: "ws_" + o})
	}
	return ds
}

// hookedEngine runs a hook once, right after the next Owners or Decide
// call returns: the moment a concurrent write could land.
type hookedEngine struct {
	*engine.Engine
	afterOwners, afterDecide func()
}

func (h *hookedEngine) Owners(ctx context.Context, om string, rids ...string) (string, []string, error) {
	org, orgs, err := h.Engine.Owners(ctx, om, rids...)
	if f := h.afterOwners; f != nil {
		h.afterOwners = nil
		f()
	}
	return org, orgs, err
}

func (h *hookedEngine) Decide(ctx context.Context, ep engine.Entrypoint, input ast.Value) (engine.Result, error) {
	res, err := h.Engine.Decide(ctx, ep, input)
	if f := h.afterDecide; f != nil {
		h.afterDecide = nil
		f()
	}
	return res, err
}

func (h *hookedEngine) Session(ctx context.Context, fn func(func(engine.Entrypoint, ast.Value) (engine.Result, error)) error) error {
	return fn(func(ep engine.Entrypoint, in ast.Value) (engine.Result, error) { return h.Decide(ctx, ep, in) })
}

// cacheFixture is a Service with a decision cache over a real engine
// loaded with tenants().
type cacheFixture struct {
	t   *testing.T
	e   *engine.Engine
	svc *authz.Service
	rev int64
}

func newCacheFixture(t *testing.T, wrap func(*engine.Engine) authz.Evaluator, tokens authz.Verifier) *cacheFixture {
	t.Helper()
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(ctx, tenants()); err != nil {
		t.Fatal(err)
	}
	var ev authz.Evaluator = e
	if wrap != nil {
		ev = wrap(e)
	}
	return &cacheFixture{t: t, e: e, svc: newService(t, authz.Config{Engine: ev, Tokens: tokens, DecisionCacheSize: 100}), rev: 1}
}

// apply applies changes as the next revision.
func (f *cacheFixture) apply(chs ...model.Change) {
	f.t.Helper()
	f.rev++
	if err := f.e.Apply(context.Background(), f.rev, chs); err != nil {
		f.t.Fatalf("apply revision %d: %v", f.rev, err)
	}
}

// ask checks c for sub at least at the fixture's revision, and reports
// the answer and whether it came from the cache.
func (f *cacheFixture) ask(sub authz.Subject, c authz.Check) (authz.Decision, bool) {
	f.t.Helper()
	before := f.svc.CacheStats().Hits
	d, ans, err := f.svc.Check(context.Background(), sub, c, authz.Consistency{AtLeastRevision: f.rev})
	if err != nil {
		f.t.Fatal(err)
	}
	if ans.Revision != f.rev {
		f.t.Fatalf("answer at revision %d, want %d (the newest)", ans.Revision, f.rev)
	}
	return d, f.svc.CacheStats().Hits > before
}

func viewWS(o string) authz.Check {
	return authz.Check{Permission: "ws:view", Resource: authz.ResourceRef{ID: "ws_" + o}}
}

// TestCacheKeepsOtherOrganizations: a change in one organization keeps the
// cached answers about every other one (served at the new revision), and a
// grant or membership change every other membership's; a change to the
// organization's resources or to shared data evicts them.
func TestCacheKeepsOtherOrganizations(t *testing.T) {
	f := newCacheFixture(t, nil, nil)
	omB := authz.Subject{MembershipID: "om_b"}
	byExt := authz.Check{Permission: "ws:view", Resource: authz.ResourceRef{Type: "workspace", ExternalID: "main"}}
	warm := func() {
		t.Helper()
		for _, c := range []authz.Check{viewWS("b"), byExt} {
			if d, _ := f.ask(omB, c); !d.Allowed {
				t.Fatalf("om_b may not view its workspace (%+v): %+v", c.Resource, d)
			}
			if _, hit := f.ask(omB, c); !hit {
				t.Fatalf("the second check of %+v was not a hit", c.Resource)
			}
		}
	}
	warm()

	steps := []struct {
		name    string
		changes []model.Change
		kept    bool
	}{
		{"a revoked grant in A", []model.Change{{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_a", MembershipID: "om_a", RoleSlug: "ws-viewer", ResourceID: "ws_a"}}}, true},
		{"a new resource in C", []model.Change{{Op: model.OpUpsert, Resource: &model.Resource{ID: "ws_c2", OrganizationID: "org_c", Type: "workspace", ExternalID: "second"}}}, true},
		{"a membership of A deleted by id", []model.Change{{Op: model.OpDelete, Membership: &model.Membership{ID: "om_a"}}}, true},
		{"a revision without changes", nil, true},
		{"a new membership in B", []model.Change{{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_b2", UserID: "user_b2", OrganizationID: "org_b", Status: model.StatusActive}}}, true},
		{"a grant to another membership in B", []model.Change{{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_b2", MembershipID: "om_b2", RoleSlug: "ws-viewer", ResourceID: "ws_b"}}}, true},
		{"a new resource in B", []model.Change{{Op: model.OpUpsert, Resource: &model.Resource{ID: "ws_b2", OrganizationID: "org_b", Type: "workspace", ExternalID: "second"}}}, false},
		{"an environment role's permissions", []model.Change{{Op: model.OpUpsert, Role: &model.Role{Slug: "ws-viewer", ResourceType: "workspace", Permissions: []string{"ws:view", "ws:edit"}}}}, false},
		{"a permission", []model.Change{{Op: model.OpUpsert, Permission: &model.Permission{Slug: "ws:delete", ResourceType: "workspace"}}}, false},
	}
	for _, step := range steps {
		f.apply(step.changes...)
		for _, c := range []authz.Check{viewWS("b"), byExt} {
			d, hit := f.ask(omB, c)
			if hit != step.kept {
				t.Errorf("after %s, a check about org_b %+v: hit=%v, want %v", step.name, c.Resource, hit, step.kept)
			}
			if !d.Allowed {
				t.Fatalf("after %s: om_b may not view its workspace: %+v", step.name, d)
			}
		}
		warm()
	}

	f.apply(model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_b", MembershipID: "om_b", RoleSlug: "ws-viewer", ResourceID: "ws_b"}})
	if d, hit := f.ask(omB, viewWS("b")); d.Allowed || hit {
		t.Fatalf("after revoking om_b's grant: %+v (hit=%v); want an evaluated deny", d, hit)
	}
}

// TestCacheStampPrecedesEvaluation: a grant revoked while the answer that
// relied on it is being evaluated (after the stamp was taken, before the
// answer is filed) is never served from the cache afterwards.
func TestCacheStampPrecedesEvaluation(t *testing.T) {
	var h *hookedEngine
	f := newCacheFixture(t, func(e *engine.Engine) authz.Evaluator { h = &hookedEngine{Engine: e}; return h }, nil)
	omA := authz.Subject{MembershipID: "om_a"}
	h.afterDecide = func() {
		f.apply(model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_a", MembershipID: "om_a", RoleSlug: "ws-viewer", ResourceID: "ws_a"}})
	}
	d, ans, err := f.svc.Check(context.Background(), omA, viewWS("a"), authz.Consistency{})
	if err != nil || !d.Allowed || ans.Revision != 1 {
		t.Fatalf("the check raced by the revocation: %+v at %+v, %v; want the allow of revision 1", d, ans, err)
	}
	if d, hit := f.ask(omA, viewWS("a")); d.Allowed || hit {
		t.Fatalf("after the revocation: %+v (hit=%v); want an evaluated deny", d, hit)
	}
}

// TestCacheOwnersRace: a resource deleted between the lookup of its
// organization and the stamp is not cached as unknown under the old
// organization, where its re-creation elsewhere would not evict it.
func TestCacheOwnersRace(t *testing.T) {
	var h *hookedEngine
	tokenC := authz.Subject{Token: "token-of-c"}
	tokens := fakeVerifier{claims: token.Claims{OrganizationID: "org_c", Permissions: []string{"ws:view"}}}
	f := newCacheFixture(t, func(e *engine.Engine) authz.Evaluator { h = &hookedEngine{Engine: e}; return h }, tokens)
	h.afterOwners = func() {
		f.apply(model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "ws_a"}})
	}
	if d, _ := f.ask(tokenC, viewWS("a")); d.Allowed || d.Reason["code"] != "unknown_resource" {
		t.Fatalf("a check raced by the resource's delete: %+v; want unknown_resource", d)
	}
	f.apply(model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "ws_a", OrganizationID: "org_c", Type: "workspace", ExternalID: "moved"}})
	if d, hit := f.ask(tokenC, viewWS("a")); !d.Allowed || hit {
		t.Fatalf("after re-creating ws_a in org_c: %+v (hit=%v); want the token's evaluated allow", d, hit)
	}
}

// TestCacheFollowsTheResourcesOrganization: an answer about a resource
// depends on the resource's organization even when the subject has no
// membership to tie it there.
func TestCacheFollowsTheResourcesOrganization(t *testing.T) {
	tokenA := authz.Subject{Token: "token-of-a"}
	tokens := fakeVerifier{claims: token.Claims{OrganizationID: "org_a", Permissions: []string{"ws:view"}}}
	f := newCacheFixture(t, nil, tokens)
	for range 2 {
		if d, _ := f.ask(tokenA, viewWS("a")); !d.Allowed || d.DecidedBy != "token" {
			t.Fatalf("the token of org_a may not view ws_a: %+v", d)
		}
	}
	f.apply(model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "ws_a"}})
	if d, hit := f.ask(tokenA, viewWS("a")); d.Allowed || hit {
		t.Fatalf("after deleting ws_a: %+v (hit=%v); want an evaluated deny", d, hit)
	}
}

// TestCacheFollowsPolicies: new policies (engine.SetModules) serve nothing
// cached under the old ones; while they hold extensions that read the
// request's context nothing is cached at all, while they hold only
// context-free ones answers are cached again; back on the core alone, the
// cache works again.
func TestCacheFollowsPolicies(t *testing.T) {
	f := newCacheFixture(t, nil, nil)
	ctx := context.Background()
	omB := authz.Subject{MembershipID: "om_b"}
	if d, _ := f.ask(omB, viewWS("b")); !d.Allowed {
		t.Fatalf("om_b may not view its workspace: %+v", d)
	}
	if _, hit := f.ask(omB, viewWS("b")); !hit {
		t.Fatal("the second check was not a hit")
	}
	extend := func(rule string) {
		t.Helper()
		mods := enginetest.Extended("closed", `deny contains {"code": "closed", "message": "closed"} if `+rule)
		if err := f.e.SetModules(ctx, mods); err != nil {
			t.Fatal(err)
		}
	}
	extend("not input.context.open")
	for range 2 {
		if d, hit := f.ask(omB, viewWS("b")); d.Allowed || hit || d.DecidedBy != "extension" {
			t.Fatalf("with the extension: %+v (hit %v), want a denial by it, not from the cache", d, hit)
		}
	}
	extend("true")
	if d, hit := f.ask(omB, viewWS("b")); d.Allowed || hit || d.DecidedBy != "extension" {
		t.Fatalf("with a context-free extension: %+v (hit %v), want a denial by it, evaluated", d, hit)
	}
	if d, hit := f.ask(omB, viewWS("b")); d.Allowed || !hit {
		t.Fatalf("with a context-free extension, the second check: %+v (hit %v), want the denial from the cache", d, hit)
	}
	if err := f.e.SetModules(ctx, policies.Modules()); err != nil {
		t.Fatal(err)
	}
	if d, hit := f.ask(omB, viewWS("b")); !d.Allowed || hit {
		t.Fatalf("back on the core: %+v (hit %v), want an allow evaluated afresh", d, hit)
	}
	if _, hit := f.ask(omB, viewWS("b")); !hit {
		t.Fatal("back on the core, the second check was not a hit")
	}
}

// TestCacheKeysEveryClaimForExtensions: with extensions, which see the
// whole token, two tokens that differ only in a claim the core ignores
// (entitlements) share no cached answer.
func TestCacheKeysEveryClaimForExtensions(t *testing.T) {
	plain := token.Claims{OrganizationID: "org_a", Permissions: []string{"ws:view"}}
	suspended := plain
	suspended.Entitlements = []string{"suspended"}
	f := newCacheFixture(t, nil, tokenTable{"plain": plain, "suspended": suspended})
	mods := enginetest.Extended("billing", `deny contains {"code": "suspended", "message": "suspended"} if "suspended" in input.token.entitlements`)
	if err := f.e.SetModules(context.Background(), mods); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true} {
		if d, hit := f.ask(authz.Subject{Token: "plain"}, viewWS("a")); !d.Allowed || hit != want {
			t.Fatalf("plain token, ask %d: %+v (hit %v), want an allow (hit %v)", i, d, hit, want)
		}
	}
	if d, hit := f.ask(authz.Subject{Token: "suspended"}, viewWS("a")); d.Allowed || hit {
		t.Fatalf("the suspended token: %+v (hit %v), want the extension's evaluated denial", d, hit)
	}
}
