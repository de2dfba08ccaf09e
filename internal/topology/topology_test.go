package topology_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	apiKey     = "topology-test-key"
	members    = 16
	org        = "org_topo"
	workspace  = "authz_resource_topo_ws"
	role       = "workspace-admin"
	permission = "workspace:edit"
)

func membership(i int) string { return fmt.Sprintf("om_topo_%02d", i) }
func assignment(i int) string { return fmt.Sprintf("role_assignment_topo_%02d", i) }

// TestTopology is the reference topology of the README under a decision
// and write workload through HAProxy: every answer is checked against the
// oracle at the revision it was made at; killing the standby's node fails
// no request beyond those in flight; a stopped standby turns its node not
// ready until it is back and caught up; and the standby node's lag
// (commit on the primary → visible in its decisions) is measured at 100
// writes/s with the default --poll-interval and with 100ms.
func TestTopology(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("SKIP internal/topology: haproxy not found (apt-get install haproxy)")
	}
	if testing.Short() {
		t.Skip("the topology test takes minutes")
	}
	bin := buildTrellis(t)
	// synchronous_commit on (PostgreSQL's default; pgtest turns it off):
	// a walsender streams only WAL that is flushed.
	pc := pgtest.NewCluster(t, "synchronous_commit=on")
	sc := pc.NewStandby(t)
	primaryURL := pc.NewDatabase(t)
	standbyURL := sc.DatabaseURL(primaryURL)
	if out, err := exec.Command(bin, "load", "--database-url", primaryURL).CombinedOutput(); err != nil {
		t.Fatalf("trellis load: %v\n%s", err, out)
	}

	front, addrA, addrB := freeAddr(t), freeAddr(t), freeAddr(t)
	a := startNode(t, bin, "primary", addrA, primaryURL)
	waitReady(t, a.url, 60*time.Second)
	// The setup: memberships without roles and a workspace; the workload
	// grants and revokes workspace-admin on it.
	setup := []postgres.WireChange{{Op: model.OpUpsert, Organization: &model.Organization{ID: org, Name: "Topology"}},
		{Op: model.OpUpsert, Resource: &model.Resource{ID: workspace, OrganizationID: org, Type: "workspace", ExternalID: "ws", Name: "WS"}}}
	for i := range members {
		setup = append(setup, postgres.WireChange{Op: model.OpUpsert, Membership: &model.Membership{
			ID: membership(i), UserID: fmt.Sprintf("user_topo_%02d", i), OrganizationID: org, Status: "active", RoleSlugs: []string{}}})
	}
	rev0, err := write(context.Background(), http.DefaultClient, a.url, setup)
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, bin, "standby", addrB, standbyURL)
	waitReady(t, b.url, 60*time.Second)
	standbyNode(t, b.url)
	startHAProxy(t, haproxy, front, addrA, addrB)
	lb := "http://" + front
	time.Sleep(1500 * time.Millisecond) // two health checks of each server

	o := newOracle(rev0)
	run := func(name string, d time.Duration, rate int, during func(ctx context.Context)) result {
		t.Helper()
		r := o.workload(t, lb, b.url, d, rate, during)
		t.Logf("%s: %d checks (%d through the standby node's revisions), %d writes, %d failed requests, %d wrong answers; standby node lag p50 %s p99 %s max %s over %d writes",
			name, r.checks, r.standbyChecks, r.writes, r.failed, r.wrong, r.lag.p50, r.lag.p99, r.lag.max, r.lag.n)
		for _, msg := range r.failures[:min(len(r.failures), 5)] {
			t.Logf("%s: failed: %s", name, msg)
		}
		for _, msg := range r.wrongs[:min(len(r.wrongs), 5)] {
			t.Logf("%s: wrong: %s", name, msg)
		}
		if r.wrong > 0 {
			t.Errorf("%s: %d answers differ from the oracle at their revision", name, r.wrong)
		}
		return r
	}

	// 1. Steady state, default settings, 100 writes/s.
	r := run("steady, --poll-interval 1s", 8*time.Second, 100, nil)
	if r.failed > 0 {
		t.Errorf("steady: %d failed requests", r.failed)
	}
	if r.lag.n == 0 {
		t.Error("steady: no write was seen on the standby node")
	}

	// 2. Kill the standby's node by PID under load.
	var inFlight int64
	r = run("standby node killed", 6*time.Second, 50, func(ctx context.Context) {
		sleep(ctx, 2*time.Second)
		inFlight = o.inFlight.Load()
		if err := b.cmd.Process.Kill(); err != nil {
			t.Errorf("kill the standby node: %v", err)
		}
		t.Logf("killed the standby node (pid %d) with %d requests in flight", b.cmd.Process.Pid, inFlight)
	})
	if r.failed > inFlight {
		t.Errorf("killing one node failed %d requests, more than the %d in flight", r.failed, inFlight)
	}

	// A new standby node, tuned: polling every 100ms.
	b = startNode(t, bin, "standby-2", addrB, standbyURL, "--poll-interval", "100ms")
	waitReady(t, b.url, 60*time.Second)
	time.Sleep(1500 * time.Millisecond)
	r = run("steady, --poll-interval 100ms", 6*time.Second, 100, nil)
	if r.failed > 0 {
		t.Errorf("tuned: %d failed requests", r.failed)
	}

	// 3. Read your write across nodes: a write on the primary's node, read
	// on the standby's with its revision, is never stale.
	atLeastRevision(t, o, a.url, b.url, 30)

	// 4. Stop the standby for 30 s under load: its node turns not ready,
	// and ready again once the standby is back and it has caught up.
	var sawNotReady atomic.Bool
	var lastRev int64
	r = run("standby stopped for 30s", 45*time.Second, 20, func(ctx context.Context) {
		sleep(ctx, time.Second)
		sc.Stop(t)
		stopped := time.Now()
		for time.Since(stopped) < 30*time.Second && ctx.Err() == nil {
			if status, _ := ready(b.url); status == http.StatusServiceUnavailable && !sawNotReady.Load() {
				sawNotReady.Store(true)
				t.Logf("the standby node turned not ready %s after the standby stopped", time.Since(stopped).Round(10*time.Millisecond))
			}
			sleep(ctx, 100*time.Millisecond)
		}
		sc.Start(t)
		started := time.Now()
		lastRev = o.known()
		for ctx.Err() == nil {
			if status, body := ready(b.url); status == http.StatusOK {
				t.Logf("the standby node is ready %s after the standby started, at revision %v (the primary had %d)",
					time.Since(started).Round(10*time.Millisecond), body["revision"], lastRev)
				if rev, _ := body["revision"].(float64); int64(rev) < lastRev {
					t.Errorf("ready at revision %v, behind the %d committed before the standby came back", rev, lastRev)
				}
				return
			}
			sleep(ctx, 100*time.Millisecond)
		}
		t.Error("the standby node did not turn ready again within the phase")
	})
	if !sawNotReady.Load() {
		t.Error("the standby node stayed ready while its standby was stopped for 30 s")
	}
	if r.failed > 0 {
		t.Errorf("standby stopped: %d failed requests", r.failed)
	}
	// The event log on a standby: served, polled, with delivery and pruning
	// left to the primary's node (they write).
	out, err := os.ReadFile(b.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"webhooks: delivery pass failed", "events: prune failed", "events: listen"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("the standby node logged %q: it must not write to or LISTEN on a standby", bad)
		}
	}
	if !strings.Contains(string(out), "events: read-only database") {
		t.Error("the standby node did not say it serves a read-only event log")
	}
}

// standbyNode checks what a node on a standby says about itself: writes
// (admin and WorkOS routes) are 421 read_only, answers carry X-Trellis-Lag,
// /ready and /metrics report the lag.
func standbyNode(t *testing.T, base string) {
	t.Helper()
	ctx := context.Background()
	for _, w := range []struct{ path, body string }{
		{postgres.AdminPath, `{"changes": [{"op": "upsert", "organization": {"id": "org_nope", "name": "Nope"}}]}`},
		{"/organizations", `{"name": "Nope"}`},
	} {
		status, body, err := post(ctx, http.DefaultClient, base+w.path, []byte(w.body))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusMisdirectedRequest || !strings.Contains(string(body), `"read_only"`) || !strings.Contains(string(body), "standby") {
			t.Errorf("POST %s on the standby node: %d %s; want 421 read_only naming the standby", w.path, status, body)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Trellis-Lag") == "" || !strings.Contains(string(metrics), "\ntrellis_replication_lag_seconds ") {
		t.Errorf("the standby node's answers lack X-Trellis-Lag (%q) or its /metrics trellis_replication_lag_seconds", resp.Header.Get("X-Trellis-Lag"))
	}
	if _, body := ready(base); body["lag_seconds"] == nil || body["max_lag_seconds"] != 2.0 {
		t.Errorf("/ready of the standby node: %v; want lag_seconds and max_lag_seconds 2", body)
	}
}

// atLeastRevision writes n times on the primary's node and reads each
// write on the standby's node with consistency.at_least_revision: the
// answer reflects the write, or is a 503 revision_not_applied, never stale.
func atLeastRevision(t *testing.T, o *oracle, primary, standby string, n int) {
	t.Helper()
	ctx := context.Background()
	notApplied := 0
	for k := range n {
		i := k % members
		present := !o.state(i)
		rev, err := write(ctx, http.DefaultClient, primary, []postgres.WireChange{toggle(i, present)})
		if err != nil {
			t.Fatal(err)
		}
		o.record(rev, i, present)
		status, allowed, got, err := check(ctx, http.DefaultClient, standby, i, rev)
		switch {
		case err != nil:
			t.Fatal(err)
		case status == http.StatusServiceUnavailable:
			notApplied++
		case status != http.StatusOK:
			t.Fatalf("check with at_least_revision %d on the standby node: %d", rev, status)
		case got < rev || allowed != present:
			t.Fatalf("check with at_least_revision %d on the standby node: allowed %v at revision %d; want %v at %d or later",
				rev, allowed, got, present, rev)
		}
	}
	t.Logf("read your write across nodes: %d writes read back on the standby node, %d answered 503 revision_not_applied", n, notApplied)
}

// oracle knows, for each membership, whether it holds the assignment at
// each revision: the writes of one membership are made one at a time and
// recorded with the revision they committed at before the next; an answer
// about a membership whose write is in flight waits for it to be recorded
// (that write may be older than the answer).
type oracle struct {
	mu       sync.Mutex
	newest   int64
	history  [members][]change
	writing  [members]bool // a write of the membership's assignment is in flight
	inFlight atomic.Int64
}

type change struct {
	rev     int64
	present bool
}

func newOracle(rev0 int64) *oracle { return &oracle{newest: rev0} }

func (o *oracle) record(rev int64, i int, present bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.history[i] = append(o.history[i], change{rev, present})
	o.newest = max(o.newest, rev)
	o.writing[i] = false
}

// begin marks a write of membership i in flight.
func (o *oracle) begin(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writing[i] = true
}

func (o *oracle) settled(i int, rev int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.writing[i] && o.newest >= rev
}

func (o *oracle) known() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.newest
}

// state is membership i's newest recorded state.
func (o *oracle) state(i int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.history[i]
	return len(h) > 0 && h[len(h)-1].present
}

// allowedAt returns whether membership i may edit the workspace at
// revision rev, waiting (bounded) for the write of rev to be recorded.
func (o *oracle) allowedAt(i int, rev int64) (bool, error) {
	for deadline := time.Now().Add(10 * time.Second); !o.settled(i, rev); {
		if time.Now().After(deadline) {
			return false, fmt.Errorf("an answer at revision %d, which no recorded write reached", rev)
		}
		time.Sleep(time.Millisecond)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	allowed := false
	for _, c := range o.history[i] {
		if c.rev > rev {
			break
		}
		allowed = c.present
	}
	return allowed, nil
}

type result struct {
	checks, standbyChecks, writes, failed, wrong int64
	failures, wrongs                             []string
	lag                                          percentiles
}

type percentiles struct {
	n             int
	p50, p99, max time.Duration
}

// workload runs for d: 4 clients checking through lb, one writer toggling
// assignments through lb at rate writes/s, and a watcher of the standby
// node's revision (for the lag). during, if set, runs alongside.
func (o *oracle) workload(t *testing.T, lb, standby string, d time.Duration, rate int, during func(ctx context.Context)) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var res result
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.failed++
		res.failures = append(res.failures, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := rand.IntN(members)
				o.inFlight.Add(1)
				status, allowed, rev, err := check(ctx, client, lb, i, 0)
				o.inFlight.Add(-1)
				if ctx.Err() != nil {
					return
				}
				if err != nil || status != http.StatusOK {
					fail("check %s: status %d, %v", membership(i), status, err)
					continue
				}
				want, err := o.allowedAt(i, rev)
				mu.Lock()
				res.checks++
				if err != nil || allowed != want {
					res.wrong++
					res.wrongs = append(res.wrongs, fmt.Sprintf("check %s at revision %d: allowed %v, want %v (%v)", membership(i), rev, allowed, want, err))
				}
				mu.Unlock()
			}
		})
	}
	sent := map[int64]time.Time{} // write revision → when its request was sent
	tokens := make(chan struct{})
	wg.Go(func() {
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case tokens <- struct{}{}:
			default: // every writer is busy: the rate is not reached
			}
		}
	})
	const writers = 8
	for k := range writers {
		wg.Go(func() {
			for range tokens {
				i := k + writers*rand.IntN(members/writers)
				present := !o.state(i)
				o.begin(i)
				start := time.Now()
				o.inFlight.Add(1)
				// Not canceled with the phase: the oracle must learn whether
				// every write it sent committed.
				wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
				rev, err := write(wctx, client, lb, []postgres.WireChange{toggle(i, present)})
				wcancel()
				o.inFlight.Add(-1)
				if err != nil {
					fail("write %s: %v", assignment(i), err)
					return // its outcome is unknown: this writer stops
				}
				o.record(rev, i, present)
				mu.Lock()
				res.writes++
				sent[rev] = start
				mu.Unlock()
			}
		})
	}
	seen := map[int64]time.Time{} // revision → when the standby node first answered at it or later
	var watched atomic.Int64
	watch := func(ctx context.Context) {
		for ctx.Err() == nil {
			_, _, rev, err := check(ctx, client, standby, 0, 0)
			if err == nil && rev > watched.Load() {
				now := time.Now()
				mu.Lock()
				seen[rev] = now
				mu.Unlock()
				watched.Store(rev)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Go(func() { watch(ctx) })
	if during != nil {
		wg.Go(func() { during(ctx) })
	}
	wg.Wait()
	// Let the standby node catch up with the last write (bounded), so that
	// every write of the phase has a lag; a node that is gone has none.
	last := o.known()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	for wctx.Err() == nil && watched.Load() < last {
		_, _, rev, err := check(wctx, client, standby, 0, 0)
		if err != nil {
			break
		}
		if rev > watched.Load() {
			seen[rev] = time.Now()
			watched.Store(rev)
		}
		time.Sleep(2 * time.Millisecond)
	}

	res.standbyChecks = int64(len(seen))
	var lags []time.Duration
	revs := slices.Sorted(func(yield func(int64) bool) {
		for r := range seen {
			if !yield(r) {
				return
			}
		}
	})
	for rev, at := range sent {
		// The first revision the standby node answered at that is rev or later.
		k, _ := slices.BinarySearch(revs, rev)
		if k < len(revs) {
			lags = append(lags, seen[revs[k]].Sub(at))
		}
	}
	slices.Sort(lags)
	if n := len(lags); n > 0 {
		res.lag = percentiles{n: n, p50: lags[n/2], p99: lags[min(n-1, n*99/100)], max: lags[n-1]}
	}
	return res
}

func toggle(i int, present bool) postgres.WireChange {
	a := &model.Assignment{ID: assignment(i), MembershipID: membership(i), RoleSlug: role, ResourceID: workspace}
	if present {
		return postgres.WireChange{Op: model.OpUpsert, Assignment: a}
	}
	return postgres.WireChange{Op: model.OpDelete, Assignment: &model.Assignment{ID: assignment(i)}}
}

// write posts changes to the admin API at base and returns their revision.
func write(ctx context.Context, client *http.Client, base string, changes []postgres.WireChange) (int64, error) {
	body, _ := json.Marshal(postgres.AdminRequest{Changes: changes})
	status, resp, err := post(ctx, client, base+postgres.AdminPath, body)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("write: %d %s", status, resp)
	}
	var ans postgres.AdminResponse
	if err := json.Unmarshal(resp, &ans); err != nil {
		return 0, fmt.Errorf("write: %w: %s", err, resp)
	}
	return ans.Revision, nil
}

// check asks base whether membership i may edit the workspace, at least at
// revision atLeast (0: any), and returns the status, the answer and its
// revision.
func check(ctx context.Context, client *http.Client, base string, i int, atLeast int64) (status int, allowed bool, rev int64, err error) {
	req := map[string]any{"subject": map[string]string{"organization_membership_id": membership(i)},
		"permission": permission, "resource": map[string]string{"id": workspace}}
	if atLeast > 0 {
		req["consistency"] = map[string]int64{"at_least_revision": atLeast}
	}
	body, _ := json.Marshal(req)
	status, resp, err := post(ctx, client, base+"/v1/check", body)
	if err != nil || status != http.StatusOK {
		return status, false, 0, err
	}
	var ans struct {
		Allowed  *bool  `json:"allowed"`
		Revision *int64 `json:"revision"`
	}
	if err := json.Unmarshal(resp, &ans); err != nil {
		return status, false, 0, fmt.Errorf("check: %w: %s", err, resp)
	}
	if ans.Allowed == nil || ans.Revision == nil {
		return status, false, 0, fmt.Errorf("check: not a decision: %s", resp)
	}
	return status, *ans.Allowed, *ans.Revision, nil
}

func post(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func ready(base string) (int, map[string]any) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/ready")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func waitReady(t *testing.T, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		status, body := ready(base)
		if status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %d %v", base, d, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// node is one trellis serve process.
type node struct {
	cmd *exec.Cmd
	url string
	log string // the path of its log
}

// startNode starts trellis serve on addr following the database dsn; it is
// stopped when the test ends. Its log goes to a file kept in the test's
// temporary directory and printed when the test fails.
func startNode(t *testing.T, bin, name, addr, dsn string, args ...string) *node {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"serve", "--addr", addr, "--database-url", dsn, "--api-key", apiKey, "--bundles=false", "--log-level", "info"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	startProcess(t, cmd, func() {
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s node log (last 4 KiB):\n%s", name, out[max(0, len(out)-4096):])
		}
	})
	return &node{cmd: cmd, url: "http://" + addr, log: logPath}
}

// startHAProxy runs haproxy with the README's configuration, its
// addresses replaced by front and the nodes' addresses.
func startHAProxy(t *testing.T, bin, front, primary, standby string) {
	t.Helper()
	startHAProxyWith(t, bin, "", front, map[string]string{"127.0.0.1:8080": front, "127.0.0.1:8081": primary, "127.0.0.1:8082": standby})
}

// startHAProxyWith runs haproxy with the first ```haproxy block of the
// README that starts with first, each address of addrs (every one of which
// it must name) replaced by its value, and waits until it listens on front.
func startHAProxyWith(t *testing.T, bin, first, front string, addrs map[string]string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg string
	for rest := string(readme); cfg == ""; {
		var ok bool
		if _, rest, ok = strings.Cut(rest, "```haproxy\n"); !ok {
			t.Fatalf("README.md has no ```haproxy block starting with %q", first)
		}
		if block, _, ok := strings.Cut(rest, "```"); ok && strings.HasPrefix(block, first) {
			cfg = block
		}
	}
	var pairs []string
	for addr, to := range addrs {
		if !strings.Contains(cfg, addr) {
			t.Fatalf("the README's HAProxy configuration does not name %s", addr)
		}
		pairs = append(pairs, addr, to)
	}
	cfg = strings.NewReplacer(pairs...).Replace(cfg)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &log, &log
	startProcess(t, cmd, func() {
		if t.Failed() {
			t.Logf("haproxy output:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v\n%s", front, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProcess starts cmd and, when the test ends, kills it (by PID), waits
// for it and calls after.
func startProcess(t *testing.T, cmd *exec.Cmd, after func()) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		after()
	})
}

// cleanEnv is the environment without TRELLIS_ settings, which would
// configure the nodes behind the test's back.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRELLIS_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildTrellis builds cmd/trellis into the test's temporary directory.
func buildTrellis(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trellis")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/trellis-authz/trellis/cmd/trellis")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
