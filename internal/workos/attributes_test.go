package workos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
)

// withNumbers sends a request, requires status want and decodes the body
// with numbers as json.Number, as attributes hold them.
func (e *env) withNumbers(method, path string, body any, want int) obj {
	e.t.Helper()
	r := e.raw(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var v obj
	if err := dec.Decode(&v); err != nil {
		e.t.Fatalf("%s %s: %v: %s", method, path, err, r.body)
	}
	return v
}

// wantAttributes fails unless o's attributes are want; nil wants the field
// left out.
func wantAttributes(t testing.TB, what string, o obj, want obj) {
	t.Helper()
	got, has := o["attributes"]
	if want == nil {
		if has {
			t.Errorf("%s: attributes %v, want the field left out", what, got)
		}
		return
	}
	if diff := cmp.Diff(any(want), got); diff != "" {
		t.Errorf("%s: attributes (-want +got):\n%s", what, diff)
	}
}

func TestAttributes(t *testing.T) { conformance(t, testAttributes) }

// testAttributes: the attributes extension field of organizations and
// resources is kept as sent (numbers exact), returned only when set,
// replaced whole by an update that names it, kept by one that does not and
// cleared by null.
func testAttributes(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()

	nets := obj{"networks": []any{"10.0.0.0/8"}, "tier": json.Number("3")}
	org := e.withNumbers("POST", "/organizations", `{"name": "Globex", "attributes": {"networks": ["10.0.0.0/8"], "tier": 3}}`, 201)
	wantAttributes(t, "created organization", org, nets)
	id := str(org["id"])
	orgPath := "/organizations/" + id
	wantAttributes(t, "organization", e.withNumbers("GET", orgPath, nil, 200), nets)
	wantAttributes(t, "organization without attributes", e.withNumbers("GET", "/organizations/"+f.org, nil, 200), nil)
	for _, o := range e.withNumbers("GET", "/organizations?limit=100", nil, 200)["data"].([]any) {
		if o := o.(obj); o["id"] == id {
			wantAttributes(t, "listed organization", o, nets)
		}
	}
	wantAttributes(t, "renamed organization", e.withNumbers("PUT", orgPath, obj{"name": "Globex Corp"}, 200), nets)
	wantAttributes(t, "organization with new attributes",
		e.withNumbers("PUT", orgPath, `{"attributes": {"tier": 4.5}}`, 200), obj{"tier": json.Number("4.5")})
	if got := e.withNumbers("GET", orgPath, nil, 200); got["name"] != "Globex Corp" {
		t.Errorf("an update of the attributes changed the name: %v", got)
	}
	wantAttributes(t, "organization cleared", e.withNumbers("PUT", orgPath, `{"attributes": null}`, 200), nil)
	wantAttributes(t, "organization cleared", e.withNumbers("GET", orgPath, nil, 200), nil)

	doc := obj{"confidential": true, "score": json.Number("2.5"), "owner": obj{"team": "eng", "ids": []any{json.Number("1"), json.Number("20")}}}
	res := e.withNumbers("POST", "/authorization/resources", `{"organization_id": "`+f.org+`", "resource_type_slug": "project",
		"external_id": "api", "name": "API", "parent_resource_id": "`+f.eng+`",
		"attributes": {"confidential": true, "score": 2.5, "owner": {"team": "eng", "ids": [1, 20]}}}`, 201)
	wantAttributes(t, "created resource", res, doc)
	byID := "/authorization/resources/" + str(res["id"])
	byExt := "/authorization/organizations/" + f.org + "/resources/project/api"
	wantAttributes(t, "resource by id", e.withNumbers("GET", byID, nil, 200), doc)
	wantAttributes(t, "resource by external id", e.withNumbers("GET", byExt, nil, 200), doc)
	wantAttributes(t, "resource without attributes", e.withNumbers("GET", "/authorization/resources/"+f.web, nil, 200), nil)
	for _, r := range e.withNumbers("GET", "/authorization/resources?organization_id="+f.org, nil, 200)["data"].([]any) {
		if r := r.(obj); r["id"] == res["id"] {
			wantAttributes(t, "listed resource", r, doc)
		}
	}
	wantAttributes(t, "resource with new attributes",
		e.withNumbers("PATCH", byID, `{"attributes": {"confidential": false}}`, 200), obj{"confidential": false})
	renamed := e.withNumbers("PATCH", byExt, obj{"name": "Public API"}, 200)
	wantAttributes(t, "renamed resource", renamed, obj{"confidential": false})
	if renamed["parent_resource_id"] != f.eng {
		t.Errorf("a rename moved the resource: %v", renamed)
	}
	wantAttributes(t, "resource cleared", e.withNumbers("PATCH", byExt, `{"attributes": null}`, 200), nil)
	wantAttributes(t, "resource cleared", e.withNumbers("GET", byID, nil, 200), nil)
	wantAttributes(t, "resource with attributes again",
		e.withNumbers("PATCH", byExt, `{"attributes": {"labels": ["a"]}}`, 200), obj{"labels": []any{"a"}})

	// Refused: nothing is written.
	orgsBefore := ids(t, e.do("GET", "/organizations?limit=100", nil, 200))
	resBefore := e.withNumbers("GET", byID, nil, 200)
	big := `{"blob": "` + strings.Repeat("x", model.MaxAttributesBytes) + `"}`
	newOrg := func(attrs string) string { return `{"name": "Initech", "attributes": ` + attrs + `}` }
	newRes := func(attrs string) string {
		return `{"organization_id": "` + f.org + `", "resource_type_slug": "workspace", "external_id": "new", "name": "New", "attributes": ` + attrs + `}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"a string", "POST", "/organizations", newOrg(`"gold"`), 400, "invalid_request", "attributes"},
		{"an array", "POST", "/authorization/resources", newRes(`[1]`), 400, "invalid_request", "attributes"},
		{"a number on update", "PATCH", byID, `{"attributes": 5}`, 400, "invalid_request", "attributes"},
		{"NUL in a value", "PUT", orgPath, `{"attributes": {"tags": ["\u0000"]}}`, 400, "invalid_request", "attributes.tags[0]"},
		{"too big on create", "POST", "/authorization/resources", newRes(big), 422, "invalid_request_parameters", "attributes"},
		{"too big on update", "PUT", orgPath, `{"attributes": ` + big + `}`, 422, "invalid_request_parameters", "attributes"},
		{"too big on a resource update", "PATCH", byExt, `{"name": "X", "attributes": ` + big + `}`, 422, "invalid_request_parameters", "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.wantError(tc.method, tc.path, tc.body, tc.status, tc.code)
			if field := str(got["errors"].([]any)[0].(obj)["field"]); field != tc.field {
				t.Errorf("errors[0].field = %q, want %q: %v", field, tc.field, got)
			}
			if !strings.Contains(str(got["message"]), "attributes") {
				t.Errorf("the message does not name attributes: %v", got)
			}
		})
	}
	if got := ids(t, e.do("GET", "/organizations?limit=100", nil, 200)); !cmp.Equal(got, orgsBefore) {
		t.Errorf("refused writes changed the organizations: %v, was %v", got, orgsBefore)
	}
	if diff := cmp.Diff(resBefore, e.withNumbers("GET", byID, nil, 200)); diff != "" {
		t.Errorf("refused writes changed the resource (-before +after):\n%s", diff)
	}
	if got := e.withNumbers("GET", orgPath, nil, 200); got["name"] != "Globex Corp" || got["attributes"] != nil {
		t.Errorf("refused writes changed the organization: %v", got)
	}
}

// recordingApplier is the engine, recording the changes the follower
// hands it.
type recordingApplier struct {
	*engine.Engine
	mu      sync.Mutex
	changes []model.Change
}

func (a *recordingApplier) Apply(ctx context.Context, rev int64, changes []model.Change) error {
	a.mu.Lock()
	a.changes = append(a.changes, changes...)
	a.mu.Unlock()
	return a.Engine.Apply(ctx, rev, changes)
}

// waitFor waits until the follower has handed over a change that match
// accepts, and returns it.
func (a *recordingApplier) waitFor(t testing.TB, what string, match func(model.Change) bool) model.Change {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		for _, c := range a.changes {
			if match(c) {
				a.mu.Unlock()
				return c
			}
		}
		a.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the follower delivered no change with %s within 10s", what)
		}
	}
}

// TestAttributesFollowed: attributes written through the WorkOS routes
// (PostgreSQL store) reach the follower's changes and a snapshot equal to
// what was sent; an update of the attributes alone is a change too.
func TestAttributesFollowed(t *testing.T) {
	var pg *postgres.Store
	rec := &recordingApplier{}
	e := newEnvOn(t, backend{"postgres", func(t testing.TB, eng *engine.Engine, _ envConfig) (workos.Store, workos.Replays, authz.Config) {
		rec.Engine = eng
		var cfg authz.Config
		pg, cfg = followedPostgres(t, rec, pgtest.URL(t), postgres.FollowerConfig{PollInterval: 20 * time.Millisecond})
		return workosdb.New(pg), workosdb.NewReplays(pg), cfg
	}})
	f := e.seed()
	org := str(e.do("POST", "/organizations", `{"name": "Globex", "attributes": {"networks": ["10.0.0.0/8"], "tier": 3}}`, 201)["id"])
	res := str(e.do("POST", "/authorization/resources", `{"organization_id": "`+f.org+`", "resource_type_slug": "workspace",
		"external_id": "vault", "name": "Vault", "attributes": {"confidential": true, "score": 2.5}}`, 201)["id"])

	orgAttrs := model.Attributes{"networks": []any{"10.0.0.0/8"}, "tier": json.Number("3")}
	resAttrs := model.Attributes{"confidential": true, "score": json.Number("2.5")}
	orgChange := func(want model.Attributes) func(model.Change) bool {
		return func(c model.Change) bool {
			return c.Organization != nil && c.Organization.ID == org && cmp.Equal(c.Organization.Attributes, want)
		}
	}
	resChange := func(want model.Attributes) func(model.Change) bool {
		return func(c model.Change) bool {
			return c.Resource != nil && c.Resource.ID == res && cmp.Equal(c.Resource.Attributes, want)
		}
	}
	rec.waitFor(t, "the organization's attributes", orgChange(orgAttrs))
	got := rec.waitFor(t, "the resource's attributes", resChange(resAttrs))
	if got.Resource.Name != "Vault" || got.Resource.ExternalID != "vault" {
		t.Errorf("the change's resource = %+v", got.Resource)
	}

	ds, err := pg.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, o := range ds.Organizations {
		if o.ID == org {
			found++
			if diff := cmp.Diff(orgAttrs, o.Attributes); diff != "" {
				t.Errorf("snapshot organization attributes (-want +got):\n%s", diff)
			}
		}
	}
	for _, r := range ds.Resources {
		if r.ID == res {
			found++
			if diff := cmp.Diff(resAttrs, r.Attributes); diff != "" {
				t.Errorf("snapshot resource attributes (-want +got):\n%s", diff)
			}
		}
	}
	if found != 2 {
		t.Fatalf("the snapshot holds %d of the organization and resource written", found)
	}

	// Updates of the attributes alone: each a revision and a change.
	for _, u := range []struct {
		path, body string
		match      func(model.Change) bool
	}{
		{"/authorization/resources/" + res, `{"attributes": {"confidential": false}}`, resChange(model.Attributes{"confidential": false})},
		{"/organizations/" + org, `{"attributes": {"networks": []}}`, orgChange(model.Attributes{"networks": []any{}})},
		{"/authorization/resources/" + res, `{"attributes": null}`, resChange(nil)},
	} {
		method := "PATCH"
		if strings.HasPrefix(u.path, "/organizations/") {
			method = "PUT"
		}
		r := e.raw(method, u.path, u.body)
		if r.status != 200 || r.header.Get("X-Trellis-Revision") == "" {
			t.Fatalf("%s %s: %d, revision %q: %s", method, u.path, r.status, r.header.Get("X-Trellis-Revision"), r.body)
		}
		rec.waitFor(t, u.body, u.match)
	}
}
