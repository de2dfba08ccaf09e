// Package postgrestest helps tests of Trellis on PostgreSQL: it checks that
// a database holds only data the data model allows — plain SQL over the
// schema of package postgres, written independently of the write path it
// judges — and drives the admin write API.
package postgrestest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// rules are the cross-row rules of the data model (DESIGN.md §1), each a
// query that returns one line per violation.
var rules = []struct {
	name  string
	query string
	depth bool // the query takes the maximum depth as $1
}{
	{"depth", `WITH RECURSIVE down(id, d) AS (
			SELECT id, 1 FROM resources WHERE parent_id IS NULL
			UNION ALL SELECT r.id, down.d + 1 FROM resources r JOIN down ON r.parent_id = down.id WHERE down.d <= $1)
		SELECT id || ' is at depth ' || d FROM down WHERE d > $1`, true},
	// Every resource reachable from a root has a finite depth; one that is
	// not is on or under a loop of parent links.
	{"cycle", `WITH RECURSIVE down(id) AS (
			SELECT id FROM resources WHERE parent_id IS NULL
			UNION SELECT r.id FROM resources r JOIN down ON r.parent_id = down.id)
		SELECT id || ' is not below an organization root' FROM resources WHERE id NOT IN (SELECT id FROM down)`, false},
	{"parent_type_not_allowed", `SELECT r.id || ' (' || r.type || ') is under ' || p.id || ' (' || p.type || ')'
		FROM resources r JOIN resources p ON p.id = r.parent_id
		WHERE NOT EXISTS (SELECT 1 FROM resource_type_parents tp WHERE tp.resource_type = r.type AND tp.parent_type = p.type)`, false},
	{"cross_organization", `SELECT r.id || ' is in ' || r.organization_id || ', its parent in ' || p.organization_id
		FROM resources r JOIN resources p ON p.id = r.parent_id WHERE r.organization_id <> p.organization_id
		UNION ALL SELECT a.id || ': membership in ' || m.organization_id || ', resource in ' || r.organization_id
		FROM role_assignments a JOIN organization_memberships m ON m.id = a.membership_id JOIN resources r ON r.id = a.resource_id
		WHERE m.organization_id <> r.organization_id`, false},
	{"type_cycle", `WITH RECURSIVE up(t, a) AS (
			SELECT resource_type, parent_type FROM resource_type_parents
			UNION SELECT up.t, p.parent_type FROM up JOIN resource_type_parents p ON p.resource_type = up.a)
		SELECT 'resource type ' || t || ' is its own ancestor' FROM up WHERE t = a`, false},
	{"permission_type_not_allowed", `WITH RECURSIVE below(t, d) AS (
			SELECT slug, slug FROM resource_types
			UNION SELECT below.t, p.resource_type FROM below JOIN resource_type_parents p ON p.parent_type = below.d)
		SELECT 'role ' || r.slug || ' (' || r.resource_type || ') holds ' || p.slug || ' (' || p.resource_type || ')'
		FROM roles r JOIN role_permissions rp ON rp.role_id = r.id JOIN permissions p ON p.id = rp.permission_id
		WHERE r.resource_type <> 'organization'
		  AND NOT EXISTS (SELECT 1 FROM below WHERE below.t = r.resource_type AND below.d = p.resource_type)`, false},
	{"role_type_mismatch", `SELECT a.id || ': role ' || ro.slug || ' (' || ro.resource_type || ') on ' || r.id || ' (' || r.type || ')'
		FROM role_assignments a JOIN roles ro ON ro.id = a.role_id JOIN resources r ON r.id = a.resource_id
		WHERE ro.resource_type <> r.type
		UNION ALL SELECT m.id || ' has organization role ' || ro.slug || ' of type ' || ro.resource_type
		FROM membership_roles mr JOIN organization_memberships m ON m.id = mr.membership_id JOIN roles ro ON ro.id = mr.role_id
		WHERE ro.resource_type <> 'organization'`, false},
	{"foreign_role", `SELECT a.id || ' assigns role ' || ro.slug || ' of ' || ro.organization_id || ' in ' || m.organization_id
		FROM role_assignments a JOIN roles ro ON ro.id = a.role_id JOIN organization_memberships m ON m.id = a.membership_id
		WHERE ro.organization_id <> m.organization_id
		UNION ALL SELECT m.id || ' has role ' || ro.slug || ' of ' || ro.organization_id
		FROM membership_roles mr JOIN organization_memberships m ON m.id = mr.membership_id JOIN roles ro ON ro.id = mr.role_id
		WHERE ro.organization_id <> m.organization_id`, false},
	{"duplicate", `SELECT 'role slug ' || e.slug || ' is an environment role and a role of ' || o.organization_id
		FROM roles e JOIN roles o ON o.slug = e.slug AND o.organization_id IS NOT NULL
		WHERE e.organization_id IS NULL`, false},
}

// Violations returns one line per row of the database that breaks a
// cross-row rule of the data model, with the rule's code first (e.g.
// "depth: authz_resource_x is at depth 6"); none when the data is valid.
// maxDepth is the deepest tree allowed, the organization root included.
func Violations(ctx context.Context, db sqlx.QueryerContext, maxDepth int) ([]string, error) {
	var out []string
	for _, r := range rules {
		var args []any
		if r.depth {
			args = append(args, maxDepth)
		}
		var lines []string
		if err := sqlx.SelectContext(ctx, db, &lines, r.query, args...); err != nil {
			return nil, fmt.Errorf("check %s: %w", r.name, err)
		}
		for _, l := range lines {
			out = append(out, r.name+": "+l)
		}
	}
	return out, nil
}

// AdminServer serves the admin write API (postgres.NewAdminHandler) of w,
// every request authorized, until the test ends; it returns the base URL.
func AdminServer(t testing.TB, w postgres.Writer) string {
	t.Helper()
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: w, Authorize: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// AdminAnswer is a response of the admin write API.
type AdminAnswer struct {
	Status     int
	Code       string // the error code, "" on success
	RetryAfter string // the Retry-After header
	Body       string
}

// PostChanges sends changes to POST /v1/admin/changes of the server at
// base. It is safe for concurrent use.
func PostChanges(base string, changes []model.Change) (AdminAnswer, error) {
	var req postgres.AdminRequest
	for _, c := range changes {
		req.Changes = append(req.Changes, postgres.WireChange{Op: c.Op, Organization: c.Organization, Membership: c.Membership,
			ResourceType: c.ResourceType, Permission: c.Permission, Role: c.Role, Resource: c.Resource, Assignment: c.Assignment})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return AdminAnswer{}, err
	}
	res, err := http.Post(base+postgres.AdminPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return AdminAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return AdminAnswer{}, err
	}
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &e)
	return AdminAnswer{Status: res.StatusCode, Code: e.Code, RetryAfter: res.Header.Get("Retry-After"), Body: string(b)}, nil
}
