package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one system under load: where to send requests and how to read
// their answers.
type Target struct {
	// Name labels the target in reports.
	Name string
	// Base is the server's root URL, such as http://127.0.0.1:8181; API
	// paths are appended to it. Its host must be a loopback address.
	Base string
	// API encodes requests for the target and decodes its answers. It is
	// called to encode each mix request once, before the load starts.
	API API
	// Verify compares every answer with the Oracle's (Request.Verify);
	// false for a ceiling that answers a constant.
	Verify bool
	// PID is the server process, for RSS and CPU; 0: not measured.
	PID int
	// CacheMetrics says the server exports its decision cache's counters
	// on GET /metrics (Trellis does), read before and after the measured
	// window.
	CacheMetrics bool
}

// Config bounds one load run. Zero fields get the defaults their comments
// name.
type Config struct {
	// Connections is the number of concurrent connections (default 32). In
	// the closed loop each has one request in flight; in the open loop it
	// bounds the requests in flight.
	Connections int
	// Rate, when positive, runs an open loop: requests are scheduled at
	// Rate per second whatever the answers' latency, and latency is
	// measured from the scheduled time, so a stalled server is not hidden
	// (no coordinated omission). Zero runs a closed loop.
	Rate float64
	// Warmup runs before measuring; its answers are checked but not timed.
	Warmup time.Duration
	// Duration is how long to measure (default 10s).
	Duration time.Duration
	// MaxRequests, when positive, ends the measurement after that many
	// requests.
	MaxRequests int64
	// Timeout bounds each request (default 5s).
	Timeout time.Duration
	// Writes, when set, runs a write stream through the target's admin
	// route during the measured window.
	Writes *Writes
}

func (c Config) withDefaults() Config {
	if c.Connections <= 0 {
		c.Connections = 32
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// Result is what one load run measured.
type Result struct {
	Target      string
	Connections int
	Rate        float64 // 0: closed loop
	Elapsed     time.Duration
	Requests    int64 // completed in the measured window, errors included
	Errors      int64 // transport errors, non-200 answers, undecodable bodies
	Wrong       int64 // answers that differ from the Oracle, warmup included
	// Verified says the answers were compared with the Oracle's
	// (Target.Verify); Wrong is 0 when they were not.
	Verified bool
	// Latency is over every answered request of the measured window, of
	// all kinds together (a batch or a list counts as one request).
	Latency Percentiles
	// Kinds breaks the answered requests of the measured window down by
	// kind, in Kinds order; kinds the mix lacks are left out.
	Kinds []KindResult
	// FreshSent is the number of KindFresh requests answered in the
	// measured window, FreshFirst how many of those carried a token the
	// server had never been sent (warmup skips them). The others repeat a
	// token from an earlier pass through the mix, which a verified-token
	// cache may answer.
	FreshSent, FreshFirst int64
	// FirstError and FirstWrong describe the first failure of each kind.
	FirstError, FirstWrong string
	// Server is the server process's usage over the measured window; nil
	// when the target has no PID or /proc is unavailable.
	Server *ProcUsage
	// Client is the load generator's own CPU over the measured window.
	Client *ProcUsage
	// Cache counts the server's decision cache lookups in the measured
	// window; nil when not measured (Target.CacheMetrics).
	Cache *CacheCounts
	// Writes is what the write stream did; nil without one.
	Writes *WriteResult
	// Timeline is the latency of the measured window second by second,
	// by when each request started (in open loop: was scheduled to).
	Timeline []Second
}

// Second is what the requests started in one second of a run took.
type Second struct {
	Requests int64
	P50, P99 time.Duration
}

// CacheCounts are decision cache lookups.
type CacheCounts struct {
	Hits, Misses uint64
}

// HitRatio is the share of lookups that hit, 0 with none.
func (c CacheCounts) HitRatio() float64 {
	if c.Hits+c.Misses == 0 {
		return 0
	}
	return float64(c.Hits) / float64(c.Hits+c.Misses)
}

// KindResult is the share of one request kind in a run.
type KindResult struct {
	Kind     string
	Requests int64 // answered in the measured window
	Latency  Percentiles
}

// Throughput is completed requests per second in the measured window.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentiles are latency quantiles of a run.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
}

// Percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method: the smallest value with at least q of the samples
// at or below it. It returns 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps an exact rank (q*n an integer up to float error)
	// from rounding up to the next sample.
	rank := int(math.Ceil(q*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts samples in place and returns their percentiles.
func Summarize(samples []time.Duration) Percentiles {
	slices.Sort(samples)
	p := Percentiles{
		P50:  Percentile(samples, 0.50),
		P90:  Percentile(samples, 0.90),
		P99:  Percentile(samples, 0.99),
		P999: Percentile(samples, 0.999),
	}
	if len(samples) > 0 {
		p.Max = samples[len(samples)-1]
	}
	return p
}

// ErrWrongAnswer is returned by Run (wrapped) when an answer differed from
// the Oracle's; the Result is still complete.
var ErrWrongAnswer = errors.New("wrong answers")

// ErrNotLoopback is returned by Run when a target is not on a loopback
// address: the load generator never loads another machine.
var ErrNotLoopback = errors.New("target is not a loopback address")

// rssEvery is how often Run samples the server's RSS.
const rssEvery = 200 * time.Millisecond

// Run loads t with the requests of mix, cycling through them, for
// cfg.Warmup and then cfg.Duration (or cfg.MaxRequests), and returns what it
// measured. The warmup skips KindFresh requests, so that their tokens are
// new to the server when the measurement starts. It returns an error
// wrapping ErrWrongAnswer when a verified target gave a wrong answer, and
// an error when the target is not loopback, a request cannot be encoded or
// ctx ends early. Run is safe to call concurrently for different targets,
// though that measures neither well.
func Run(ctx context.Context, t Target, mix *Mix, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{Target: t.Name, Connections: cfg.Connections, Rate: cfg.Rate, Verified: t.Verify}
	if err := checkLoopback(t.Base); err != nil {
		return res, err
	}
	if len(mix.Requests) == 0 {
		return res, errors.New("loadtest: empty mix")
	}
	r := &runner{
		t:      t,
		mix:    mix,
		urls:   make([]string, len(mix.Requests)),
		bodies: make([][]byte, len(mix.Requests)),
		kinds:  make([]uint8, len(mix.Requests)),
		sent:   make([]atomic.Bool, len(mix.Requests)),
	}
	base := strings.TrimSuffix(t.Base, "/")
	for i, q := range mix.Requests {
		path, b, err := t.API.Encode(q)
		if err != nil {
			return res, fmt.Errorf("loadtest: encode request %d: %w", i, err)
		}
		r.urls[i], r.bodies[i] = base+path, b
		k := slices.Index(Kinds, q.Kind)
		if k < 0 {
			return res, fmt.Errorf("loadtest: request %d: unknown kind %q", i, q.Kind)
		}
		r.kinds[i] = uint8(k)
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        cfg.Connections,
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	r.client = &http.Client{Transport: tr, Timeout: cfg.Timeout}

	if cfg.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Warmup)
		r.load(wctx, cfg, false)
		cancel()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	r.errors.Store(0)
	r.done.Store(0)
	r.firstError = ""

	mctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	before, serverErr := ReadProc(t.PID)
	if t.PID <= 0 {
		serverErr = errors.New("no server process")
	}
	self, selfErr := ReadProc(0)
	var cacheBefore CacheCounts
	var cacheErr error
	if t.CacheMetrics {
		cacheBefore, cacheErr = readCacheCounts(ctx, r.client, base)
	}
	rss := watchRSS(mctx, t.PID, rssEvery)
	writes := make(chan WriteResult, 1)
	if cfg.Writes != nil {
		go func() { writes <- newWriter(*cfg.Writes, base).run(mctx) }()
	}
	start := time.Now()
	samples := r.load(mctx, cfg, true)
	res.Elapsed = time.Since(start)
	cancel() // ended by cfg.MaxRequests: stop the RSS sampler and the writes too
	rssSamples := <-rss
	if cfg.Writes != nil {
		w := <-writes
		res.Writes = &w
	}
	if t.CacheMetrics && cacheErr == nil {
		if after, err := readCacheCounts(ctx, r.client, base); err == nil {
			res.Cache = &CacheCounts{Hits: after.Hits - cacheBefore.Hits, Misses: after.Misses - cacheBefore.Misses}
		}
	}
	if serverErr == nil {
		if after, err := ReadProc(t.PID); err == nil {
			u := Usage(before, after, res.Elapsed)
			u.RSSSpread = Spread(append(rssSamples, after.RSS))
			res.Server = &u
		}
	}
	if selfErr == nil {
		if after, err := ReadProc(0); err == nil {
			u := Usage(self, after, res.Elapsed)
			res.Client = &u
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Requests = int64(len(samples)) + r.errors.Load()
	res.Errors = r.errors.Load()
	res.Wrong = r.wrong.Load()
	res.FreshSent, res.FreshFirst = r.freshSent.Load(), r.freshFirst.Load()
	res.FirstError, res.FirstWrong = r.firstError, r.firstWrong
	res.Timeline = timeline(samples)
	res.Latency, res.Kinds = summarizeKinds(samples)
	if res.Wrong > 0 {
		return res, fmt.Errorf("loadtest: %s: %d %w, first: %s", t.Name, res.Wrong, ErrWrongAnswer, res.FirstWrong)
	}
	return res, nil
}

// sample is the latency of one answered request, its kind (an index
// into Kinds) and the second of the measured window it started in.
type sample struct {
	d      time.Duration
	kind   uint8
	second uint32
}

// timeline returns the percentiles of samples second by second.
func timeline(samples []sample) []Second {
	var bySecond [][]time.Duration
	for _, s := range samples {
		for int(s.second) >= len(bySecond) {
			bySecond = append(bySecond, nil)
		}
		bySecond[s.second] = append(bySecond[s.second], s.d)
	}
	out := make([]Second, len(bySecond))
	for i, ds := range bySecond {
		p := Summarize(ds)
		out[i] = Second{Requests: int64(len(ds)), P50: p.P50, P99: p.P99}
	}
	return out
}

// summarizeKinds returns the percentiles of all samples and of each kind's.
func summarizeKinds(samples []sample) (Percentiles, []KindResult) {
	all := make([]time.Duration, len(samples))
	byKind := make([][]time.Duration, len(Kinds))
	for i, s := range samples {
		all[i] = s.d
		byKind[s.kind] = append(byKind[s.kind], s.d)
	}
	var kinds []KindResult
	for k, ds := range byKind {
		if len(ds) > 0 {
			kinds = append(kinds, KindResult{Kind: Kinds[k], Requests: int64(len(ds)), Latency: Summarize(ds)})
		}
	}
	return Summarize(all), kinds
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("loadtest: target URL: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("loadtest: %s: %w", raw, ErrNotLoopback)
	}
	return nil
}

// runner holds one target's state across warmup and measurement.
type runner struct {
	t      Target
	mix    *Mix
	urls   []string
	bodies [][]byte
	kinds  []uint8       // index into Kinds of each request
	sent   []atomic.Bool // a KindFresh request was answered once already
	client *http.Client

	next       atomic.Int64 // next request index (cycles through the mix)
	done       atomic.Int64
	errors     atomic.Int64
	wrong      atomic.Int64
	freshSent  atomic.Int64
	freshFirst atomic.Int64

	mu                     sync.Mutex
	firstError, firstWrong string
}

// load sends requests until ctx ends (or cfg.MaxRequests when timed) and
// returns the latencies of the successful ones when timed.
func (r *runner) load(ctx context.Context, cfg Config, timed bool) []sample {
	t0 := time.Now()
	at := func(start time.Time, k uint8) sample {
		return sample{time.Since(start), k, uint32(max(start.Sub(t0), 0) / time.Second)}
	}
	var wg sync.WaitGroup
	perWorker := make([][]sample, cfg.Connections)
	if cfg.Rate > 0 {
		jobs := make(chan time.Time, cfg.Connections)
		for w := range cfg.Connections {
			wg.Go(func() {
				for sched := range jobs {
					if k, ok := r.one(ctx, timed); ok && timed {
						perWorker[w] = append(perWorker[w], at(sched, k))
					}
				}
			})
		}
		r.schedule(ctx, cfg, jobs)
		close(jobs)
	} else {
		for w := range cfg.Connections {
			wg.Go(func() {
				for ctx.Err() == nil {
					start := time.Now()
					if k, ok := r.one(ctx, timed); ok && timed {
						perWorker[w] = append(perWorker[w], at(start, k))
					}
					if timed && cfg.MaxRequests > 0 && r.done.Load() >= cfg.MaxRequests {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var all []sample
	for _, s := range perWorker {
		all = append(all, s...)
	}
	return all
}

// schedule feeds the open loop: one scheduled start time per request at
// cfg.Rate. When every connection is busy the send blocks, but the next
// start times stay on the schedule, so the backlog shows up as latency.
func (r *runner) schedule(ctx context.Context, cfg Config, jobs chan<- time.Time) {
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	for i := int64(0); ; i++ {
		if cfg.MaxRequests > 0 && i >= cfg.MaxRequests {
			return
		}
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		select {
		case <-ctx.Done():
			return
		case jobs <- at:
		}
	}
}

// pick returns the index of the next request to send. Untimed (warmup),
// it passes over KindFresh requests, unless the mix holds nothing else.
func (r *runner) pick(timed bool) int {
	n := len(r.bodies)
	for range n {
		i := int((r.next.Add(1) - 1) % int64(n))
		if timed || r.mix.Requests[i].Kind != KindFresh {
			return i
		}
	}
	return int((r.next.Add(1) - 1) % int64(n))
}

// one sends the next request and checks its answer; it reports whether the
// request got a decoded 200 answer, and the request's kind. A request cut
// off by the end of ctx counts as nothing.
func (r *runner) one(ctx context.Context, timed bool) (uint8, bool) {
	i := r.pick(timed)
	q := r.mix.Requests[i]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.urls[i], bytes.NewReader(r.bodies[i]))
	if err != nil {
		r.fail(fmt.Sprintf("build request: %v", err))
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err.Error())
		}
		return 0, false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		if ctx.Err() == nil {
			r.fail(fmt.Sprintf("read answer: %v", err))
		}
		return 0, false
	}
	if resp.StatusCode != http.StatusOK {
		r.fail(fmt.Sprintf("%s %s: %s: %.200s", q.Kind, r.urls[i], resp.Status, body))
		return 0, false
	}
	ans, err := r.t.API.Decode(q, body)
	if err != nil {
		r.fail(fmt.Sprintf("%s: decode answer: %v: %.200s", q.Kind, err, body))
		return 0, false
	}
	if r.t.Verify {
		if err := q.Verify(ans); err != nil {
			r.wrong.Add(1)
			r.mu.Lock()
			if r.firstWrong == "" {
				r.firstWrong = fmt.Sprintf("%s: %v: %.300s", q.Kind, err, body)
			}
			r.mu.Unlock()
		}
	}
	first := q.Kind == KindFresh && r.sent[i].CompareAndSwap(false, true)
	if timed {
		r.done.Add(1)
		if q.Kind == KindFresh {
			r.freshSent.Add(1)
			if first {
				r.freshFirst.Add(1)
			}
		}
	}
	return r.kinds[i], true
}

func (r *runner) fail(msg string) {
	r.errors.Add(1)
	r.mu.Lock()
	if r.firstError == "" {
		r.firstError = msg
	}
	r.mu.Unlock()
}

// watchRSS samples the RSS of pid every interval until ctx ends, then sends
// the samples it took (none when pid is not positive).
func watchRSS(ctx context.Context, pid int, every time.Duration) <-chan []int64 {
	out := make(chan []int64, 1)
	if pid <= 0 {
		out <- nil
		return out
	}
	go func() {
		var samples []int64
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if p, err := ReadProc(pid); err == nil {
				samples = append(samples, p.RSS)
			}
			select {
			case <-ctx.Done():
				out <- samples
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// readCacheCounts reads the decision cache's counters from the Prometheus
// text that GET base/metrics answers.
func readCacheCounts(ctx context.Context, client *http.Client, base string) (CacheCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return CacheCounts{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return CacheCounts{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return CacheCounts{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return CacheCounts{}, fmt.Errorf("loadtest: GET /metrics: %s", resp.Status)
	}
	var c CacheCounts
	found := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		var dst *uint64
		switch {
		case !ok:
			continue
		case name == "trellis_decision_cache_hits_total":
			dst = &c.Hits
		case name == "trellis_decision_cache_misses_total":
			dst = &c.Misses
		default:
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return CacheCounts{}, fmt.Errorf("loadtest: /metrics: %s: %w", name, err)
		}
		*dst = uint64(f)
		found++
	}
	if found != 2 {
		return CacheCounts{}, errors.New("loadtest: /metrics has no decision cache counters")
	}
	return c, nil
}
