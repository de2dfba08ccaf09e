package workos_test

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/policies"
)

// TestCheckContext: the check route takes Trellis's context extension
// field to the extensions, refuses one that is not an object, and answers
// an extension's failure as unauthorized.
func TestCheckContext(t *testing.T) {
	ctx := context.Background()
	mods := policies.Modules()
	ext, err := policies.Extensions("../../policies/examples")
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(mods, ext)
	eng, err := engine.New(ctx, engine.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadDataset(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	e := decisionEnv(t, eng)
	deploy := func(context any) map[string]any {
		return map[string]any{"permission_slug": "app:deploy", "resource_external_id": "api-gateway", "resource_type_slug": "app", "context": context}
	}
	const path = "/authorization/organization_memberships/om_bob/check"
	for when, want := range map[string]bool{"2026-12-07T10:00:00Z": true, "2026-12-07T19:00:00Z": false, "yesterday": false} {
		if got := e.do("POST", path, deploy(map[string]any{"time": when}), http.StatusOK); got["authorized"] != want {
			t.Errorf("a deploy at %s: %v, want authorized %v", when, got, want)
		}
	}
	e.do("POST", path, deploy("10:00"), http.StatusBadRequest)
}
