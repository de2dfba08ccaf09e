package workos_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/postgres/postgrestest"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
	"github.com/trellis-authz/trellis/policies"
)

// outageMaxConnections is the connection limit of the outage test's
// server: small, so that a test can take every slot.
const outageMaxConnections = 8

// TestDatabaseUnavailable: while PostgreSQL is stopped, out of connection
// slots, or cuts a write's connection at commit, writes on both APIs (and
// WorkOS entity reads) answer 503 with Retry-After, never 500, and once the
// database is back nothing of them was written.
func TestDatabaseUnavailable(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.NewCluster(t, fmt.Sprint("max_connections=", outageMaxConnections))
	dsn := cluster.NewDatabase(t)
	pg, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	h, err := workos.New(workos.Config{Store: workosdb.New(pg), Decider: svc, APIKeys: []string{testKey},
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: httptest.NewServer(h), h: h, eng: eng}
	t.Cleanup(e.srv.Close)
	admin := postgrestest.AdminServer(t, pg)

	e.do("POST", "/authorization/resource_types", obj{"slug": "workspace", "name": "Workspace", "parent_type_slugs": []string{"organization"}}, 201)
	org := str(e.do("POST", "/organizations", obj{"name": "Acme"}, 201)["id"])
	e.do("POST", "/authorization/resources", obj{"organization_id": org, "resource_type_slug": "workspace", "external_id": "eng", "name": "Eng"}, 201)
	head, err := pg.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	workosWrite := func(ext string) request {
		return request{"POST", "/authorization/resources", obj{"organization_id": org, "resource_type_slug": "workspace", "external_id": ext, "name": ext}}
	}
	adminWrite := func(ext string) []model.Change {
		res := func(id string) model.Change {
			return model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "authz_resource_" + id, OrganizationID: org,
				Type: "workspace", ExternalID: id, Name: id}}
		}
		return []model.Change{res(ext + "1"), res(ext + "2")}
	}
	// unchanged requires that the writes named ext were not made: no
	// resource of theirs, no new revision.
	unchanged := func(t *testing.T, exts ...string) {
		t.Helper()
		for _, ext := range exts {
			for _, x := range []string{ext, ext + "1", ext + "2"} {
				e.wantError("GET", byExt(org, "workspace", x), nil, 404, "entity_not_found")
			}
		}
		if h, err := pg.Head(ctx); err != nil || h != head {
			t.Errorf("head revision %d (%v) after refused writes, want %d", h, err, head)
		}
	}

	t.Run("server stopped", func(t *testing.T) {
		cluster.Stop(t)
		wantUnavailable(t, e, workosWrite("stopped"))
		wantUnavailable(t, e, request{"PATCH", byExt(org, "workspace", "eng"), obj{"name": "Renamed"}})
		wantUnavailable(t, e, request{"GET", byExt(org, "workspace", "eng"), nil})
		wantUnavailable(t, e, request{"GET", "/organizations", nil})
		wantAdminUnavailable(t, admin, adminWrite("stopped"))
		cluster.Start(t)
		unchanged(t, "stopped")
	})

	t.Run("connection slots taken", func(t *testing.T) {
		cluster.Stop(t) // drops the pool's connections
		cluster.Start(t)
		t.Run("taken", func(t *testing.T) {
			takeSlots(t, cluster.AdminURL())
			wantUnavailable(t, e, workosWrite("full"))
			wantUnavailable(t, e, request{"GET", "/organizations/" + org, nil})
			wantAdminUnavailable(t, admin, adminWrite("full"))
		}) // and given back
		unchanged(t, "full")
	})

	t.Run("connection cut at commit", func(t *testing.T) {
		// Commits wait for the revision lock (migrations/0002) while it is
		// held here; the waiting write's backend is then terminated.
		locker, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close()
		conn, err := locker.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cut := func(send func()) {
			if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7234100)"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(send)
			var pid int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				err := conn.QueryRowContext(ctx, `SELECT pid FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&pid)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no write waited for the revision lock: %v", err)
				}
			}
			if _, err := conn.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(7234100)"); err != nil {
				t.Fatal(err)
			}
		}
		cut(func() { wantUnavailable(t, e, workosWrite("cut")) })
		cut(func() { wantAdminUnavailable(t, admin, adminWrite("cut")) })
		unchanged(t, "cut")
	})

	// And writes work again.
	e.do("POST", "/authorization/resources", obj{"organization_id": org, "resource_type_slug": "workspace", "external_id": "after", "name": "After"}, 201)
	if got, err := postgrestest.PostChanges(admin, adminWrite("after")); err != nil || got.Status != http.StatusOK {
		t.Errorf("admin write after the outage: %+v, %v", got, err)
	}
}

// wantUnavailable sends r to the WorkOS API and requires a 503 unavailable
// with Retry-After. It may run on any goroutine.
func wantUnavailable(t testing.TB, e *env, r request) {
	t.Helper()
	res, err := e.send(r.method, r.path, r.body)
	if err != nil {
		t.Error(err)
		return
	}
	var b struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(res.body, &b)
	if res.status != http.StatusServiceUnavailable || b.Code != "unavailable" || res.header.Get("Retry-After") == "" {
		t.Errorf("%s %s: %d (Retry-After %q) %s, want 503 unavailable with Retry-After", r.method, r.path, res.status,
			res.header.Get("Retry-After"), res.body)
	}
}

// wantAdminUnavailable posts changes to the admin API and requires a 503
// unavailable with Retry-After. It may run on any goroutine.
func wantAdminUnavailable(t testing.TB, admin string, changes []model.Change) {
	t.Helper()
	got, err := postgrestest.PostChanges(admin, changes)
	if err != nil {
		t.Error(err)
		return
	}
	if got.Status != http.StatusServiceUnavailable || got.Code != "unavailable" || got.RetryAfter == "" {
		t.Errorf("admin write: %d (Retry-After %q) %s, want 503 unavailable with Retry-After", got.Status, got.RetryAfter, got.Body)
	}
}

// takeSlots opens connections to the server at dsn until it refuses one
// for want of slots (53300), and keeps them until the test ends.
func takeSlots(t testing.TB, dsn string) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	var conns []*sql.Conn
	for {
		c, err := db.Conn(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "53300") {
				t.Fatalf("take connection slot %d: %v", len(conns)+1, err)
			}
			break
		}
		if conns = append(conns, c); len(conns) > outageMaxConnections {
			t.Fatalf("the server accepted %d connections, more than its limit", len(conns))
		}
	}
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
}
