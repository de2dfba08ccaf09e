package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/workos/sdktest"
)

// TestServeEventsMatchEntities: as `trellis serve --database-url` mounts
// it, each event's data is what GET on the entity answered right after the
// write — the oracle is the WorkOS-compatible API itself.
func TestServeEventsMatchEntities(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"schema", "apply", writeFile(t, t.TempDir(), "schema.yaml", []byte(testSchema)), "--database-url", dsn}, &out, &out); err != nil {
		t.Fatalf("schema apply: %v\n%s", err, out.String())
	}
	url := startService(t, testConfig(t, "--database-url", dsn, "--api-key", "test-api-key-1-0123456789", "--default-role", "member", "--poll-interval", "50ms"))

	type write struct {
		method, path string
		body         map[string]any
		get          string // the entity's GET path, "" for the created one's
		event        string
	}
	var orgID, omID string
	steps := []func() write{
		func() write {
			return write{"POST", "/organizations", map[string]any{"name": "Acme"}, "/organizations/", "organization.created"}
		},
		func() write {
			return write{"PUT", "/organizations/" + orgID, map[string]any{"name": "Acme Inc", "metadata": map[string]any{"tier": "gold"}}, "/organizations/" + orgID, "organization.updated"}
		},
		func() write {
			return write{"POST", "/user_management/organization_memberships", map[string]any{"organization_id": orgID, "user_id": "user_1"}, "/user_management/organization_memberships/", "organization_membership.created"}
		},
		func() write {
			return write{"POST", "/authorization/resources", map[string]any{"organization_id": orgID, "resource_type_slug": "workspace", "external_id": "eng", "name": "Engineering"}, "/authorization/resources/", "trellis.authorization_resource.created"}
		},
		func() write {
			return write{"POST", "/authorization/permissions", map[string]any{"slug": "workspace:view", "name": "View", "resource_type_slug": "workspace"}, "/authorization/permissions/", "permission.created"}
		},
	}
	for i, step := range steps {
		w := step()
		status, got := call(t, w.method, url+w.path, "test-api-key-1-0123456789", w.body)
		if status != http.StatusOK && status != http.StatusCreated {
			t.Fatalf("step %d %s %s: %d %v", i, w.method, w.path, status, got)
		}
		id, _ := got["id"].(string)
		switch i {
		case 0:
			orgID = id
		case 2:
			omID = id
		}
		getPath := w.get
		if strings.HasSuffix(getPath, "/") {
			getPath += id
			if w.event == "permission.created" {
				getPath = w.get + "workspace:view"
			}
		}
		_, entity := call(t, "GET", url+getPath, "test-api-key-1-0123456789", nil)
		status, page := call(t, "GET", url+"/events?order=desc&limit=1", "test-api-key-1-0123456789", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /events: %d %v", status, page)
		}
		ev := page["data"].([]any)[0].(map[string]any)
		if ev["event"] != w.event || ev["object"] != "event" {
			t.Errorf("step %d: newest event %v %v, want %s", i, ev["event"], ev["object"], w.event)
		}
		if diff := cmp.Diff(entity, ev["data"]); diff != "" {
			t.Errorf("step %d %s: event data differs from GET %s (-GET +event):\n%s", i, w.event, getPath, diff)
		}
	}
	if omID == "" {
		t.Fatal("no membership id")
	}
	// The membership was created with the default role in one request:
	// one event carrying it.
	_, page := call(t, "GET", url+"/events?events=organization_membership.created,organization_membership.updated", "test-api-key-1-0123456789", nil)
	if n := len(page["data"].([]any)); n != 1 {
		t.Errorf("%d membership events for one create, want 1", n)
	}
}

// TestEventsWithoutDatabase: a data file has no change stream.
func TestEventsWithoutDatabase(t *testing.T) {
	url := startService(t, testConfig(t, "--api-key", "test-api-key-1-0123456789"))
	for _, path := range []string{"/events", "/webhook_endpoints", "/v1/watch"} {
		status, body := call(t, "GET", url+path, "test-api-key-1-0123456789", nil)
		if status != http.StatusNotImplemented || body["code"] != "no_database" {
			t.Errorf("%s: %d %v, want 501 no_database", path, status, body)
		}
	}
}

// TestEventsNodeSDK drives the change stream with the official WorkOS Node
// SDK (internal/workos/sdktest/events.mjs): listEvents, webhook endpoints
// and constructEvent on real deliveries from this server's deliverer.
func TestEventsNodeSDK(t *testing.T) {
	if testing.Short() || os.Getenv("TRELLIS_SKIP_SDK_TEST") == "1" {
		t.Skip("skipped on request (-short or TRELLIS_SKIP_SDK_TEST=1)")
	}
	dir := sdktest.Dir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := startService(t, testConfig(t, "--database-url", pgtest.URL(t), "--api-key", "test-api-key-1-0123456789", "--poll-interval", "50ms"))
	node := exec.CommandContext(ctx, "node", "events.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "TRELLIS_URL="+url, "TRELLIS_API_KEY=test-api-key-1-0123456789", "NODE_NO_WARNINGS=1")
	out, err := node.CombinedOutput()
	if err != nil {
		t.Fatalf("node events.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
