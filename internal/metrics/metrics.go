// Package metrics holds Trellis's Prometheus metrics: decisions and their
// latency (reported by the HTTP layer), the state of the data the
// decisions are made on (reported by the data source), and the fetches of
// the token issuer's keys (reported by the token verifier). Producers depend on
// small interfaces of their own that *Metrics satisfies; only cmd/trellis
// imports this package.
//
// The metrics live in a registry of their own, never in Prometheus's global
// default registry, so two servers in one process (as in tests) never
// collide.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values of trellis_decisions_total.
const (
	ResultAllow = "allow"
	ResultDeny  = "deny"
	ResultError = "error"

	DecidedByToken      = "token"
	DecidedByAssignment = "assignment"
	DecidedByNone       = "none"
)

// Metrics records Trellis's metrics in its own registry. It is safe for
// concurrent use; the zero value is not usable, call New.
type Metrics struct {
	reg *prometheus.Registry

	decisions        *prometheus.CounterVec
	decisionDuration *prometheus.HistogramVec
	applied          prometheus.Gauge
	head             prometheus.Gauge
	lag              prometheus.Gauge
	applyDuration    prometheus.Histogram
	storeResources   prometheus.Gauge
	stale            prometheus.Gauge
	jwksLastSuccess  prometheus.Gauge
	jwksFailures     prometheus.Counter
	quarantined      prometheus.Gauge
	policy           *prometheus.GaugeVec
	policyReloads    *prometheus.CounterVec
}

// New returns Metrics registered, together with the Go runtime and process
// collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_decisions_total",
			Help: "Decisions answered, by entrypoint, result (allow, deny or error: no decision) and the layer that decided (token, assignment or none).",
		}, []string{"entrypoint", "result", "decided_by"}),
		decisionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trellis_decision_duration_seconds",
			Help: "Time to answer a decision request (a batch as a whole), from decoded request to answer, by entrypoint.",
			// 25µs … ~0.4s: a check by token or at depth 5 takes tens of
			// microseconds; waits for a revision take milliseconds.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 15),
		}, []string{"entrypoint"}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_applied_revision",
			Help: "Data revision decisions are currently made at.",
		}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_head_revision",
			Help: "Latest revision the data source is known to have.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_replication_lag_revisions",
			Help: "Revisions the data source has that decisions do not reflect yet (head - applied).",
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trellis_change_apply_duration_seconds",
			Help: "Time to apply one batch of changes from the data source's change feed to the store.",
			// 50µs … ~1.6s: one assignment change is sub-millisecond, a
			// re-parent of a large subtree may take much longer.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		storeResources: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_store_resources",
			Help: "Resources in the decision store, organization roots included.",
		}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_data_stale",
			Help: "1 while the data source cannot be followed and decisions use the last data loaded, else 0.",
		}),
		jwksLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_jwks_last_success_timestamp_seconds",
			Help: "Unix time of the last fetch of the session token issuer's JWKS that installed a usable key set (0: none yet, or no JWKS configured).",
		}),
		jwksFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trellis_jwks_refresh_failures_total",
			Help: "Fetches of the session token issuer's JWKS that failed (unreachable, non-200, unparseable, no usable key); the last good keys stay in use.",
		}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_quarantined_organizations",
			Help: "Organizations out of service because their data breaks a rule of the data model (their decisions answer 503 organization_unavailable; /ready lists them).",
		}),
		policy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trellis_policy_info",
			Help: "1, labelled with the revision (a digest of the Rego modules) of the policies decisions are made with.",
		}, []string{"revision"}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_policy_reloads_total",
			Help: "Reloads of --policy-dir (SIGHUP), by result: ok, or error (the policies in use stay as they were).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		m.policy, m.policyReloads,
		m.decisions, m.decisionDuration,
		m.applied, m.head, m.lag, m.applyDuration, m.storeResources, m.stale, m.quarantined,
		m.jwksLastSuccess, m.jwksFailures,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// SetPolicy records the revision of the policies in use.
func (m *Metrics) SetPolicy(revision string) {
	m.policy.Reset()
	m.policy.WithLabelValues(revision).Set(1)
}

// ObservePolicyReload counts one reload of the policies; err is its
// failure, nil on success.
func (m *Metrics) ObservePolicyReload(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.policyReloads.WithLabelValues(result).Inc()
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry the metrics live in, for collectors of
// other packages. The caller must not unregister Trellis's own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveDecision counts one decision of entrypoint. A non-nil err means
// no decision was made (result "error"); allowed and decidedBy are then
// ignored. A decidedBy other than "token" or "assignment" counts as "none",
// so a malformed value cannot add label values.
func (m *Metrics) ObserveDecision(entrypoint string, allowed bool, decidedBy string, err error) {
	result := ResultDeny
	switch {
	case err != nil:
		result, decidedBy = ResultError, DecidedByNone
	case allowed:
		result = ResultAllow
	}
	if decidedBy != DecidedByToken && decidedBy != DecidedByAssignment {
		decidedBy = DecidedByNone
	}
	m.decisions.WithLabelValues(entrypoint, result, decidedBy).Inc()
}

// ObserveDuration records how long one decision request to entrypoint took.
func (m *Metrics) ObserveDuration(entrypoint string, d time.Duration) {
	m.decisionDuration.WithLabelValues(entrypoint).Observe(d.Seconds())
}

// SetRevision records the applied revision and the data source's head; the
// replication lag is their difference, never below zero (a head read before
// the latest apply may trail it).
func (m *Metrics) SetRevision(applied, head int64) {
	m.applied.Set(float64(applied))
	m.head.Set(float64(head))
	m.lag.Set(float64(max(head-applied, 0)))
}

// ObserveApply records how long applying changes from the change feed took.
func (m *Metrics) ObserveApply(d time.Duration) {
	m.applyDuration.Observe(d.Seconds())
}

// SetStale records whether decisions are made on data the source can no
// longer confirm as current.
func (m *Metrics) SetStale(stale bool) {
	v := 0.0
	if stale {
		v = 1
	}
	m.stale.Set(v)
}

// SetQuarantined records the number of quarantined organizations.
func (m *Metrics) SetQuarantined(n int) {
	m.quarantined.Set(float64(n))
}

// SetStoreSize records the number of resources in the decision store.
func (m *Metrics) SetStoreSize(n int) {
	m.storeResources.Set(float64(n))
}

// ObserveKeyRefresh records one fetch of the token issuer's key set made at
// time at: a failure (err set) is counted, a success moves
// trellis_jwks_last_success_timestamp_seconds (implements
// token.KeyObserver).
func (m *Metrics) ObserveKeyRefresh(at time.Time, err error) {
	if err != nil {
		m.jwksFailures.Inc()
		return
	}
	m.jwksLastSuccess.Set(float64(at.UnixNano()) / 1e9)
}

// WatchDecisionCache exports the decision cache's lookup counters, read
// from stats at each scrape, as trellis_decision_cache_{hits,misses}_total.
func (m *Metrics) WatchDecisionCache(stats func() (hits, misses uint64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trellis_decision_cache_hits_total",
			Help: "Single checks answered from the decision cache.",
		}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trellis_decision_cache_misses_total",
			Help: "Single checks the decision cache did not hold at the current revision.",
		}, func() float64 { _, m := stats(); return float64(m) }),
	)
}

// WatchLag exports how far behind the primary the data may be, read from
// lag at each scrape, as trellis_replication_lag_seconds (see
// postgres.Follower.Lag).
func (m *Metrics) WatchLag(lag func() time.Duration) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trellis_replication_lag_seconds",
		Help: "How far behind the primary database the data decisions are made on may be: the time since the newest moment as of which it holds every commit.",
	}, func() float64 { return lag().Seconds() }))
}
