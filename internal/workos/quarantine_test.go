package workos_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/policies"
)

// decisionEnv serves the WorkOS routes over an engine that the test
// prepares; the store is empty (decisions do not read it first).
func decisionEnv(t *testing.T, eng *engine.Engine) *env {
	t.Helper()
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	h, err := workos.New(workos.Config{Store: newMemStore(eng.Apply), Decider: svc, APIKeys: []string{testKey},
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, eng: eng}
}

// workosDecisions are the check and discovery routes, about org_acme.
var workosDecisions = []struct{ method, path string }{
	{"POST", "/authorization/organization_memberships/om_bob/check"},
	{"GET", "/authorization/organization_memberships/om_bob/resources?permission_slug=project:edit&parent_resource_id=authz_resource_acme_eng"},
	{"GET", "/authorization/resources/authz_resource_acme_api/organization_memberships?permission_slug=project:edit"},
	{"GET", "/authorization/resources/authz_resource_acme_api/organization_memberships/om_bob/permissions"},
	{"GET", "/authorization/organization_memberships/om_bob/resources/project/api/permissions"},
}

func TestDecisionRoutesBeforeTheFirstLoadAndInQuarantine(t *testing.T) {
	ctx := context.Background()
	newEng := func() *engine.Engine {
		e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	quarantined := newEng()
	if err := quarantined.LoadDataset(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	if _, err := quarantined.Quarantine(ctx, []string{"org_acme"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		eng        *engine.Engine
		code       string
		retryAfter string
	}{
		{"before the first load", newEng(), "not_ready", "1"},
		{"organization quarantined", quarantined, "organization_unavailable", "30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := decisionEnv(t, tc.eng)
			for _, rq := range workosDecisions {
				var body any
				if rq.method == "POST" {
					body = obj{"permission_slug": "project:edit", "resource_id": "authz_resource_acme_api"}
				}
				r := e.raw(rq.method, rq.path, body)
				got := r.json(t)
				if r.status != 503 || got["code"] != tc.code || got["message"] == "" || r.header.Get("Retry-After") != tc.retryAfter {
					t.Errorf("%s %s: %d Retry-After %q %s; want 503 %s, Retry-After %s",
						rq.method, rq.path, r.status, r.header.Get("Retry-After"), r.body, tc.code, tc.retryAfter)
				}
			}
		})
	}
}
