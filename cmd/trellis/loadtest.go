package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// loadtestConfig is everything `trellis bench http` is configured with.
type loadtestConfig struct {
	Tier          string
	Seed          int64
	Connections   int
	Duration      time.Duration
	Warmup        time.Duration
	Rate          float64
	HalfLoad      bool
	MixSize       int
	Tokens        int
	Mix           string
	Shares        loadtest.Shares // parsed from Mix
	BatchSize     int
	ListLimit     int
	Out           string
	OPA           string
	Systems       string
	ServeConstant string
	DatabaseURL   string
	WriteRate     float64
}

// loadtestIssuer is the iss of the tokens the load test mints.
const loadtestIssuer = "https://loadtest.trellis.invalid"

// halfLoadName prefixes the name of the --half-load run of Trellis, and
// halfCeilingName that of the ceiling at the same rate.
const (
	halfLoadName    = "trellis @ 50 % open loop"
	halfCeilingName = "ceiling (constant) @ 50 % open loop"
)

// loadtestSystems are the systems a run can load, in report order: Trellis
// first, as the ratios are Trellis's.
// trellis-nocache is Trellis with its decision cache off: every check is
// evaluated, which is what a mix of questions never asked twice would cost.
// opa-minimal is stock OPA on a plain data.json with the hand-written rule
// of policies/baseline; it answers single checks only, so it is not loaded
// unless named (with a --mix of single checks).
var loadtestSystems = []string{"trellis", "trellis-nocache", "opa", "opa-minimal", "ceiling"}

// defaultSystems are the systems loaded when --systems is not given.
var defaultSystems = []string{"trellis", "trellis-nocache", "opa", "ceiling"}

// minimalName is the report name of the opa-minimal system.
const minimalName = "opa-minimal (hand-written rule)"

func benchCommand() *cobra.Command {
	return newGroup("bench", "load Trellis, stock OPA and a constant ceiling over HTTP, checking every answer (bench http); write a generated dataset (bench gen)",
		loadtestCommand(runLoadtest), benchGenCommand(runBenchGen))
}

func loadtestCommand(run func(context.Context, loadtestConfig, io.Writer, io.Writer) error) *cobra.Command {
	return configCommand("http", "load Trellis, stock OPA and a constant ceiling over HTTP, checking every answer",
		"Load Trellis, the stock OPA server on the bundle Trellis builds, and a constant-answer ceiling, one after the other over loopback, with the same generated dataset and request mix; every answer is checked against a brute-force oracle.",
		(*loadtestConfig).define, (*loadtestConfig).check, run)
}

// runLoadtest is `trellis bench http`.
func runLoadtest(ctx context.Context, c loadtestConfig, stdout, stderr io.Writer) error {
	if c.ServeConstant != "" {
		return serveConstant(ctx, c.ServeConstant, c.BatchSize, c.ListLimit)
	}
	return loadtestRun(ctx, c, os.Args, stdout, stderr)
}

func (c *loadtestConfig) define(fs *pflag.FlagSet) {
	fs.StringVar(&c.Tier, "tier", "S", "dataset tier of package gen: S (100 orgs, ~100k resources), M (10,000 orgs, ~1M resources) or L (100,000 orgs, ~10M resources, depth 6)")
	fs.Int64Var(&c.Seed, "seed", 1, "dataset and mix seed")
	fs.IntVar(&c.Connections, "connections", 32, "concurrent connections (closed loop: one request in flight each)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time per system")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "unmeasured (but checked) load before measuring, per system")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop at this many requests per second (0: closed loop)")
	fs.BoolVar(&c.HalfLoad, "half-load", false, "after Trellis's closed-loop run, load a fresh Trellis again in open loop at half the throughput it reached, for its latency below saturation")
	fs.IntVar(&c.MixSize, "mix-size", 10_000, "distinct requests in the mix (cycled; fresh-token requests are new to the server only on the first pass)")
	fs.IntVar(&c.Tokens, "tokens", 16, "distinct long-lived session tokens in the mix (fresh-token requests get one each besides)")
	fs.StringVar(&c.Mix, "mix", loadtest.DefaultShares.String(), "shares of the request kinds, kind=share,…; kinds left out get none (batch elements follow the token, assignment and deny shares)")
	fs.IntVar(&c.BatchSize, "batch-size", 50, "checks per batch request")
	fs.IntVar(&c.ListLimit, "list-limit", 100, "page size of list-resources requests (the first page is checked)")
	fs.StringVar(&c.Out, "out", "bench-results", "folder for the Markdown report and SVG chart")
	fs.StringVar(&c.OPA, "opa", "", "stock opa binary (default: the path `go tool -n opa` prints)")
	fs.StringVar(&c.Systems, "systems", strings.Join(defaultSystems, ","), "comma-separated systems to load: trellis, trellis-nocache (its decision cache off), opa, opa-minimal (stock opa on a plain data.json with a hand-written RBAC rule; single checks only), ceiling")
	fs.StringVar(&c.ServeConstant, "serve-constant", "", "internal: serve the constant-decision ceiling on this address and do nothing else")
	fs.StringVar(&c.DatabaseURL, "database-url", "", databaseURLUsage+": an empty database to import the dataset into; trellis is then served from it (needed by --write-rate)")
	fs.Float64Var(&c.WriteRate, "write-rate", 0, "after trellis's run, run it again with this many assignment writes per second through /v1/admin/changes, spread over the organizations (needs --database-url)")
}

func (c *loadtestConfig) check() error {
	if _, ok := (gen.Spec{}).Tier(c.Tier); !ok {
		return fmt.Errorf("--tier %q: use S, M or L", c.Tier)
	}
	if c.Connections < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Rate < 0 {
		return errors.New("--connections must be at least 1, --duration positive, --warmup and --rate not negative")
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 || c.ListLimit < 1 || c.ListLimit > 1000 {
		return errors.New("--batch-size and --list-limit must be between 1 and 1000 (Trellis's limits)")
	}
	for s := range strings.SplitSeq(c.Systems, ",") {
		if !containsString(loadtestSystems, s) {
			return fmt.Errorf("--systems: unknown system %q: use %s", s, strings.Join(loadtestSystems, ", "))
		}
	}
	switch {
	case c.WriteRate < 0:
		return errors.New("--write-rate must not be negative")
	case c.WriteRate > 0 && c.DatabaseURL == "":
		return errors.New("--write-rate needs --database-url: writes go through PostgreSQL")
	case c.WriteRate > 0 && !containsString(strings.Split(c.Systems, ","), "trellis"):
		return errors.New("--write-rate needs trellis among --systems")
	}
	if c.HalfLoad && (c.Rate > 0 || !containsString(strings.Split(c.Systems, ","), "trellis")) {
		return errors.New("--half-load needs the closed loop (no --rate) and trellis among --systems")
	}
	shares, err := parseShares(c.Mix)
	if err != nil {
		return fmt.Errorf("--mix %q: %w", c.Mix, err)
	}
	c.Shares = shares
	if containsString(strings.Split(c.Systems, ","), "opa-minimal") && (c.Shares.Batch > 0 || c.Shares.List > 0) {
		return errors.New("--systems opa-minimal answers single checks only: give a --mix without batch and list, such as token=25,token-fresh=5,assignment=45,deny=25")
	}
	return nil
}

// parseShares reads kind=share pairs, such as "token=25,batch=5"; the
// kinds left out get no share, and the shares must not all be zero.
func parseShares(s string) (loadtest.Shares, error) {
	var sh loadtest.Shares
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(s, ",") {
		kind, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return sh, fmt.Errorf("%q is not kind=share (kinds: %s)", pair, strings.Join(loadtest.Kinds, ", "))
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return sh, fmt.Errorf("share of %s: %q is not a whole number", kind, val)
		}
		if seen[kind] {
			return sh, fmt.Errorf("%s is given twice", kind)
		}
		seen[kind] = true
		if err := sh.Set(kind, n); err != nil {
			return sh, fmt.Errorf("%w (kinds: %s)", err, strings.Join(loadtest.Kinds, ", "))
		}
	}
	if sh == (loadtest.Shares{}) {
		return sh, errors.New("every share is zero")
	}
	return sh, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveConstant is the ceiling: it reads each request body and answers a
// constant of the shape Trellis answers on that route (a decision, a batch
// of batchSize decisions, a full page of listLimit ids), so it measures
// HTTP and JSON framing on this machine and nothing else.
func serveConstant(ctx context.Context, addr string, batchSize, listLimit int) error {
	const decision = `{"allowed":true,"decided_by":"token","reason":{"code":"token_permission"}}`
	check := []byte(strings.TrimSuffix(decision, "}") + `,"revision":1,"decision_id":"ceiling"}`)
	batch := []byte(`{"results":[` + strings.Repeat(decision+",", batchSize-1) + decision + `],"revision":1,"decision_id":"ceiling"}`)
	ids := make([]string, listLimit)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"authz_resource_%d"`, 100_000+i)
	}
	list := []byte(`{"resource_ids":[` + strings.Join(ids, ",") + `],"next_cursor":` + ids[len(ids)-1] + `,"revision":1,"decision_id":"ceiling"}`)
	answer := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", answer(check))
	mux.Handle("/v1/check/batch", answer(batch))
	mux.Handle("/v1/list-resources", answer(list))
	return serveHTTP(ctx, addr, mux, slog.New(slog.DiscardHandler), nil)
}

func loadtestRun(ctx context.Context, c loadtestConfig, argv []string, stdout, stderr io.Writer) error {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%6.1fs  "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	tmp, err := os.MkdirTemp("", "trellis-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	systems := strings.Split(c.Systems, ",")
	opaBin := c.OPA
	if opaBin == "" && (containsString(systems, "opa") || containsString(systems, "opa-minimal")) {
		out, err := exec.CommandContext(ctx, "go", "tool", "-n", "opa").Output()
		if err != nil {
			return fmt.Errorf("find the opa binary with `go tool -n opa` (run from the module, or pass --opa): %w", err)
		}
		opaBin = strings.TrimSpace(string(out))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	spec, _ := gen.Spec{Seed: c.Seed}.Tier(c.Tier)
	ds := gen.Generate(spec)
	say("generated tier %s seed %d: %d organizations, %d resources, %d memberships, %d assignments", c.Tier, c.Seed,
		len(ds.Organizations), len(ds.Resources), len(ds.Memberships), len(ds.Assignments))
	oracle := loadtest.NewOracle(ds)
	signer, err := token.NewSigner(token.RS256, "loadtest-1")
	if err != nil {
		return err
	}
	mix, err := loadtest.BuildMix(ds, oracle, signer, loadtest.MixConfig{Seed: uint64(c.Seed), Size: c.MixSize, Tokens: c.Tokens, Issuer: loadtestIssuer,
		Shares: c.Shares, BatchSize: c.BatchSize, ListLimit: c.ListLimit})
	if err != nil {
		return err
	}
	mixLine := describeMix(mix)
	say("mix: %s", mixLine)

	dataPath, jwksPath, bundlePath := filepath.Join(tmp, "data.json"), filepath.Join(tmp, "jwks.json"), filepath.Join(tmp, "bundle.tar.gz")
	if err := writeLoadFile(dataPath, func(w io.Writer) error { return loadtest.WriteDataFile(w, ds) }); err != nil {
		return fmt.Errorf("write the data file: %w", err)
	}
	if err := os.WriteFile(jwksPath, signer.JWKS(), 0o600); err != nil {
		return err
	}
	if containsString(systems, "opa") {
		doc, err := index.Build(ds)
		if err != nil {
			return err
		}
		keys := &bundle.Keys{Issuer: loadtestIssuer, Algorithms: []string{token.RS256}, MembershipClaim: token.DefaultMembershipClaim,
			SkewSeconds: int64(token.DefaultSkew / time.Second), JWKS: signer.JWKS()}
		err = writeLoadFile(bundlePath, func(w io.Writer) error {
			_, err := bundle.Build(ctx, w, bundle.Document{Revision: ds.Revision, Data: doc}, bundle.Options{Modules: policies.Modules(), Keys: keys})
			return err
		})
		if err != nil {
			return fmt.Errorf("build the bundle: %w", err)
		}
		say("wrote the data file and the bundle")
	}
	minimalDir := filepath.Join(tmp, "opa-minimal")
	if containsString(systems, "opa-minimal") {
		if err := os.Mkdir(minimalDir, 0o700); err != nil {
			return err
		}
		if err := loadtest.WriteMinimal(minimalDir, ds, loadtestIssuer, signer.JWKS()); err != nil {
			return err
		}
		say("wrote opa-minimal's data.json and rule")
	}

	var writes *loadtest.Writes
	if c.DatabaseURL != "" {
		if writes, err = importForWrites(ctx, c, ds, stderr); err != nil {
			return err
		}
		say("imported the dataset into PostgreSQL")
	}

	// Nothing below reads the dataset, the oracle or the index again: once
	// they are collected, the load generator's GC no longer marks them
	// while it measures.
	rev, resources, assignments := ds.Revision, len(ds.Resources), len(ds.Assignments)
	runtime.GC()

	cfg := loadtest.Config{Connections: c.Connections, Duration: c.Duration, Warmup: c.Warmup, Rate: c.Rate}
	var results []loadtest.Result
	var failures []error
	load := func(sys string, cfg loadtest.Config) (loadtest.Result, error) { // cfg: this run's, the closed loop's or the half load's
		port, err := freePort()
		if err != nil {
			return loadtest.Result{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		base := "http://" + addr
		var cmd *exec.Cmd
		t := loadtest.Target{Name: sys, Base: base}
		var ready string
		switch sys {
		case "trellis", "trellis-nocache":
			args := []string{"serve", "--addr", addr, "--data", dataPath, "--jwks-file", jwksPath,
				"--issuer", loadtestIssuer, "--log-level", "warn", "--bundles=false"}
			if sys == "trellis" && writes != nil {
				args[3], args[4] = "--database-url", c.DatabaseURL
				args = append(args, "--api-key", writes.APIKey)
				t.Name = "trellis (postgres)"
				if cfg.Writes != nil {
					t.Name = fmt.Sprintf("trellis (postgres), %.0f writes/s", cfg.Writes.Rate)
				}
			}
			if sys == "trellis-nocache" {
				args = append(args, "--decision-cache-size", "0")
				t.Name = "trellis, no decision cache"
			}
			cmd = exec.CommandContext(ctx, self, args...)
			t.API, t.Verify, t.CacheMetrics, ready = loadtest.TrellisAPI{}, true, true, base+"/ready"
			if cfg.Rate > 0 && c.Rate == 0 {
				t.Name = fmt.Sprintf("%s (%.0f req/s)", halfLoadName, cfg.Rate)
			}
		case "opa":
			cmd = exec.CommandContext(ctx, opaBin, "run", "--server", "--addr", addr, "--log-level", "error", "--bundle", bundlePath)
			t.Name = "stock opa"
			t.API, t.Verify, ready = loadtest.OPAAPI{}, true, base+"/health"
		case "opa-minimal":
			cmd = exec.CommandContext(ctx, opaBin, loadtest.MinimalOPAArgs(addr, minimalDir)...)
			t.Name = minimalName
			t.API, t.Verify, ready = loadtest.MinimalAPI{}, true, base+"/health"
		case "ceiling":
			cmd = exec.CommandContext(ctx, self, "bench", "http", "--serve-constant", addr,
				"--batch-size", strconv.Itoa(c.BatchSize), "--list-limit", strconv.Itoa(c.ListLimit))
			t.Name = "ceiling (constant)"
			t.API, ready = loadtest.TrellisAPI{}, base+"/health"
			if cfg.Rate > 0 && c.Rate == 0 {
				t.Name = fmt.Sprintf("%s (%.0f req/s)", halfCeilingName, cfg.Rate)
			}
		}
		res, err := runSystem(ctx, cmd, t, ready, mix, cfg, filepath.Join(tmp, sys+".log"), say)
		if err != nil && !errors.Is(err, loadtest.ErrWrongAnswer) {
			return res, fmt.Errorf("%s: %w", t.Name, err)
		}
		if err != nil {
			failures = append(failures, err)
		}
		if res.Errors > 0 && strings.HasPrefix(sys, "trellis") {
			// Another system's errors (stock OPA timing out on lists under
			// load) are its figures, in the report; Trellis's fail the run.
			failures = append(failures, fmt.Errorf("%s: %d errors, first: %s", t.Name, res.Errors, res.FirstError))
		}
		say("%s: %.0f req/s, p99 %v, %d errors, %d wrong", t.Name, res.Throughput(), res.Latency.P99, res.Errors, res.Wrong)
		if w := res.Writes; w != nil {
			say("%s: %d writes (%d failed), p99 %v", t.Name, w.Sent, w.Failed, w.Latency.P99)
			if w.Failed > 0 {
				failures = append(failures, fmt.Errorf("%s: %d of %d writes failed, first: %s", t.Name, w.Failed, w.Sent, w.FirstError))
			}
		}
		results = append(results, res)
		return res, nil
	}
	var halfRate float64 // --half-load's rate, once Trellis's closed loop set it
	for _, sys := range systems {
		res, err := load(sys, cfg)
		if err != nil {
			return err
		}
		if sys == "trellis" && c.WriteRate > 0 {
			// A fresh process again, loading the same data from
			// PostgreSQL, this time with the write stream.
			w := cfg
			w.Writes = writes
			if _, err := load(sys, w); err != nil {
				return err
			}
		}
		if sys == "trellis" && c.HalfLoad {
			// A fresh process, so that the fresh-token requests are new to
			// it and its RSS starts from the same point.
			half := cfg
			half.Rate = res.Throughput() / 2
			if half.Rate <= 0 {
				return errors.New("trellis answered nothing in the closed loop: no rate for --half-load")
			}
			if _, err := load(sys, half); err != nil {
				return err
			}
			halfRate = half.Rate
		}
	}
	if halfRate > 0 && containsString(systems, "ceiling") {
		// The ceiling at the same rate: what the machine and the load
		// generator alone make of the latency there.
		half := cfg
		half.Rate = halfRate
		if _, err := load("ceiling", half); err != nil {
			return err
		}
	}

	table := loadtest.Table(results)
	kinds := loadtest.KindTable(results)
	fmt.Fprint(stdout, "\n"+table+"\n"+kinds)
	if w := loadtest.WritesTable(results); w != "" {
		fmt.Fprint(stdout, "\n"+w)
	}
	report := loadtestReport(c, argv, rev, spec, resources, assignments, mixLine, results)
	if err := writeLoadtestResults(c.Out, c.Tier, report, results); err != nil {
		return err
	}
	say("wrote %s", c.Out)
	return errors.Join(failures...)
}

// writePlanPerOrg is how many assignments the write stream toggles in each
// organization.
const writePlanPerOrg = 8

// importForWrites imports ds, with the role of a write plan, into the
// empty database c.DatabaseURL, and returns the write stream (at
// c.WriteRate) to run against Trellis served from it.
func importForWrites(ctx context.Context, c loadtestConfig, ds *model.Dataset, stderr io.Writer) (*loadtest.Writes, error) {
	plan, err := loadtest.NewWritePlan(ds, writePlanPerOrg, uint64(c.Seed))
	if err != nil {
		return nil, err
	}
	withRole := *ds
	withRole.Roles = append(slices.Clone(ds.Roles), plan.Role)
	if _, err := importDataset(ctx, c.DatabaseURL, &withRole, stderr); err != nil {
		return nil, fmt.Errorf("import the dataset into --database-url (an empty database): %w", err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return &loadtest.Writes{Plan: plan, Rate: c.WriteRate, APIKey: hex.EncodeToString(key)}, nil
}

// runSystem starts cmd, waits until ready answers 200, loads t and stops
// the process. Its output goes to logPath, whose tail is returned with a
// start-up failure.
func runSystem(ctx context.Context, cmd *exec.Cmd, t loadtest.Target, ready string, mix *loadtest.Mix, cfg loadtest.Config, logPath string, say func(string, ...any)) (loadtest.Result, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return loadtest.Result{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return loadtest.Result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited: //nolint:errcheck // the child was told to stop; how it exits does not matter
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed: its exit status says nothing
		}
	}()
	began := time.Now()
	if err := waitReady(ctx, ready, exited); err != nil {
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return loadtest.Result{}, fmt.Errorf("start: %w\n%s", err, tail)
	}
	say("%s ready in %.1fs (pid %d); loading for %v after %v warmup", t.Name, time.Since(began).Seconds(), cmd.Process.Pid, cfg.Duration, cfg.Warmup)
	t.PID = cmd.Process.Pid
	return loadtest.Run(ctx, t, mix, cfg)
}

// waitReady polls url until it answers 200, the process exits or 10
// minutes pass (the stock OPA loads a tier M bundle slowly).
func waitReady(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the server exited: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("not ready after 10 minutes")
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func writeLoadFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func describeMix(m *loadtest.Mix) string {
	var parts []string
	for _, k := range loadtest.Kinds {
		n := m.Count(k)
		switch {
		case n.Requests == 0:
			continue
		case k == loadtest.KindList:
			parts = append(parts, fmt.Sprintf("%d list-resources (%d ids expected in all, %d empty pages)", n.Requests, n.IDs, n.Empty))
		case k == loadtest.KindBatch:
			parts = append(parts, fmt.Sprintf("%d batches of %d checks (%d of %d checks allowed)", n.Requests, n.Checks/n.Requests, n.Allowed, n.Checks))
		default:
			parts = append(parts, fmt.Sprintf("%d %s checks (%d allowed)", n.Requests, k, n.Allowed))
		}
	}
	depths := map[int]int{}
	for _, r := range m.Requests {
		for _, q := range r.Checks {
			depths[q.Depth]++
		}
	}
	var ds []string
	for d := 1; d <= 256; d++ {
		if depths[d] > 0 {
			ds = append(ds, fmt.Sprintf("%d: %d", d, depths[d]))
		}
	}
	return fmt.Sprintf("%d distinct requests, %d long-lived tokens and %d fresh ones: %s; checked resources by depth {%s}",
		len(m.Requests), m.Tokens, m.FreshTokens, strings.Join(parts, ", "), strings.Join(ds, ", "))
}

func loadtestReport(c loadtestConfig, argv []string, rev int64, spec gen.Spec, resources, assignments int, mix string, results []loadtest.Result) string {
	var b bytes.Buffer
	loop := "closed loop"
	if c.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f req/s", c.Rate)
	}
	fmt.Fprintf(&b, "# HTTP load test, tier %s\n\n", c.Tier)
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "- command: `%s`\n", strings.Join(argv, " "))
	fmt.Fprintf(&b, "- dataset: gen tier %s, seed %d: %d organizations, %d resources, %d assignments, depth %d (revision %d)\n",
		c.Tier, spec.Seed, spec.Organizations, resources, assignments, spec.Depth, rev)
	fmt.Fprintf(&b, "- mix (`--mix %s`): %s\n", c.Shares, mix)
	fmt.Fprintf(&b, "- load: %s, %d connections, %v warmup, %v measured per system, one system at a time; load generator on the same machine\n",
		loop, c.Connections, c.Warmup, c.Duration)
	if c.HalfLoad {
		b.WriteString("- half load: a fresh Trellis process in open loop at half the throughput of its closed-loop run, same warmup and duration; latency measured from each request's scheduled start\n")
	}
	b.WriteString("\n")
	b.WriteString(loadtest.Table(results))
	b.WriteString("\nLatency percentiles are over every request of the measured window, all kinds together: a batch of " +
		strconv.Itoa(c.BatchSize) + " checks or a list-resources page counts as one request. " +
		"RSS is sampled every 200 ms during the measured window; \"RSS ± of mean\" is the largest distance of a sample from the mean of the samples.\n\n")
	b.WriteString("Requests answered per kind in the measured window, with their p99:\n\n")
	b.WriteString(loadtest.KindTable(results))
	b.WriteString("\n")
	if w := loadtest.WritesTable(results); w != "" {
		b.WriteString("Reads beside the decision cache's hit ratio (from the server's /metrics over the measured window) and the write stream:\n\n")
		b.WriteString(w)
		if c.WriteRate > 0 {
			fmt.Fprintf(&b, "\nThe write stream: %.0f requests per second to `POST /v1/admin/changes` during the measured window, each granting or revoking (in turn) one of %d assignments per organization, on the organization's root, to a membership the mix asks about, of a role that grants nothing, the organizations taken in turn; so every answer the oracle expects stands, while each write is a committed change of a membership's grants that Trellis follows from PostgreSQL and that invalidates that membership's cached answers. Both PostgreSQL runs are fresh processes serving the same imported data.\n", c.WriteRate, writePlanPerOrg)
		}
		b.WriteString("\n")
	}
	for _, r := range results {
		if r.FreshSent == 0 || !r.Verified {
			continue // the ceiling verifies no token
		}
		fmt.Fprintf(&b, "- %s: %d of %d fresh-token requests (%.0f %%) carried a token new to the server, which it verified in full",
			r.Target, r.FreshFirst, r.FreshSent, 100*float64(r.FreshFirst)/float64(r.FreshSent))
		if r.FreshFirst < r.FreshSent {
			fmt.Fprintf(&b, "; the other %d repeated one from an earlier pass through the mix, which a verified-token cache may answer (a larger --mix-size keeps more of them new)", r.FreshSent-r.FreshFirst)
		}
		b.WriteString(". The warmup sends no fresh-token request.\n")
	}
	b.WriteString(acceptance(c, results))
	b.WriteString("\nTrellis: `trellis serve --data` with `--jwks-file`, verifying each RS256 token (verified-token cache on) " +
		"and answering repeated single checks from its decision cache (default size); \"trellis, no decision cache\" is the same server with `--decision-cache-size 0`. " +
		"The mix cycles through its distinct requests, so after the first pass most single checks are repeats. " +
		"Trellis is queried at `POST /v1/check`, `/v1/check/batch` and `/v1/list-resources`. " +
		"Stock OPA: `opa run --server --bundle` on the bundle Trellis builds, queried at `POST /v1/data/trellis/edge/{check,batch,list_resources}` with the same raw tokens (verified in Rego, no cache). " +
		"Ceiling: a Go handler that reads the body and answers a constant of the same shape (answers not checked). " +
		"Every Trellis and OPA answer was compared with a brute-force oracle over the dataset: each decision of a check or batch, and the ids and has-more of the first page of a list.\n")
	if containsString(strings.Split(c.Systems, ","), "opa-minimal") {
		fmt.Fprintf(&b, "\n%s: `opa run --server` on a plain data.json of the same relationships (resources with their organization and parent, memberships with organization and active, role assignments per membership, roles with their permissions) "+
			"and the hand-written rule of `policies/baseline/rbac.rego`: a boolean `allow`, the token's permissions in its organization or a role with the permission assigned to the active membership on the resource or an ancestor, walking up to %d levels; no explanation. "+
			"Queried at `POST /v1/data/baseline/allow` with the same raw tokens, verified by `io.jwt.decode_verify` with OPA's verified-token cache (`io_jwt`) on, as Trellis's is; no decision cache.\n", minimalName, loadtest.MinimalLevels)
	}
	return b.String()
}

// acceptance renders issue 6's criteria as they read off this run.
func acceptance(c loadtestConfig, results []loadtest.Result) string {
	var b strings.Builder
	b.WriteString("\nIssue 6's criteria (and issue 12's, with --write-rate or opa-minimal), as this run measured them:\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var ceiling *loadtest.Result // at the half load's rate
	for i := range results {
		if strings.HasPrefix(results[i].Target, halfCeilingName) {
			ceiling = &results[i]
		}
	}
	for _, r := range results {
		if !strings.HasPrefix(r.Target, halfLoadName) {
			continue
		}
		fmt.Fprintf(&b, "- p99 ≤ 2 ms at half of Trellis's maximum throughput: p99 %.2f ms at %.0f req/s — %s\n",
			ms(r.Latency.P99), r.Throughput(), verdict(r.Latency.P99 <= 2*time.Millisecond))
		if ceiling != nil {
			ok := r.Latency.P99 <= 2*ceiling.Latency.P99 && r.Latency.P99 <= 5*time.Millisecond
			fmt.Fprintf(&b, "- issue 12: that p99 ≤ 2 × the ceiling's p99 at the same rate (%.2f ms) and ≤ 5 ms — %s\n", ms(ceiling.Latency.P99), verdict(ok))
		}
	}
	if !c.HalfLoad {
		b.WriteString("- p99 ≤ 2 ms at half of Trellis's maximum throughput: not measured (run with --half-load)\n")
	}
	byName := map[string]loadtest.Result{}
	for _, r := range results {
		byName[r.Target] = r
	}
	for _, r := range results {
		if !strings.HasPrefix(r.Target, "trellis") || r.Rate > 0 {
			continue
		}
		if o, ok := byName["stock opa"]; ok && o.Throughput() > 0 {
			x := r.Throughput() / o.Throughput()
			fmt.Fprintf(&b, "- %s throughput ≥ 1.0× stock OPA's: %.2f× — %s\n", r.Target, x, verdict(x >= 1))
		}
		if o, ok := byName[minimalName]; ok && o.Throughput() > 0 {
			x := r.Throughput() / o.Throughput()
			fmt.Fprintf(&b, "- %s throughput ≥ 1.0× %s's (issue 12 asks it of Trellis with --decision-cache-size 0): %.2f× — %s\n", r.Target, minimalName, x, verdict(x >= 1))
		}
		if o, ok := byName["ceiling (constant)"]; ok && o.Throughput() > 0 {
			x := r.Throughput() / o.Throughput()
			fmt.Fprintf(&b, "- %s throughput ≥ 50 %% of the ceiling's: %.0f %% — %s\n", r.Target, 100*x, verdict(x >= 0.5))
		}
	}
	var readOnly *loadtest.Result
	for i, r := range results {
		switch {
		case r.Target == "trellis (postgres)":
			readOnly = &results[i]
		case r.Writes != nil && readOnly != nil && readOnly.Throughput() > 0:
			x := r.Throughput() / readOnly.Throughput()
			fmt.Fprintf(&b, "- issue 12: read throughput with %.0f writes/s ≥ 80 %% of read-only: %.0f %% (%.0f of %.0f req/s; cache hits %s) — %s\n",
				r.Writes.Rate, 100*x, r.Throughput(), readOnly.Throughput(), hitRatio(r), verdict(x >= 0.8))
		}
	}
	for _, r := range results {
		if !strings.HasPrefix(r.Target, "trellis") {
			continue
		}
		fmt.Fprintf(&b, "- %s, no errors and no wrong answers: %d errors, %d wrong — %s\n", r.Target, r.Errors, r.Wrong, verdict(r.Errors == 0 && r.Wrong == 0))
		if sp := r.Server; sp != nil && sp.RSSSpread.Samples > 0 {
			v := verdict(sp.RSSSpread.Deviation <= 10)
			if c.Duration < time.Minute {
				v += fmt.Sprintf(" over %v only: the criterion asks for a 60 s run (--duration 60s)", c.Duration)
			}
			fmt.Fprintf(&b, "- %s, RSS stable within ±10 %%: ±%.1f %% of its %.0f MiB mean (%d samples) — %s\n",
				r.Target, sp.RSSSpread.Deviation, float64(sp.RSSSpread.Mean)/(1<<20), sp.RSSSpread.Samples, v)
		}
	}
	return b.String()
}

// hitRatio renders r's decision cache hit ratio, "—" when not measured.
func hitRatio(r loadtest.Result) string {
	if r.Cache == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f %%", 100*r.Cache.HitRatio())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// writeLoadtestResults writes the report and its two charts, throughput
// and latency second by second, under dir (the default, bench-results/,
// is git-ignored).
func writeLoadtestResults(dir, tier, report string, results []loadtest.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	name := filepath.Join(dir, "http-"+tier+"-"+stamp)
	if err := os.WriteFile(name+".md", []byte(report), 0o644); err != nil {
		return err
	}
	if err := writeLoadFile(name+".svg", func(w io.Writer) error {
		return loadtest.WriteSVG(w, "Trellis check throughput, tier "+tier+" (higher is better)", results)
	}); err != nil {
		return err
	}
	return writeLoadFile(name+"-latency.svg", func(w io.Writer) error {
		return loadtest.WriteTimelineSVG(w, "p99 latency second by second, tier "+tier+" (lower is better)", results)
	})
}
