package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestServeMetrics checks that `trellis serve` exposes GET /metrics and
// that a check moves the right counter.
func TestServeMetrics(t *testing.T) {
	k := newSigner(t, "k1")
	jwks := newJWKSServer(t, k)
	url := startService(t, testConfig(t, "--jwks-url", jwks.URL, "--issuer", testIssuer))
	bob := mint(t, k, bobToken, time.Hour)
	allowByToken := `trellis_decisions_total{decided_by="token",entrypoint="check",result="allow"}`

	tests := []struct {
		name string
		req  map[string]any
	}{
		{"allow by token", withToken(bob, check("workspace:view", "workspace", "acme-sales"))},
		{"allow by assignment does not count as token", withToken(bob, check("project:edit", "project", "api"))},
		{"deny", withToken(bob, check("project:edit", "project", "crm"))},
	}
	for _, tc := range tests {
		if status, got := post(t, url, "/v1/check", "", tc.req); status != http.StatusOK {
			t.Fatalf("%s: %d %v", tc.name, status, got)
		}
	}
	body := scrape(t, url)
	if got := metricValue(t, body, allowByToken); got != 1 {
		t.Errorf("%s = %v, want 1", allowByToken, got)
	}
	for _, name := range []string{
		`trellis_decisions_total{decided_by="assignment",entrypoint="check",result="allow"}`,
		`trellis_decisions_total{decided_by="none",entrypoint="check",result="deny"}`,
		`trellis_decision_duration_seconds_count{entrypoint="check"}`,
		"trellis_applied_revision", "trellis_head_revision", "trellis_replication_lag_revisions",
		"trellis_change_apply_duration_seconds_count", "trellis_store_resources", "trellis_data_stale",
		"trellis_jwks_refresh_failures_total",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		metricValue(t, body, name)
	}
	// The first check is asked again: the decision cache answers it.
	if status, got := post(t, url, "/v1/check", "", tests[0].req); status != http.StatusOK {
		t.Fatalf("again: %d %v", status, got)
	}
	body = scrape(t, url)
	if hits, misses := metricValue(t, body, "trellis_decision_cache_hits_total"), metricValue(t, body, "trellis_decision_cache_misses_total"); hits != 1 || misses != 3 {
		t.Errorf("decision cache: %v hits and %v misses, want 1 and 3", hits, misses)
	}
	if got := metricValue(t, body, allowByToken); got != 2 {
		t.Errorf("%s = %v after a cached answer, want 2", allowByToken, got)
	}
	if got := metricValue(t, body, "trellis_store_resources"); got != 10 {
		t.Errorf("trellis_store_resources = %v, want the demo's 2 roots and 8 resources", got)
	}
	// The verifier's first fetch of the JWKS is a success with a time.
	if got := metricValue(t, body, "trellis_jwks_last_success_timestamp_seconds"); got < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("trellis_jwks_last_success_timestamp_seconds = %v, want the time of the first fetch", got)
	}
}

// scrape returns the body of GET url/metrics.
func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// metricValue returns the value of the sample written exactly as name
// (with its labels, if any) in a Prometheus text exposition; 0 and a test
// failure when it is absent.
func metricValue(t testing.TB, body, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("/metrics lacks %s", name)
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return v
}
