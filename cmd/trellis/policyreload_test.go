package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadsPoliciesUnderLoad: while clients keep asking, SIGHUP
// swaps --policy-dir between two sets again and again (as
// TestServeReloadsPolicies drives a reload), and no request fails and no
// answer mixes the sets. Set A's extension holds back check 0 of a batch
// and set B's check 1, both allowed by the core: a batch decided partly by
// each would be all allowed or all denied. Both sets are context-free, so
// with the decision cache answers come from it too (authz.Service.caching)
// and must not outlive a swap; without it every check is evaluated, which
// widens the window a batch split across two evaluations would fall in.
func TestServeReloadsPoliciesUnderLoad(t *testing.T) {
	t.Run("decision cache", func(t *testing.T) { reloadUnderLoad(t) })
	t.Run("no decision cache", func(t *testing.T) { reloadUnderLoad(t, "--decision-cache-size", "0") })
}

// reloadUnderLoad is TestServeReloadsPoliciesUnderLoad on a server started
// with the extra flags.
func reloadUnderLoad(t *testing.T, flags ...string) {
	const (
		key     = "reload-load-test-key-0123456789ab"
		workers = 4
		swaps   = 20
		perSwap = 5                // batches answered by the new set before the next swap
		maxReqs = 50_000           // per worker, a bound should the swaps stall
		budget  = 60 * time.Second // for the whole load, a bound too
	)
	dir := t.TempDir()
	sets := map[string][]byte{"a": gateModule("a", "app:deploy"), "b": gateModule("b", "project:edit")}
	put := func(set string) { // atomically, so a reload never reads half a module
		t.Helper()
		tmp := writeFile(t, t.TempDir(), "gate.rego", sets[set])
		if err := os.Rename(tmp, filepath.Join(dir, "gate.rego")); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	url := startService(t, testConfig(t, append([]string{"--policy-dir", dir, "--api-key", key}, flags...)...))
	subject := map[string]any{"organization_membership_id": "om_bob"}
	checks := []map[string]any{
		{"permission": "app:deploy", "resource": map[string]any{"type": "app", "external_id": "api-gateway", "organization_id": "org_acme"}},
		{"permission": "project:edit", "resource": map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"}},
	}
	batch := map[string]any{"subject": subject, "checks": checks}
	revision := func() string {
		t.Helper()
		code, body := get(t, url+"/ready")
		if code != http.StatusOK || body["policy_reload_error"] != nil {
			t.Fatalf("/ready: %d %v", code, body)
		}
		return fmt.Sprint(body["policy_revision"])
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var (
		seen     [2]atomic.Int64 // batches decided by set A, by set B
		singles  atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		bad      []string // the first few failures and mixed answers
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	if code, out, err := ask(client, url+"/v1/check/batch", key, batch); err != nil || code != http.StatusOK || setOf(out) != 0 {
		t.Fatalf("set A: batch answered %d %v (%v), want check 0 held back by set A only", code, out, err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad() // also when the test fails early, before the server closes
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxReqs; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%4 == 3 { // a single check: allowed, or held back by the set that names it
					c := (w + i) % 2
					req := map[string]any{"subject": subject, "permission": checks[c]["permission"], "resource": checks[c]["resource"]}
					code, out, err := ask(client, url+"/v1/check", key, req)
					if reason, _ := out["reason"].(map[string]any); err != nil || code != http.StatusOK ||
						(out["allowed"] != true && reason["code"] != "set_"+"ab"[c:c+1]) {
						fail("check %d: %d %v (%v)", c, code, out, err)
					}
					singles.Add(1)
					continue
				}
				code, out, err := ask(client, url+"/v1/check/batch", key, batch)
				if err != nil || code != http.StatusOK {
					fail("batch: %d %v (%v)", code, out, err)
					continue
				}
				if set := setOf(out); set < 0 {
					fail("batch decided by neither set alone: %v", out)
				} else {
					seen[set].Add(1)
				}
			}
		}()
	}

	// Swap A → B → A … waiting each time until the reload is done and the
	// new set has answered a few batches, so that every swap falls inside
	// the load.
	revs := map[string]string{"a": revision()}
	current, reloadTime := "a", time.Duration(0)
	for i := 0; i < swaps && time.Since(start) < budget && failures.Load() == 0; i++ {
		next := map[string]string{"a": "b", "b": "a"}[current]
		idx := map[string]int{"a": 0, "b": 1}[next]
		before := seen[idx].Load()
		put(next)
		sent := time.Now()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		old := revs[current]
		reloaded := func() bool {
			if want, ok := revs[next]; ok {
				return revision() == want
			}
			return revision() != old
		}
		waitFor(t, 10*time.Second, "the reload to "+next, reloaded)
		reloadTime += time.Since(sent)
		revs[next], current = revision(), next
		waitFor(t, 10*time.Second, "set "+next+" to answer batches", func() bool { return seen[idx].Load() >= before+perSwap })
	}
	stopLoad()
	took := time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	a, b := seen[0].Load(), seen[1].Load()
	t.Logf("%d swaps in %v under %d workers (mean reload %v): %d batches by set A, %d by set B, %d single checks, %d failed or mixed",
		swaps, took.Round(time.Millisecond), workers, (reloadTime / swaps).Round(time.Microsecond), a, b, singles.Load(), failures.Load())
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d requests failed or mixed the sets; the first:\n%s", n, strings.Join(bad, "\n"))
	}
	if a == 0 || b == 0 {
		t.Errorf("batches by set A: %d, by set B: %d; want both", a, b)
	}
	if revs["a"] == revs["b"] {
		t.Errorf("sets A and B have one policy revision, %s", revs["a"])
	}
	if m := scrape(t, url); !strings.Contains(m, fmt.Sprintf(`trellis_policy_reloads_total{result="ok"} %d`, swaps)) {
		t.Errorf("/metrics does not count %d good reloads", swaps)
	}
}

// gateModule is an extension, package trellis.ext.gate, that denies perm
// with code set_<set>.
func gateModule(set, perm string) []byte {
	return fmt.Appendf(nil, "package trellis.ext.gate\n\ndeny contains {\"code\": \"set_%s\", \"message\": \"set %s holds back %s\"} if input.permission == %q\n",
		set, strings.ToUpper(set), perm, perm)
}

// setOf is 0 when a batch answer of TestServeReloadsPoliciesUnderLoad is
// set A's (check 0 held back by set A, check 1 allowed), 1 when it is set
// B's, and -1 otherwise.
func setOf(out map[string]any) int {
	results, _ := out["results"].([]any)
	if len(results) != 2 {
		return -1
	}
	var allowed [2]bool
	var codes [2]any
	for i, r := range results {
		d, _ := r.(map[string]any)
		reason, _ := d["reason"].(map[string]any)
		allowed[i], codes[i] = d["allowed"] == true, reason["code"]
	}
	switch {
	case !allowed[0] && codes[0] == "set_a" && allowed[1]:
		return 0
	case allowed[0] && !allowed[1] && codes[1] == "set_b":
		return 1
	}
	return -1
}

// ask posts body to url with the API key and decodes the JSON answer; it
// is post for goroutines other than the test's, which must not call
// t.Fatal.
func ask(client *http.Client, url, apiKey string, body any) (int, map[string]any, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(buf))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	err = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, err
}
