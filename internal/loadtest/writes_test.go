package loadtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
)

func TestNewWritePlan(t *testing.T) {
	ds, o, mix := smallMix(t, 500)
	plan, err := loadtest.NewWritePlan(ds, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Organizations() != len(ds.Organizations) {
		t.Fatalf("a plan over %d organizations writes in %d", len(ds.Organizations), plan.Organizations())
	}
	if r := plan.Role; r.OrganizationID != "" || r.ResourceType != model.OrganizationType || len(r.Permissions) != 0 {
		t.Fatalf("the plan's role %+v is not an environment role of the organization type granting nothing", r)
	}
	// With the role in the data and every planned assignment made, the
	// Oracle still expects what the mix does.
	withWrites := *ds
	withWrites.Roles = append(slices.Clone(ds.Roles), plan.Role)
	withWrites.Assignments = append(slices.Clone(ds.Assignments), plan.Assignments()...)
	if err := withWrites.Validate(); err != nil {
		t.Fatal(err)
	}
	after := loadtest.NewOracle(&withWrites)
	for _, r := range mix.Requests {
		om, _, _ := strings.Cut(r.Token, ".") // fakeSigner's token names its membership
		c, ok := o.Claims(om)
		if !ok {
			t.Fatalf("a %s request's token names unknown membership %q", r.Kind, om)
		}
		for _, q := range r.Checks {
			if got := after.Allowed(c, q.Permission, q.ResourceID); got != q.Want {
				t.Fatalf("with the writes made, %s %s on %s: %v, the mix expects %v", r.Kind, q.Permission, q.ResourceID, got, q.Want)
			}
		}
		if r.List != nil {
			if ids, more := after.List(c, r.List.Permission, r.List.Limit); !slices.Equal(ids, r.List.Want) || more != r.List.WantMore {
				t.Fatalf("with the writes made, the list of %s for %s differs from the mix's", r.List.Permission, om)
			}
		}
	}
}

// adminRecorder is a server answering the mix's checks and recording the
// admin writes it is sent.
type adminRecorder struct {
	mu      sync.Mutex
	changes []map[string]any
	auth    []string
	hits    atomic.Uint64
}

func (a *adminRecorder) handler(t *testing.T, checks http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", checks)
	mux.HandleFunc("POST "+loadtest.AdminPath, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Changes []map[string]any `json:"changes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Changes) != 1 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.changes = append(a.changes, body.Changes[0])
		a.auth = append(a.auth, r.Header.Get("Authorization"))
		a.mu.Unlock()
		_, _ = w.Write([]byte(`{"revision": 1}`))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		n := a.hits.Add(100)
		fmt.Fprintf(w, "# HELP x\ntrellis_decision_cache_hits_total %d\ntrellis_decision_cache_misses_total 7\nother 1\n", n)
	})
	return mux
}

// TestRunWithWrites: the write stream posts assignment grants and revokes,
// in turn per assignment and spread over organizations, at about its rate
// during the measured window only, and the cache counters are read around
// that window.
func TestRunWithWrites(t *testing.T) {
	ds, _, mix := smallMix(t, 500)
	plan, err := loadtest.NewWritePlan(ds, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec := &adminRecorder{}
	srv := httptest.NewServer(rec.handler(t, answers(t, mix, nil)))
	defer srv.Close()
	cfg := loadtest.Config{Connections: 2, Warmup: 200 * time.Millisecond, Duration: time.Second,
		Writes: &loadtest.Writes{Plan: plan, Rate: 50, APIKey: "k"}}
	res, err := loadtest.Run(context.Background(), loadtest.Target{Name: "t", Base: srv.URL, API: loadtest.TrellisAPI{}, Verify: true, CacheMetrics: true}, mix, cfg)
	if err != nil || res.Errors != 0 {
		t.Fatalf("Run: %v (%d errors, first %s)", err, res.Errors, res.FirstError)
	}
	w := res.Writes
	if w == nil || w.Failed != 0 || w.Sent < 20 || w.Sent > 55 {
		t.Fatalf("writes at 50/s over 1s: %+v", w)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if int64(len(rec.changes)) < w.Sent {
		t.Fatalf("the server got %d writes, the stream says it sent %d", len(rec.changes), w.Sent)
	}
	seen := map[string]string{} // assignment id → its last op
	orgs := map[string]bool{}
	for i, c := range rec.changes {
		if rec.auth[i] != "Bearer k" {
			t.Fatalf("write %d: Authorization %q", i, rec.auth[i])
		}
		a, _ := c["assignment"].(map[string]any)
		id, _ := a["id"].(string)
		op, _ := c["op"].(string)
		if id == "" || (op != "upsert" && op != "delete") {
			t.Fatalf("write %d is not an assignment upsert or delete: %v", i, c)
		}
		want := "upsert"
		if seen[id] == "upsert" {
			want = "delete"
		}
		if op != want {
			t.Fatalf("write %d of %s: %s after %q, want %s", i, id, op, seen[id], want)
		}
		seen[id] = op
		orgs[a["membership_id"].(string)] = true
	}
	if min(len(rec.changes), plan.Organizations()) > len(orgs) {
		t.Errorf("%d writes went to %d writing memberships of %d", len(rec.changes), len(orgs), plan.Organizations())
	}
	if res.Cache == nil || res.Cache.Hits != 100 || res.Cache.Misses != 0 {
		t.Errorf("cache counts %+v, want the 100 hits between the two scrapes", res.Cache)
	}
	table := loadtest.WritesTable([]loadtest.Result{res})
	if !strings.Contains(table, "| t |") || !strings.Contains(table, " 50 / ") {
		t.Errorf("WritesTable:\n%s", table)
	}
}

// TestWritesTable: each run with writes is compared with the run without
// them just before it, and the median of those shares closes the table.
func TestWritesTable(t *testing.T) {
	run := func(reqs int64, writes bool) loadtest.Result {
		r := loadtest.Result{Target: "trellis", Elapsed: time.Second, Requests: reqs, Cache: &loadtest.CacheCounts{Hits: 9, Misses: 1}}
		if writes {
			r.Writes = &loadtest.WriteResult{Rate: 100, Sent: 100}
		}
		return r
	}
	table := loadtest.WritesTable([]loadtest.Result{
		run(1000, false), run(900, true), // 90 %
		run(2000, false), run(1000, true), // 50 %
		run(1000, false), run(700, true), // 70 %
	})
	for _, want := range []string{"| 900 | 90 % |", "| 1000 | 50 % |", "| 700 | 70 % |", "| 2000 | — |",
		"Median share of the 3 pairs: 70 % (lowest 50 %, highest 90 %)."} {
		if !strings.Contains(table, want) {
			t.Errorf("WritesTable lacks %q:\n%s", want, table)
		}
	}
	if one := loadtest.WritesTable([]loadtest.Result{run(1000, false), run(800, true)}); strings.Contains(one, "Median") || !strings.Contains(one, "| 80 % |") {
		t.Errorf("one pair: want its share and no median line:\n%s", one)
	}
}
