package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/policies"
)

// decisionRequests is one well-formed request of every decision route,
// all about org_acme.
var decisionRequests = []struct {
	path, auth string
	body       obj
}{
	{"/v1/check", "", tokenCheck(tokBob, "project:edit", ref("project", "api"))},
	{"/v1/check", bearerOld, memberCheck("om_bob", "project:edit", ref("project", "api"))},
	{"/v1/check/batch", "", obj{"token": tokBob, "checks": []any{obj{"permission": "project:edit", "resource": ref("project", "api")}}}},
	{"/v1/effective-permissions", "", obj{"token": tokBob, "resource": ref("project", "api")}},
	{"/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit"}},
	{"/v1/list-memberships", bearerOld, obj{"permission": "project:edit", "resource": ref("project", "api")}},
	{"/v1/data/trellis/check", bearerOld, obj{"input": memberCheck("om_bob", "project:edit", ref("project", "api"))}},
	{"/v1/data/trellis/batch", bearerOld, obj{"input": obj{"token": tokBob, "checks": []any{obj{"permission": "project:edit", "resource": ref("project", "api")}}}}},
}

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Before the first load every decision route answers 503 not_ready with
// Retry-After: never a 200 deny, which clients and caches could not tell
// from a real one.
func TestNotReadyBeforeTheFirstLoad(t *testing.T) {
	h := newHandler(t, fixture{authz: authz.Config{Engine: newEngine(t)}})
	for _, rq := range decisionRequests {
		got := post(t, h, rq.path, rq.auth, rq.body)
		wantError(t, got, http.StatusServiceUnavailable, "not_ready")
		if ra := got.header.Get("Retry-After"); ra != "1" {
			t.Errorf("%s: Retry-After %q, want 1", rq.path, ra)
		}
	}
}

// Every decision about a quarantined organization answers 503
// organization_unavailable with Retry-After, while another organization is
// answered.
func TestQuarantinedOrganizationIsUnavailable(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	if err := e.LoadDataset(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Quarantine(ctx, []string{"org_acme"}); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, fixture{authz: authz.Config{Engine: e}})
	for _, rq := range decisionRequests {
		got := post(t, h, rq.path, rq.auth, rq.body)
		wantError(t, got, http.StatusServiceUnavailable, "organization_unavailable")
		if ra := got.header.Get("Retry-After"); ra != "30" {
			t.Errorf("%s: Retry-After %q, want 30", rq.path, ra)
		}
	}
	globex := obj{"type": "project", "external_id": "lab", "organization_id": "org_globex"}
	got := post(t, h, "/v1/check", bearerOld, memberCheck("om_erin", "project:view", globex))
	if got.status != http.StatusOK || got.body["allowed"] != true {
		t.Errorf("another organization's check: %d %s, want 200 allowed", got.status, got.raw)
	}
}
