package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one system under load: where to send checks and how to read
// their answers.
type Target struct {
	// Name labels the target in reports.
	Name string
	// URL receives every check as a POST with a JSON body. Its host must be
	// a loopback address.
	URL string
	// Body encodes a request for this target. It is called once per mix
	// request, before the load starts.
	Body func(Request) ([]byte, error)
	// Allowed extracts the decision from a 200 response body.
	Allowed func(body []byte) (bool, error)
	// Verify compares every answer with Request.Want; false for a ceiling
	// that answers a constant.
	Verify bool
	// PID is the server process, for RSS and CPU; 0: not measured.
	PID int
}

// TrellisBody encodes r for Trellis's POST /v1/check.
func TrellisBody(r Request) ([]byte, error) {
	return json.Marshal(checkInput{Token: r.Token, Permission: r.Permission, Resource: resourceRef{ID: r.ResourceID}})
}

// OPABody encodes r for a stock OPA's Data API, POST
// /v1/data/trellis/edge/check: the same fields as input.
func OPABody(r Request) ([]byte, error) {
	return json.Marshal(struct {
		Input checkInput `json:"input"`
	}{checkInput{Token: r.Token, Permission: r.Permission, Resource: resourceRef{ID: r.ResourceID}}})
}

type checkInput struct {
	Token      string      `json:"token"`
	Permission string      `json:"permission"`
	Resource   resourceRef `json:"resource"`
}

type resourceRef struct {
	ID string `json:"id"`
}

// TrellisAllowed reads "allowed" from a Trellis decision; a body without it
// is an error.
func TrellisAllowed(body []byte) (bool, error) {
	var d struct {
		Allowed *bool `json:"allowed"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return false, err
	}
	if d.Allowed == nil {
		return false, errors.New(`no "allowed" in the answer`)
	}
	return *d.Allowed, nil
}

// OPAAllowed reads "result.allowed" from an OPA Data API answer; an
// undefined result is an error.
func OPAAllowed(body []byte) (bool, error) {
	var d struct {
		Result *struct {
			Allowed *bool `json:"allowed"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return false, err
	}
	if d.Result == nil || d.Result.Allowed == nil {
		return false, errors.New(`no "result.allowed" in the answer`)
	}
	return *d.Result.Allowed, nil
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
	Latency     Percentiles
	// FirstError and FirstWrong describe the first failure of each kind.
	FirstError, FirstWrong string
	// Server is the server process's usage over the measured window; nil
	// when the target has no PID or /proc is unavailable.
	Server *ProcUsage
	// Client is the load generator's own CPU over the measured window.
	Client *ProcUsage
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

// Run loads t with the requests of mix, cycling through them, for
// cfg.Warmup and then cfg.Duration (or cfg.MaxRequests), and returns what it
// measured. It returns an error wrapping ErrWrongAnswer when a verified
// target gave a wrong answer, and an error when the target is not loopback,
// a request cannot be encoded or ctx ends early. Run is safe to call
// concurrently for different targets, though that measures neither well.
func Run(ctx context.Context, t Target, mix *Mix, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{Target: t.Name, Connections: cfg.Connections, Rate: cfg.Rate}
	if err := checkLoopback(t.URL); err != nil {
		return res, err
	}
	if len(mix.Requests) == 0 {
		return res, errors.New("loadtest: empty mix")
	}
	bodies := make([][]byte, len(mix.Requests))
	for i, r := range mix.Requests {
		b, err := t.Body(r)
		if err != nil {
			return res, fmt.Errorf("loadtest: encode request %d: %w", i, err)
		}
		bodies[i] = b
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
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	r := &runner{t: t, mix: mix, bodies: bodies, client: client}
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
	peak := r.watchRSS(mctx, t.PID)
	start := time.Now()
	samples := r.load(mctx, cfg, true)
	res.Elapsed = time.Since(start)
	if serverErr == nil {
		if after, err := ReadProc(t.PID); err == nil {
			u := Usage(before, after, res.Elapsed)
			u.PeakRSS = max(u.RSS, <-peak)
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
	res.FirstError, res.FirstWrong = r.firstError, r.firstWrong
	res.Latency = Summarize(samples)
	if res.Wrong > 0 {
		return res, fmt.Errorf("loadtest: %s: %d %w, first: %s", t.Name, res.Wrong, ErrWrongAnswer, res.FirstWrong)
	}
	return res, nil
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
	bodies [][]byte
	client *http.Client

	next   atomic.Int64 // next request index (cycles through the mix)
	done   atomic.Int64
	errors atomic.Int64
	wrong  atomic.Int64

	mu                     sync.Mutex
	firstError, firstWrong string
}

// load sends requests until ctx ends (or cfg.MaxRequests when timed) and
// returns the latencies of the successful ones when timed.
func (r *runner) load(ctx context.Context, cfg Config, timed bool) []time.Duration {
	var wg sync.WaitGroup
	perWorker := make([][]time.Duration, cfg.Connections)
	if cfg.Rate > 0 {
		jobs := make(chan time.Time, cfg.Connections)
		for w := range cfg.Connections {
			wg.Go(func() {
				for sched := range jobs {
					if ok := r.one(ctx, cfg, timed); ok && timed {
						perWorker[w] = append(perWorker[w], time.Since(sched))
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
					if ok := r.one(ctx, cfg, timed); ok && timed {
						perWorker[w] = append(perWorker[w], time.Since(start))
					}
					if timed && cfg.MaxRequests > 0 && r.done.Load() >= cfg.MaxRequests {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var all []time.Duration
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

// one sends the next request and checks its answer; it reports whether the
// request got a decoded 200 answer. A request cut off by the end of ctx
// counts as nothing.
func (r *runner) one(ctx context.Context, cfg Config, timed bool) bool {
	i := int(r.next.Add(1)-1) % len(r.bodies)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.t.URL, bytes.NewReader(r.bodies[i]))
	if err != nil {
		r.fail(fmt.Sprintf("build request: %v", err))
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err.Error())
		}
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		if ctx.Err() == nil {
			r.fail(fmt.Sprintf("read answer: %v", err))
		}
		return false
	}
	if resp.StatusCode != http.StatusOK {
		r.fail(fmt.Sprintf("%s: %.200s", resp.Status, body))
		return false
	}
	got, err := r.t.Allowed(body)
	if err != nil {
		r.fail(fmt.Sprintf("decode answer: %v: %.200s", err, body))
		return false
	}
	if r.t.Verify && got != r.mix.Requests[i].Want {
		r.wrong.Add(1)
		r.mu.Lock()
		if r.firstWrong == "" {
			q := r.mix.Requests[i]
			r.firstWrong = fmt.Sprintf("%s check %s on %s: got allowed=%t, want %t: %.300s", q.Kind, q.Permission, q.ResourceID, got, q.Want, body)
		}
		r.mu.Unlock()
	}
	if timed {
		r.done.Add(1)
	}
	return true
}

func (r *runner) fail(msg string) {
	r.errors.Add(1)
	r.mu.Lock()
	if r.firstError == "" {
		r.firstError = msg
	}
	r.mu.Unlock()
}

// watchRSS samples the RSS of pid every 200ms until ctx ends, then sends
// the peak it saw.
func (r *runner) watchRSS(ctx context.Context, pid int) <-chan int64 {
	out := make(chan int64, 1)
	if pid <= 0 {
		out <- 0
		return out
	}
	go func() {
		var peak int64
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if p, err := ReadProc(pid); err == nil {
				peak = max(peak, p.RSS)
			}
			select {
			case <-ctx.Done():
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}
