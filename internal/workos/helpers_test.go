package workos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/requestid"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
	"github.com/trellis-authz/trellis/policies"
)

const (
	testKey    = "sk_test_trellis"
	rotatedKey = "sk_test_rotated"
)

// env is a WorkOS-compatible server over one of the stores of the
// conformance suite, with a real engine and service layer deciding.
type env struct {
	t   testing.TB
	srv *httptest.Server
	h   *workos.Handler
	eng *engine.Engine
	svc *authz.Service
	// store is the store behind the routes, for what they cannot do.
	store workos.Store
}

type envOption func(*envConfig)

type envConfig struct {
	defaultRole string
	// applyDelay applies each change batch to the engine this long after
	// the store's write returned, as a change feed would (in-memory store:
	// PostgreSQL's follower is asynchronous anyway).
	applyDelay time.Duration
}

func withDefaultRole(slug string) envOption { return func(c *envConfig) { c.defaultRole = slug } }

func withApplyDelay(d time.Duration) envOption { return func(c *envConfig) { c.applyDelay = d } }

// envMaker starts an env on one store.
type envMaker func(t testing.TB, opts ...envOption) *env

// backend is a workos.Store implementation of the conformance suite: it
// returns the store, feeding eng with every write, its workos.Replays and
// the service configuration (Head) that goes with it.
type backend struct {
	name  string
	store func(t testing.TB, eng *engine.Engine, cfg envConfig) (workos.Store, workos.Replays, authz.Config)
}

// backends are the stores every route test runs against: the PostgreSQL
// store served by `trellis serve --database-url` (workosdb, with the change
// feed follower feeding the engine), and the in-memory test store, which
// validates with model.Dataset.Validate: two independent implementations
// of the workos.Store contract checked by one suite.
var backends = []backend{postgresBackend, {"memory", memoryStore}}

// postgresBackend is the production store.
var postgresBackend = backend{"postgres", postgresStore}

// conformance runs test against every backend.
func conformance(t *testing.T, test func(t *testing.T, newEnv envMaker)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			test(t, func(t testing.TB, opts ...envOption) *env { return newEnvOn(t, b, opts...) })
		})
	}
}

func newEnvOn(t testing.TB, b backend, opts ...envOption) *env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	store, replays, acfg := b.store(t, eng, cfg)
	acfg.Engine, acfg.MaxWait = eng, 2*time.Second
	svc, err := authz.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := workos.New(workos.Config{
		Store: store, Replays: replays, Decider: svc, APIKeys: []string{testKey, rotatedKey}, DefaultRoleSlug: cfg.defaultRole,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wired as cmd/trellis wires it: every response carries X-Request-ID.
	srv := httptest.NewServer(requestid.Handler(h))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, eng: eng, svc: svc, store: store}
}

// postgresStore is the wiring of `trellis serve --database-url`: a fresh
// database, migrated; a follower feeding the engine from the change feed;
// the service's Head from the follower, so X-Trellis-Consistency: full
// reads the database head.
func postgresStore(t testing.TB, eng *engine.Engine, _ envConfig) (workos.Store, workos.Replays, authz.Config) {
	t.Helper()
	pg, cfg := followedPostgres(t, eng, pgtest.URL(t), postgres.FollowerConfig{PollInterval: 50 * time.Millisecond})
	return workosdb.New(pg), workosdb.NewReplays(pg), cfg
}

// followedPostgres is postgresStore's database: a migrated postgres.Store
// on the database dsn, with a follower (configured by fc) feeding app (the
// engine, or an Applier in front of it), loaded, and the service
// configuration that reads the follower's head.
func followedPostgres(t testing.TB, app postgres.Applier, dsn string, fc postgres.FollowerConfig) (*postgres.Store, authz.Config) {
	t.Helper()
	ctx := context.Background()
	pg, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := pg.NewFollower(app, fc)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = pg.Close()
	})
	for deadline := time.Now().Add(10 * time.Second); !f.Loaded(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower did not load the first snapshot within 10s")
		}
	}
	return pg, authz.Config{Head: f.Head}
}

// memoryStore is the in-memory test store, applying each write's changes
// to the engine (after cfg.applyDelay, in order, when set).
func memoryStore(t testing.TB, eng *engine.Engine, cfg envConfig) (workos.Store, workos.Replays, authz.Config) {
	t.Helper()
	if err := eng.LoadDataset(context.Background(), &model.Dataset{}); err != nil {
		t.Fatal(err)
	}
	apply := eng.Apply
	if cfg.applyDelay > 0 {
		// Batches are applied in order, each applyDelay after its write.
		queue := make(chan func(), 1000)
		go func() {
			for f := range queue {
				f()
			}
		}()
		t.Cleanup(func() { close(queue) })
		apply = func(_ context.Context, rev int64, changes []model.Change) error {
			due := time.Now().Add(cfg.applyDelay)
			queue <- func() {
				time.Sleep(time.Until(due))
				if err := eng.Apply(context.Background(), rev, changes); err != nil {
					t.Errorf("apply revision %d: %v", rev, err)
				}
			}
			return nil
		}
	}
	return newMemStore(apply), workos.NewMemoryReplays(), authz.Config{}
}

// testLog writes the handler's log to the test's log, shown on failure.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// obj is a decoded JSON object.
type obj = map[string]any

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) obj {
	t.Helper()
	var v obj
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return v
}

// raw sends a request with the test API key unless headers set
// Authorization; body is JSON-encoded unless it is a string.
func (e *env) raw(method, path string, body any, headers ...string) response {
	e.t.Helper()
	r, err := e.send(method, path, body, headers...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// send is raw for any goroutine: it returns the error instead of failing
// the test.
func (e *env) send(method, path string, body any, headers ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// do sends a request, requires status want and returns the decoded body
// (nil for 204).
func (e *env) do(method, path string, body any, want int, headers ...string) obj {
	e.t.Helper()
	r := e.raw(method, path, body, headers...)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if r.status == http.StatusNoContent {
		if len(r.body) != 0 {
			e.t.Fatalf("%s %s: 204 with a body: %s", method, path, r.body)
		}
		return nil
	}
	return r.json(e.t)
}

// wantError requires a WorkOS error body of status and code.
func (e *env) wantError(method, path string, body any, status int, code string, headers ...string) obj {
	e.t.Helper()
	got := e.do(method, path, body, status, headers...)
	if got["code"] != code {
		e.t.Fatalf("%s %s: error code %v, want %q: %v", method, path, got["code"], code, got)
	}
	if msg, _ := got["message"].(string); msg == "" {
		e.t.Fatalf("%s %s: error without a message: %v", method, path, got)
	}
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		if errs, _ := got["errors"].([]any); len(errs) == 0 {
			e.t.Fatalf("%s %s: %d without errors: %v", method, path, status, got)
		}
	}
	return got
}

// ids returns the ids (or slugs) of a list response's data.
func ids(t testing.TB, list obj) []string {
	t.Helper()
	if list["object"] != "list" {
		t.Fatalf("not a list: %v", list)
	}
	data, ok := list["data"].([]any)
	if !ok {
		t.Fatalf("list without data: %v", list)
	}
	out := []string{}
	for _, d := range data {
		o := d.(obj)
		if id, ok := o["id"].(string); ok {
			out = append(out, id)
		} else {
			out = append(out, o["slug"].(string))
		}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// fixture is a small organization: types workspace ⊃ project; an
// environment org role, workspace and project roles; alice (org-member) and
// bob; workspaces eng and ops, project web under eng.
type fixture struct {
	org, root     string
	alice, bob    string
	eng, ops, web string
	aliceOnEngID  string
}

func (e *env) seed() fixture {
	e.t.Helper()
	var f fixture
	e.do("POST", "/authorization/resource_types", obj{"slug": "workspace", "name": "Workspace", "parent_type_slugs": []string{"organization"}}, 201)
	e.do("POST", "/authorization/resource_types", obj{"slug": "project", "name": "Project", "parent_type_slugs": []string{"workspace"}}, 201)
	for _, p := range []obj{
		{"slug": "org:read", "name": "Read org"},
		{"slug": "workspace:view", "name": "View workspace", "resource_type_slug": "workspace"},
		{"slug": "project:view", "name": "View project", "resource_type_slug": "project"},
		{"slug": "project:edit", "name": "Edit project", "resource_type_slug": "project"},
	} {
		e.do("POST", "/authorization/permissions", p, 201)
	}
	e.do("POST", "/authorization/roles", obj{"slug": "org-member", "name": "Member"}, 201)
	e.do("PUT", "/authorization/roles/org-member/permissions", obj{"permissions": []string{"org:read"}}, 200)
	e.do("POST", "/authorization/roles", obj{"slug": "workspace-admin", "name": "Workspace admin", "resource_type_slug": "workspace"}, 201)
	e.do("PUT", "/authorization/roles/workspace-admin/permissions", obj{"permissions": []string{"workspace:view", "project:view", "project:edit"}}, 200)
	e.do("POST", "/authorization/roles", obj{"slug": "project-viewer", "name": "Project viewer", "resource_type_slug": "project"}, 201)
	e.do("POST", "/authorization/roles/project-viewer/permissions", obj{"slug": "project:view"}, 200)

	org := e.do("POST", "/organizations", obj{"name": "Acme", "external_id": "acme"}, 201)
	f.org = str(org["id"])
	root := e.do("GET", "/authorization/organizations/"+f.org+"/resources/organization/"+f.org, nil, 200)
	f.root = str(root["id"])
	f.alice = str(e.do("POST", "/user_management/organization_memberships", obj{"organization_id": f.org, "user_id": "user_alice", "role_slug": "org-member"}, 201)["id"])
	f.bob = str(e.do("POST", "/user_management/organization_memberships", obj{"organization_id": f.org, "user_id": "user_bob"}, 201)["id"])
	f.eng = str(e.do("POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "eng", "name": "Engineering"}, 201)["id"])
	f.ops = str(e.do("POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "ops", "name": "Operations"}, 201)["id"])
	f.web = str(e.do("POST", "/authorization/resources", obj{"organization_id": f.org, "resource_type_slug": "project", "external_id": "web", "name": "Web",
		"parent_resource_external_id": "eng", "parent_resource_type_slug": "workspace"}, 201)["id"])
	r := e.raw("POST", "/authorization/organization_memberships/"+f.alice+"/role_assignments", obj{"role_slug": "workspace-admin", "resource_id": f.eng})
	if r.status != 201 {
		e.t.Fatalf("assign: %d %s", r.status, r.body)
	}
	f.aliceOnEngID = str(r.json(e.t)["id"])
	return f
}
