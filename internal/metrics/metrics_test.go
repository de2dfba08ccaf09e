package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/trellis-authz/trellis/internal/metrics"
)

// sample returns the value of the metric name whose labels include labels
// (a counter, gauge, or a histogram's sample count), and whether it exists.
func sample(t testing.TB, m *metrics.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, metric := range fam.GetMetric() {
			if !hasLabels(metric, labels) {
				continue
			}
			switch {
			case metric.Counter != nil:
				return metric.Counter.GetValue(), true
			case metric.Gauge != nil:
				return metric.Gauge.GetValue(), true
			case metric.Histogram != nil:
				return float64(metric.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(metric *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range metric.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestObserveDecision(t *testing.T) {
	tests := []struct {
		name      string
		allowed   bool
		decidedBy string
		err       error
		labels    map[string]string
	}{
		{"allow by token", true, "token", nil, map[string]string{"entrypoint": "check", "result": "allow", "decided_by": "token"}},
		{"allow by assignment", true, "assignment", nil, map[string]string{"entrypoint": "check", "result": "allow", "decided_by": "assignment"}},
		{"deny", false, "none", nil, map[string]string{"entrypoint": "check", "result": "deny", "decided_by": "none"}},
		{"error", true, "token", errors.New("boom"), map[string]string{"entrypoint": "check", "result": "error", "decided_by": "none"}},
		{"unknown decided_by is none", false, "something-new", nil, map[string]string{"entrypoint": "check", "result": "deny", "decided_by": "none"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			m.ObserveDecision("check", tc.allowed, tc.decidedBy, tc.err)
			m.ObserveDecision("check", tc.allowed, tc.decidedBy, tc.err)
			if got, _ := sample(t, m, "trellis_decisions_total", tc.labels); got != 2 {
				t.Errorf("trellis_decisions_total%v = %v, want 2", tc.labels, got)
			}
			if _, ok := sample(t, m, "trellis_decisions_total", map[string]string{"decided_by": tc.decidedBy}); ok && tc.labels["decided_by"] != tc.decidedBy {
				t.Errorf("decided_by %q became a label value", tc.decidedBy)
			}
		})
	}
}

func TestDataSourceGauges(t *testing.T) {
	tests := []struct {
		name   string
		report func(*metrics.Metrics)
		want   map[string]float64
	}{
		{"initial", func(*metrics.Metrics) {}, map[string]float64{
			"trellis_applied_revision": 0, "trellis_head_revision": 0, "trellis_replication_lag_revisions": 0,
			"trellis_store_resources": 0, "trellis_data_stale": 0, "trellis_change_apply_duration_seconds": 0,
			"trellis_quarantined_organizations": 0,
		}},
		{"caught up", func(m *metrics.Metrics) { m.SetRevision(40, 40) }, map[string]float64{
			"trellis_applied_revision": 40, "trellis_head_revision": 40, "trellis_replication_lag_revisions": 0,
		}},
		{"lagging", func(m *metrics.Metrics) { m.SetRevision(40, 47) }, map[string]float64{
			"trellis_applied_revision": 40, "trellis_head_revision": 47, "trellis_replication_lag_revisions": 7,
		}},
		{"head read before the latest apply", func(m *metrics.Metrics) { m.SetRevision(50, 47) }, map[string]float64{
			"trellis_replication_lag_revisions": 0,
		}},
		{"stale and back", func(m *metrics.Metrics) { m.SetStale(true); m.SetStale(false) }, map[string]float64{"trellis_data_stale": 0}},
		{"stale", func(m *metrics.Metrics) { m.SetStale(true) }, map[string]float64{"trellis_data_stale": 1}},
		{"store size", func(m *metrics.Metrics) { m.SetStoreSize(1_000_000) }, map[string]float64{"trellis_store_resources": 1_000_000}},
		{"quarantines", func(m *metrics.Metrics) { m.SetQuarantined(3); m.SetQuarantined(2) }, map[string]float64{"trellis_quarantined_organizations": 2}},
		{"applies", func(m *metrics.Metrics) {
			m.ObserveApply(300 * time.Microsecond)
			m.ObserveApply(2 * time.Millisecond)
		}, map[string]float64{"trellis_change_apply_duration_seconds": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			tc.report(m)
			for name, want := range tc.want {
				if got, ok := sample(t, m, name, nil); !ok || got != want {
					t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
				}
			}
		})
	}
}

func TestObserveDuration(t *testing.T) {
	m := metrics.New()
	m.ObserveDuration("check", 40*time.Microsecond)
	m.ObserveDuration("check", 3*time.Millisecond)
	m.ObserveDuration("batch", time.Millisecond)
	for ep, want := range map[string]float64{"check": 2, "batch": 1} {
		if got, _ := sample(t, m, "trellis_decision_duration_seconds", map[string]string{"entrypoint": ep}); got != want {
			t.Errorf("%s: %v observations, want %v", ep, got, want)
		}
	}
}

func TestHandlerServesEveryMetric(t *testing.T) {
	m := metrics.New()
	m.ObserveDecision("check", true, "token", nil)
	m.ObserveDuration("check", time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, name := range []string{
		`trellis_decisions_total{decided_by="token",entrypoint="check",result="allow"} 1`,
		`trellis_decision_duration_seconds_bucket{entrypoint="check",le=`,
		"trellis_applied_revision ",
		"trellis_head_revision ",
		"trellis_replication_lag_revisions ",
		"trellis_change_apply_duration_seconds_bucket{",
		"trellis_store_resources ",
		"trellis_data_stale ",
		"trellis_quarantined_organizations ",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.ObserveDecision("check", true, "token", nil)
	if _, ok := sample(t, b, "trellis_decisions_total", nil); ok {
		t.Error("a decision counted in one Metrics shows in another")
	}
}

func TestObserveKeyRefresh(t *testing.T) {
	m := metrics.New()
	const gauge, counter = "trellis_jwks_last_success_timestamp_seconds", "trellis_jwks_refresh_failures_total"
	if g, ok := sample(t, m, gauge, nil); !ok || g != 0 {
		t.Fatalf("%s = %v (present %v) before any fetch, want 0", gauge, g, ok)
	}
	t1 := time.Unix(1_700_000_000, 500_000_000)
	m.ObserveKeyRefresh(t1, nil)
	m.ObserveKeyRefresh(t1.Add(time.Minute), errors.New("get jwks: unexpected status \"503\""))
	m.ObserveKeyRefresh(t1.Add(2*time.Minute), errors.New("parse jwks"))
	if g, _ := sample(t, m, gauge, nil); g != 1_700_000_000.5 {
		t.Errorf("%s = %v after failures, want the last success 1700000000.5", gauge, g)
	}
	if c, _ := sample(t, m, counter, nil); c != 2 {
		t.Errorf("%s = %v, want 2", counter, c)
	}
	m.ObserveKeyRefresh(t1.Add(3*time.Minute), nil)
	if g, _ := sample(t, m, gauge, nil); g != 1_700_000_180.5 {
		t.Errorf("%s = %v after a success, want 1700000180.5", gauge, g)
	}
}
