package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServePostgres drives the PostgreSQL mode end to end: migrate, load the
// demo, serve it, write through the admin route and read the write back
// with at_least_revision and fully_consistent.
func TestServePostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "status", "--database-url", dsn}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pending") {
		t.Errorf("migrate status on an empty database:\n%s", out.String())
	}
	out.Reset()
	t.Setenv("TRELLIS_DATABASE_URL", dsn)
	for _, args := range [][]string{{"migrate"}, {"migrate", "up"}, {"load"}} {
		if err := run(ctx, args, &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	if !strings.Contains(out.String(), "schema is up to date") || !strings.Contains(out.String(), "imported 2 organizations") {
		t.Errorf("output:\n%s", out.String())
	}

	url := startService(t, testConfig(t, "--api-key", "test-api-key-k-0123456789", "--poll-interval", "50ms"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && body["stale"] == false {
			if body["head"] == nil {
				t.Errorf("/ready lacks head: %v", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %d %v", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	checkCarol := func(consistency map[string]any) bool {
		t.Helper()
		status, got := post(t, url, "/v1/check", "test-api-key-k-0123456789", map[string]any{
			"subject":     map[string]any{"organization_membership_id": "om_carol"},
			"permission":  "project:edit",
			"resource":    map[string]any{"id": "authz_resource_acme_web"},
			"consistency": consistency,
		})
		if status != http.StatusOK {
			t.Fatalf("check: %d %v", status, got)
		}
		return got["allowed"] == true
	}
	if !checkCarol(nil) {
		t.Fatal("carol cannot edit web before the write")
	}
	status, got := post(t, url, "/v1/admin/changes", "", `{"changes":[]}`)
	if status != http.StatusUnauthorized {
		t.Errorf("admin write without a key: %d %v", status, got)
	}
	status, got = post(t, url, "/v1/admin/changes", "test-api-key-k-0123456789",
		`{"changes":[{"op":"delete","assignment":{"id":"role_assignment_carol_acme_web"}}]}`)
	if status != http.StatusOK {
		t.Fatalf("admin write: %d %v", status, got)
	}
	if checkCarol(map[string]any{"at_least_revision": got["revision"]}) {
		t.Error("at_least_revision: carol can still edit web")
	}
	status, got = post(t, url, "/v1/admin/changes", "test-api-key-k-0123456789",
		`{"changes":[{"op":"upsert","assignment":{"id":"role_assignment_carol_acme_web","membership_id":"om_carol","role":"project-editor","resource_id":"authz_resource_acme_web"}}]}`)
	if status != http.StatusOK {
		t.Fatalf("admin write: %d %v", status, got)
	}
	rev := got["revision"]
	if !checkCarol(map[string]any{"fully_consistent": true}) {
		t.Error("fully_consistent: carol cannot edit web after the assignment came back")
	}
	status, got = post(t, url, "/v1/admin/changes", "test-api-key-k-0123456789",
		`{"changes":[{"op":"upsert","resource":{"id":"authz_resource_x","organization_id":"org_acme","type":"project","external_id":"x","name":"X"}}]}`)
	if status != http.StatusUnprocessableEntity || got["code"] != "parent_type_not_allowed" {
		t.Errorf("invalid write: %d %v", status, got)
	}

	// Bundles come from a database snapshot, at the revision just written.
	req, err := http.NewRequest(http.MethodGet, url+"/bundles/trellis.tar.gz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-api-key-k-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("bundle: %d %v", resp.StatusCode, err)
	}
	b, err := bundle.Read(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(b.DataRevision) != fmt.Sprint(rev) {
		t.Errorf("bundle at data revision %d, want %v", b.DataRevision, rev)
	}
}
