package postgres_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestAdminHandlerRejectsBadInput: a NUL byte or invalid UTF-8 in any
// string, and an id not of its documented shape, is a 400 invalid_request
// naming the field, and writes nothing.
func TestAdminHandlerRejectsBadInput(t *testing.T) {
	s := demoStore(t)
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: s, Authorize: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// resource is a valid upsert of a new resource, with old replaced by repl.
	resource := func(old, repl string) string {
		valid := `{"changes": [{"op": "upsert", "resource": {"id": "authz_resource_new", "organization_id": "org_acme", "type": "workspace", "external_id": "new", "name": "New"}}]}`
		return strings.Replace(valid, old, repl, 1)
	}
	tests := []struct {
		name, body, message string // message: the start of the answer's message
	}{
		{"escaped NUL in a name", `{"changes": [{"op": "upsert", "organization": {"id": "org_new", "name": "N\u0000"}}]}`,
			"changes[0].organization.name contains a NUL byte"},
		{"raw NUL in a name", resource(`"New"`, "\"N\x00\""), "changes[0].resource.name contains a NUL byte"},
		{"raw invalid UTF-8 in an external id", resource(`"new", "name"`, "\"new\xff\", \"name\""),
			"changes[0].resource.external_id is not valid UTF-8"},
		{"lone surrogate in a description", resource(`"New"`, `"New", "description": "\udbff"`),
			"changes[0].resource.description is not valid UTF-8"},
		{"NUL in a second change", `{"changes": [{"op": "delete", "assignment": {"id": "role_assignment_carol_acme_web"}},
			{"op": "upsert", "role": {"slug": "r\u0000", "name": "R", "resource_type": "organization", "permissions": []}}]}`,
			"changes[1].role.slug contains a NUL byte"},
		{"NUL in a permission list", `{"changes": [{"op": "upsert", "role": {"slug": "r", "name": "R", "resource_type": "organization", "permissions": ["org:view", "\u0000"]}}]}`,
			"changes[0].role.permissions[1] contains a NUL byte"},
		{"resource id without its prefix", resource("authz_resource_new", "new"),
			`changes[0].resource.id must be "authz_resource_"`},
		{"membership id with a space", `{"changes": [{"op": "upsert", "membership": {"id": "om_a b", "user_id": "user_a", "organization_id": "org_acme", "status": "active", "role_slugs": []}}]}`,
			"changes[0].membership.id may hold only"},
		{"user id without its prefix", `{"changes": [{"op": "upsert", "membership": {"id": "om_ab", "user_id": "alice", "organization_id": "org_acme", "status": "active", "role_slugs": []}}]}`,
			`changes[0].membership.user_id must be "user_"`},
		{"organization id of another kind", resource(`"org_acme"`, `"om_acme"`),
			`changes[0].resource.organization_id must be "org_"`},
		{"parent by type:external_id", resource(`"New"`, `"New", "parent_id": "workspace:acme-eng"`),
			`changes[0].resource.parent_id must be "authz_resource_"`},
		{"parent id with a colon", resource(`"New"`, `"New", "parent_id": "authz_resource_a:b"`),
			"changes[0].resource.parent_id may hold only"},
		{"assignment on an organization id", `{"changes": [{"op": "upsert", "assignment": {"id": "role_assignment_x", "membership_id": "om_carol", "role": "project-editor", "resource_id": "org_acme"}}]}`,
			`changes[0].assignment.resource_id must be "authz_resource_"`},
		{"deleted assignment id too long", `{"changes": [{"op": "delete", "assignment": {"id": "role_assignment_` + strings.Repeat("x", 300) + `"}}]}`,
			"changes[0].assignment.id is 316 bytes long"},
		{"organization root id of another kind", `{"changes": [{"op": "upsert", "organization": {"id": "org_new", "name": "N", "root_resource_id": "root_new"}}]}`,
			`changes[0].organization.root_resource_id must be "authz_resource_"`},
		{"group id without its prefix", `{"changes": [{"op": "upsert", "group": {"id": "platform", "organization_id": "org_acme", "name": "P"}}]}`,
			`changes[0].group.id must be "group_"`},
		{"group member of a membership id of another kind", `{"changes": [{"op": "upsert", "group_member": {"group_id": "group_p", "membership_id": "user_carol"}}]}`,
			`changes[0].group_member.membership_id must be "om_"`},
		{"group assignment id of another kind", `{"changes": [{"op": "upsert", "assignment": {"id": "om_x", "group_id": "group_p", "role": "project-editor", "resource_id": "authz_resource_acme_web"}}]}`,
			`changes[0].assignment.id must be "gra_"`},
		{"role of an organization without its prefix", `{"changes": [{"op": "upsert", "role": {"slug": "r", "name": "R", "resource_type": "organization", "organization_id": "acme", "permissions": []}}]}`,
			`changes[0].role.organization_id must be "org_"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, postgres.AdminPath, strings.NewReader(tc.body)))
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %d is not a JSON object: %s", rec.Code, rec.Body)
			}
			if rec.Code != http.StatusBadRequest || got["code"] != "invalid_request" || !strings.HasPrefix(got["message"], tc.message) {
				t.Fatalf("got %d %v, want 400 invalid_request with a message starting %q", rec.Code, got, tc.message)
			}
		})
	}
	after, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision {
		t.Errorf("revision moved from %d to %d", before.Revision, after.Revision)
	}
	if d := cmp.Diff(sortDataset(before), sortDataset(after)); d != "" {
		t.Errorf("the refused requests changed the data (-before +after):\n%s", d)
	}
}

// TestAdminHandlerWritesGroups: groups, their members and group role
// assignments are written through the admin API like any change, and read
// back by the snapshot.
func TestAdminHandlerWritesGroups(t *testing.T) {
	s := demoStore(t)
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: s, Authorize: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"changes": [
		{"op": "upsert", "group": {"id": "group_platform", "organization_id": "org_acme", "name": "Platform"}},
		{"op": "upsert", "group_member": {"group_id": "group_platform", "membership_id": "om_carol"}},
		{"op": "upsert", "assignment": {"id": "gra_platform_web", "group_id": "group_platform", "role": "project-editor", "resource_id": "authz_resource_acme_web"}}]}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, postgres.AdminPath, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	ds, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, g := range ds.Groups {
		if g.ID == "group_platform" {
			found++
		}
	}
	for _, gm := range ds.GroupMembers {
		if gm.GroupID == "group_platform" && gm.MembershipID == "om_carol" {
			found++
		}
	}
	for _, a := range ds.Assignments {
		if a.ID == "gra_platform_web" && a.GroupID == "group_platform" {
			found++
		}
	}
	if found != 3 {
		t.Fatalf("the snapshot holds %d of the 3 group rows written: groups %v, members %v", found, ds.Groups, ds.GroupMembers)
	}
}

// TestAdminHandlerAcknowledges: a successful write tells Acknowledged its
// revision before answering it; a refused one tells nothing.
func TestAdminHandlerAcknowledges(t *testing.T) {
	s := demoStore(t)
	var acked []int64
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: s, Authorize: func(*http.Request) bool { return true },
		Acknowledged: func(_ context.Context, rev int64) { acked = append(acked, rev) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"write", `{"changes": [{"op": "upsert", "organization": {"id": "org_new", "name": "New"}}]}`, http.StatusOK},
		{"refused", `{"changes": [{"op": "delete", "assignment": {"id": "role_assignment_nothing"}}]}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(acked)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", postgres.AdminPath, strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != http.StatusOK {
				if len(acked) != before {
					t.Fatalf("a refused write was acknowledged: %v", acked)
				}
				return
			}
			var got postgres.AdminResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(acked) != before+1 || acked[before] != got.Revision || got.Revision <= 0 {
				t.Fatalf("acknowledged %v for a write answered at revision %d", acked, got.Revision)
			}
		})
	}
}
