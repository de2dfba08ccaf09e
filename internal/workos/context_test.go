package workos_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
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

// TestListContext: the list routes that decide (resources of a membership,
// memberships of a resource by id and by external id, effective
// permissions) take Trellis's context extension as a query parameter, a
// URL-encoded JSON object, to the extensions, and refuse anything else.
func TestListContext(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const office = `package trellis.ext.office

deny contains {"code": "outside_office", "message": "only from the office network"} if not input.context.network == "office"
`
	if err := os.WriteFile(filepath.Join(dir, "office.rego"), []byte(office), 0o644); err != nil {
		t.Fatal(err)
	}
	mods := policies.Modules()
	ext, err := policies.Extensions(dir)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(mods, ext)
	eng, err := engine.New(ctx, engine.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadDataset(ctx, &model.Dataset{}); err != nil {
		t.Fatal(err)
	}
	e := decisionEnv(t, eng)
	f := e.seed() // alice is workspace-admin on eng, so edits web

	for _, rt := range []struct {
		name, path string
		query      url.Values
		listed     func(testing.TB, obj) []string // ids, or slugs
		want       string                         // listed only from the office
	}{
		{"resources of a membership", "/authorization/organization_memberships/" + f.alice + "/resources",
			url.Values{"permission_slug": {"project:edit"}, "parent_resource_id": {f.eng}}, ids, f.web},
		{"memberships of a resource", "/authorization/resources/" + f.web + "/organization_memberships",
			url.Values{"permission_slug": {"project:edit"}, "assignment": {"indirect"}}, ids, f.alice},
		{"memberships of a resource by external id", "/authorization/organizations/" + f.org + "/resources/project/web/organization_memberships",
			url.Values{"permission_slug": {"project:edit"}, "assignment": {"indirect"}}, ids, f.alice},
		{"effective permissions", "/authorization/resources/" + f.web + "/organization_memberships/" + f.alice + "/permissions",
			url.Values{}, slugs, "project:edit"},
		{"effective permissions by external id", "/authorization/organization_memberships/" + f.alice + "/resources/project/web/permissions",
			url.Values{}, slugs, "project:edit"},
	} {
		path := func(context ...string) string {
			q := maps.Clone(rt.query)
			for _, c := range context {
				q.Set("context", c)
			}
			return rt.path + "?" + q.Encode()
		}
		for _, tc := range []struct {
			name   string
			path   string
			listed bool
		}{
			{"from the office", path(`{"network":"office"}`), true},
			{"without a context", path(), false},
			{"from another network", path(`{"network":"cafe"}`), false},
			{"an empty object", path(`{}`), false},
		} {
			if got := slices.Contains(rt.listed(t, e.do("GET", tc.path, nil, http.StatusOK)), rt.want); got != tc.listed {
				t.Errorf("%s, %s: %s listed %v, want %v", rt.name, tc.name, rt.want, got, tc.listed)
			}
		}
		for _, bad := range []string{`"office"`, `null`, `["office"]`, `{"network":`, ``, `1`} {
			got := e.wantError("GET", path(bad), nil, http.StatusBadRequest, "invalid_request")
			if p, _ := got["errors"].([]any)[0].(obj); p["field"] != "context" {
				t.Errorf("%s, context=%s: %v, want an error naming context", rt.name, bad, got)
			}
		}
	}
}
