package workos_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/requestid"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
	"github.com/trellis-authz/trellis/policies"
)

// instance is one Trellis server on a shared database, wired as `trellis
// serve --database-url --poll-only` wires it: the native API and the WorkOS
// API on one mux, over one service layer, fed by a follower that only polls,
// so a change reaches the engine up to a poll interval after its commit.
// opts adjust the service's configuration.
func instance(t testing.TB, dsn string, opts ...func(*authz.Config)) *env {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	pg, cfg := followedPostgres(t, eng, dsn, postgres.FollowerConfig{PollInterval: 40 * time.Millisecond, NoListen: true})
	acfg := authz.Config{Engine: eng, Head: cfg.Head, MaxWait: 5 * time.Second, DecisionCacheSize: 1000}
	for _, o := range opts {
		o(&acfg)
	}
	svc, err := authz.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testLog{t}, nil))
	native, err := httpapi.New(httpapi.Config{Service: svc, APIKeys: []string{testKey}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := workos.New(workos.Config{Store: workosdb.New(pg), Replays: workosdb.NewReplays(pg), Decider: svc, APIKeys: []string{testKey}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", native)
	for _, p := range workos.PathPrefixes {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(requestid.Handler(mux))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, eng: eng, svc: svc}
}

// decisions asks one question — may bob view web? — on every decision
// route of e: the native check, the WorkOS check and the OPA Data API, with
// the revision rev when it is not 0 (native consistency, WorkOS header).
func (e *env) decisions(f fixture, rev int64) map[string]bool {
	e.t.Helper()
	var workosHeaders []string
	if rev != 0 {
		workosHeaders = []string{workos.HeaderRevision, strconv.FormatInt(rev, 10)}
	}
	out := map[string]bool{}
	subject := obj{"organization_membership_id": f.bob}
	resource := obj{"id": f.web}
	body := obj{"subject": subject, "permission": "project:view", "resource": resource}
	if rev != 0 {
		body["consistency"] = obj{"at_least_revision": rev}
	}
	out["/v1/check"] = e.do("POST", "/v1/check", body, 200)["allowed"].(bool)
	out["workos check"] = e.do("POST", "/authorization/organization_memberships/"+f.bob+"/check",
		obj{"permission_slug": "project:view", "resource_id": f.web}, 200, workosHeaders...)["authorized"].(bool)
	if rev == 0 {
		res := e.do("POST", "/v1/data/trellis/check", obj{"input": obj{"subject": subject, "permission": "project:view", "resource": resource}}, 200)
		out["/v1/data"] = res["result"].(obj)["allowed"].(bool)
	}
	return out
}

// TestReadYourWrites alternates 200 writes through the WorkOS routes
// (assign bob a role on web, remove it) with a check on every decision route
// right after each: every answer reflects the write acknowledged just
// before, although the follower only learns of it on its next poll. The
// write is answered once the engine has applied it.
func TestReadYourWrites(t *testing.T) {
	e := instance(t, pgtest.URL(t))
	f := e.seed()
	stale := 0
	for i := range 200 {
		var rev int64
		assigned := i%2 == 0
		if assigned {
			r := e.raw("POST", "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web})
			if r.status != 201 {
				t.Fatalf("write %d: %d %s", i, r.status, r.body)
			}
			rev, _ = strconv.ParseInt(r.header.Get(workos.HeaderRevision), 10, 64)
		} else {
			r := e.raw("DELETE", "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web})
			if r.status != 204 {
				t.Fatalf("write %d: %d %s", i, r.status, r.body)
			}
			rev, _ = strconv.ParseInt(r.header.Get(workos.HeaderRevision), 10, 64)
		}
		if rev <= 0 || e.svc.AcknowledgedRevision() < rev {
			t.Fatalf("write %d: revision header %d, acknowledged %d", i, rev, e.svc.AcknowledgedRevision())
		}
		if applied := e.eng.Revision(); applied < rev { // the write, not the decisions after it, waited for the poll
			t.Fatalf("write %d answered at revision %d before the engine applied it (at %d)", i, rev, applied)
		}
		for route, got := range e.decisions(f, 0) {
			if got != assigned {
				stale++
				t.Errorf("write %d (assigned %v, revision %d): %s answered %v", i, assigned, rev, route, got)
			}
		}
	}
	if stale != 0 {
		t.Fatalf("%d stale answers of 600", stale)
	}
}

// TestReadYourWritesAcrossInstances writes through one instance and checks
// on another of the same database, 40 times, assigning and removing a
// role: either with the revision the write returned (the second instance
// waits until it has applied it), or with no revision at all on an
// instance that runs fully consistent (as the WorkOS SDK needs: it reads
// the database head for each request and waits for it).
func TestReadYourWritesAcrossInstances(t *testing.T) {
	for _, tc := range []struct {
		name         string
		passRevision bool
		opts         []func(*authz.Config)
	}{
		{"with the write's revision", true, nil},
		{"fully consistent, no revision", false, []func(*authz.Config){fullyConsistent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.URL(t)
			a, b := instance(t, dsn), instance(t, dsn, tc.opts...)
			f := a.seed()
			stale := 0
			for i := range 40 {
				assigned := i%2 == 0
				method, status := "POST", 201
				if !assigned {
					method, status = "DELETE", 204
				}
				r := a.raw(method, "/authorization/organization_memberships/"+f.bob+"/role_assignments", obj{"role_slug": "project-viewer", "resource_id": f.web})
				if r.status != status {
					t.Fatalf("write %d: %d %s", i, r.status, r.body)
				}
				rev, err := strconv.ParseInt(r.header.Get(workos.HeaderRevision), 10, 64)
				if err != nil || rev <= 0 {
					t.Fatalf("write %d: revision header %q", i, r.header.Get(workos.HeaderRevision))
				}
				if !tc.passRevision {
					rev = 0
				}
				for route, got := range b.decisions(f, rev) {
					if got != assigned {
						stale++
						t.Errorf("write %d (assigned %v, revision passed %d): %s on the other instance answered %v", i, assigned, rev, route, got)
					}
				}
			}
			if stale != 0 {
				t.Fatalf("%d stale answers", stale)
			}
		})
	}
}

// fullyConsistent is `trellis serve --fully-consistent`.
func fullyConsistent(c *authz.Config) { c.FullyConsistent = true }

// BenchmarkConsistency measures a check on an instance that waits for
// nothing but its own writes (default) against one that reads the database
// head for every request (--fully-consistent), with concurrent requests
// sharing head reads.
func BenchmarkConsistency(b *testing.B) {
	dsn := pgtest.URL(b)
	f := instance(b, dsn).seed()
	body := obj{"subject": obj{"organization_membership_id": f.bob}, "permission": "project:view", "resource": obj{"id": f.web}}
	for _, tc := range []struct {
		name string
		opts []func(*authz.Config)
	}{{"default", nil}, {"fully_consistent", []func(*authz.Config){fullyConsistent}}} {
		b.Run(tc.name, func(b *testing.B) {
			e := instance(b, dsn, tc.opts...)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.do("POST", "/v1/check", body, 200)
				}
			})
		})
	}
}
