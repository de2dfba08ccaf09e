package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
)

// demoDatabase returns the URL of a new database holding ds (the demo when
// nil), and raw SQL access to it.
func demoDatabase(t *testing.T, ds *model.Dataset) (string, *sqlx.DB) {
	t.Helper()
	dsn := pgtest.URL(t)
	if ds == nil {
		ds = datafile.Demo()
	}
	if _, err := importDataset(context.Background(), dsn, ds, io.Discard); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return dsn, db
}

// ready polls /ready until it answers 200 with cond holding on its body.
func ready(t *testing.T, url string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := get(t, url+"/ready")
		if status == http.StatusOK && cond(body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready: %d %v", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func quarantinedAre(want ...string) func(map[string]any) bool {
	return func(body map[string]any) bool {
		got := []string{}
		for _, o := range body["quarantined_organizations"].([]any) {
			got = append(got, o.(string))
		}
		return slices.Equal(got, want)
	}
}

func subjectCheck(om, perm, rid string) map[string]any {
	return map[string]any{"subject": map[string]any{"organization_membership_id": om}, "permission": perm, "resource": map[string]any{"id": rid}}
}

func workosCheck(url, om string) string {
	return url + "/authorization/organization_memberships/" + om + "/check"
}

// setParent changes a resource's parent in raw SQL, around every rule of
// Trellis's write path; unlogged, no trigger fires and only a snapshot sees
// it (as after a restore).
func setParent(t *testing.T, db *sqlx.DB, id, parent string, logged bool) {
	t.Helper()
	tx, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if !logged {
		if _, err := tx.Exec("SET LOCAL session_replication_role = replica"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec("UPDATE resources SET parent_id = $1, updated_at = now() WHERE id = $2", parent, id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A restart on a database where one organization's rows break a rule
// serves every other organization; the broken one answers 503
// organization_unavailable on the native and WorkOS routes, is listed in
// /ready and /metrics, has no organization bundle, and comes back once a
// valid change repairs it.
func TestServePostgresQuarantine(t *testing.T) {
	dsn, db := demoDatabase(t, nil)
	// Engineering under its own project Web app: a cycle in org_acme.
	setParent(t, db, "authz_resource_acme_eng", "authz_resource_acme_web", false)

	url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-k-0123456789", "--poll-interval", "50ms"))
	ready(t, url, quarantinedAre("org_acme"))
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, scrape(t, url), "trellis_quarantined_organizations") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("trellis_quarantined_organizations is not 1")
		}
		time.Sleep(50 * time.Millisecond)
	}

	down := []answer{
		send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_bob", "project:edit", "authz_resource_acme_api")),
		send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", map[string]any{"permission": "project:edit", "resource": map[string]any{"id": "authz_resource_acme_api"}, "subject": map[string]any{"organization_membership_id": "om_nobody"}}),
		send(t, "POST", workosCheck(url, "om_bob"), "test-api-key-k-0123456789", map[string]any{"permission_slug": "project:edit", "resource_id": "authz_resource_acme_api"}),
		send(t, "GET", url+"/authorization/organization_memberships/om_bob/resources?permission_slug=project:edit&parent_resource_id=authz_resource_acme_eng", "test-api-key-k-0123456789", nil),
		send(t, "GET", url+"/bundles/orgs/org_acme.tar.gz", "test-api-key-k-0123456789", nil),
	}
	for i, a := range down {
		if a.status != http.StatusServiceUnavailable || a.body["code"] != "organization_unavailable" || a.retryAfter == "" {
			t.Errorf("request %d about the quarantined organization: %d %v (Retry-After %q)", i, a.status, a.body, a.retryAfter)
		}
	}
	if a := send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_erin", "project:view", "authz_resource_globex_lab")); a.status != http.StatusOK || a.body["allowed"] != true {
		t.Errorf("native check in the other organization: %d %v", a.status, a.body)
	}
	if a := send(t, "POST", workosCheck(url, "om_erin"), "test-api-key-k-0123456789", map[string]any{"permission_slug": "project:view", "resource_id": "authz_resource_globex_lab"}); a.status != http.StatusOK || a.body["authorized"] != true {
		t.Errorf("WorkOS check in the other organization: %d %v", a.status, a.body)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/bundles/orgs/org_globex.tar.gz", nil)
	req.Header.Set("Authorization", "Bearer test-api-key-k-0123456789")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the other organization's bundle: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A valid change repairs it: Engineering back under the root.
	setParent(t, db, "authz_resource_acme_eng", model.RootResourceID("org_acme"), true)
	ready(t, url, quarantinedAre())
	if a := send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_bob", "project:edit", "authz_resource_acme_api")); a.status != http.StatusOK || a.body["allowed"] != true {
		t.Errorf("after the repair: %d %v", a.status, a.body)
	}
}

// A data file with one organization that breaks a rule is served for the
// others; the bundle built from it leaves the organization out.
func TestServeDataFileQuarantine(t *testing.T) {
	demo, err := os.ReadFile(filepath.Join("..", "..", "internal", "datafile", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(demo), "\nresources:\n", `
resources:
  - {id: authz_resource_globex_orphan, organization_id: org_globex, type: project, external_id: orphan, name: Orphan, parent: "workspace:nope"}
`, 1)
	if bad == string(demo) {
		t.Fatal("the demo file has no resources section")
	}
	file := filepath.Join(t.TempDir(), "data.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startService(t, testConfig(t, "--data", file, "--api-key", "test-api-key-k-0123456789"))
	ready(t, url, quarantinedAre("org_globex"))
	if got := metricValue(t, scrape(t, url), "trellis_quarantined_organizations"); got != 1 {
		t.Errorf("trellis_quarantined_organizations = %v", got)
	}
	if a := send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_erin", "project:view", "authz_resource_globex_lab")); a.status != http.StatusServiceUnavailable || a.body["code"] != "organization_unavailable" {
		t.Errorf("check in the quarantined organization: %d %v", a.status, a.body)
	}
	if a := send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_bob", "project:edit", "authz_resource_acme_api")); a.status != http.StatusOK || a.body["allowed"] != true {
		t.Errorf("check in the other organization: %d %v", a.status, a.body)
	}

	var stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := run(context.Background(), []string{"bundle", "build", "--data", file, "--out", out}, io.Discard, &stderr); err != nil {
		t.Fatalf("bundle build: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "quarantined, left out of the bundle: organization org_globex") {
		t.Errorf("bundle build does not say what it left out:\n%s", stderr.String())
	}
	err = run(context.Background(), []string{"bundle", "build", "--data", file, "--out", out, "--org", "org_globex"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "quarantined") {
		t.Errorf("bundle build of the quarantined organization: %v", err)
	}
}

// From the start of the process until the first snapshot is loaded — held
// back here by a lock on the resources table — every decision route
// answers 503 not_ready with Retry-After, never a 200 deny; then it
// decides.
func TestStartupIsNotReadyUntilLoaded(t *testing.T) {
	dsn, db := demoDatabase(t, nil)
	lock, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback() }()
	if _, err := lock.Exec("LOCK TABLE resources IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-k-0123456789", "--poll-interval", "50ms"))
	requests := []func() answer{
		func() answer {
			return send(t, "POST", url+"/v1/check", "test-api-key-k-0123456789", subjectCheck("om_bob", "project:edit", "authz_resource_acme_api"))
		},
		func() answer {
			return send(t, "POST", url+"/v1/list-resources", "test-api-key-k-0123456789", map[string]any{"subject": map[string]any{"organization_membership_id": "om_bob"}, "permission": "project:edit"})
		},
		func() answer {
			return send(t, "POST", workosCheck(url, "om_bob"), "test-api-key-k-0123456789", map[string]any{"permission_slug": "project:edit", "resource_id": "authz_resource_acme_api"})
		},
	}
	start, released := time.Now(), false
	var notReady, decided int
	for i := 0; decided < len(requests); i++ {
		if time.Since(start) > 30*time.Second || i > 20000 {
			t.Fatalf("no decision %v after start (%d not_ready answers)", time.Since(start), notReady)
		}
		if !released && notReady >= 60 && time.Since(start) > 300*time.Millisecond {
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
			released = true
		}
		a := requests[i%len(requests)]()
		switch {
		case a.status == http.StatusServiceUnavailable && a.body["code"] == "not_ready" && a.retryAfter == "1":
			if decided > 0 {
				t.Fatalf("not_ready after a decision: %v", a.body)
			}
			notReady++
		case a.status == http.StatusOK && released:
			decided++
		default:
			t.Fatalf("answer %d before ready (lock released: %v): %d %v (Retry-After %q)", i, released, a.status, a.body, a.retryAfter)
		}
		if status, _ := get(t, url+"/ready"); status == http.StatusOK && !released {
			t.Fatal("ready while the snapshot cannot be read")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("%d not_ready answers in %v, then decisions", notReady, time.Since(start))
}

// A subject of one organization asking about another organization's
// resources gets byte for byte the answer it would get if that
// organization did not exist (decision ids and revisions aside), on every
// decision route, native and WorkOS, for token and membership subjects.
func TestNoExistenceOracleAcrossTenants(t *testing.T) {
	signer := newSigner(t, "k1")
	jwks := newJWKSServer(t, signer)
	demo := datafile.Demo()
	withoutGlobex := demo.Without([]model.Problem{{Entity: "test", Organizations: []string{"org_globex"}}})
	withoutGlobex.Quarantined = nil
	serve := func(ds *model.Dataset) string {
		dsn, _ := demoDatabase(t, ds)
		url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-k-0123456789", "--poll-interval", "50ms",
			"--jwks-url", jwks.URL, "--issuer", testIssuer, "--decision-cache-size", "0"))
		ready(t, url, func(map[string]any) bool { return true })
		return url
	}
	world, alone := serve(demo), serve(withoutGlobex)

	tok := mint(t, signer, devToken{"om_bob", "org_acme", "user_bob", "org-member", []string{"project:view", "workspace:view", "app:view"}}, time.Hour)
	byID := map[string]any{"id": "authz_resource_globex_lab"}
	root := map[string]any{"id": model.RootResourceID("org_globex")}
	byExt := map[string]any{"type": "project", "external_id": "lab", "organization_id": "org_globex"}
	subjects := map[string]map[string]any{
		"token":      {"token": tok},
		"membership": {"subject": map[string]any{"organization_membership_id": "om_bob"}},
	}
	type request struct {
		method, path string
		body         any
	}
	var requests []request
	for _, sub := range subjects {
		with := func(m map[string]any) map[string]any {
			out := map[string]any{}
			for k, v := range sub {
				out[k] = v
			}
			for k, v := range m {
				out[k] = v
			}
			return out
		}
		for _, ref := range []map[string]any{byID, root, byExt} {
			requests = append(requests,
				request{"POST", "/v1/check", with(map[string]any{"permission": "project:view", "resource": ref})},
				request{"POST", "/v1/check/batch", with(map[string]any{"checks": []any{
					map[string]any{"permission": "project:view", "resource": ref},
					map[string]any{"permission": "nope:nope", "resource": ref},
				}})},
				request{"POST", "/v1/effective-permissions", with(map[string]any{"resource": ref})},
				request{"POST", "/v1/list-resources", with(map[string]any{"permission": "project:view", "parent": ref})},
				request{"POST", "/v1/data/trellis/check", map[string]any{"input": with(map[string]any{"permission": "project:view", "resource": ref})}},
				request{"POST", "/v1/data/trellis/effective_permissions", map[string]any{"input": with(map[string]any{"resource": ref})}},
			)
		}
		requests = append(requests,
			request{"POST", "/v1/list-resources", with(map[string]any{"permission": "project:view", "organization_id": "org_globex"})},
			request{"POST", "/v1/data/trellis/list_resources", map[string]any{"input": with(map[string]any{"permission": "project:view", "organization_id": "org_globex"})}},
		)
	}
	const om = "/authorization/organization_memberships/om_bob"
	requests = append(requests,
		request{"POST", om + "/check", map[string]any{"permission_slug": "project:view", "resource_id": "authz_resource_globex_lab"}},
		request{"POST", om + "/check", map[string]any{"permission_slug": "project:view", "resource_id": model.RootResourceID("org_globex")}},
		request{"GET", om + "/resources?permission_slug=project:view&parent_resource_id=authz_resource_globex_rnd", nil},
		request{"GET", "/authorization/resources/authz_resource_globex_lab/organization_memberships/om_bob/permissions", nil},
	)
	for _, rq := range requests {
		got, want := send(t, rq.method, world+rq.path, "test-api-key-k-0123456789", rq.body), send(t, rq.method, alone+rq.path, "test-api-key-k-0123456789", rq.body)
		for _, a := range []answer{got, want} {
			delete(a.body, "decision_id")
			delete(a.body, "revision")
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(answer{})); diff != "" {
			t.Errorf("%s %s %v: the answer tells another organization's resource from none (-none +existing):\n%s", rq.method, rq.path, rq.body, diff)
		}
		if got.status == http.StatusOK && (got.body["allowed"] == true || got.body["authorized"] == true) {
			t.Errorf("%s %s: allowed across organizations: %v", rq.method, rq.path, got.body)
		}
		if raw, _ := json.Marshal(got.body); strings.Contains(string(raw), `"organization_id":"org_globex"`) || strings.Contains(string(raw), "Research") {
			t.Errorf("%s %s: the answer names another organization's data: %s", rq.method, rq.path, raw)
		}
	}
	t.Logf("%d requests compared", len(requests))
}
