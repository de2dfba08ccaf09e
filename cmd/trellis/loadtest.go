package main

import (
	"bytes"
	"context"
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// loadtestConfig is everything `trellis loadtest` is configured with.
type loadtestConfig struct {
	Tier          string
	Seed          int64
	Connections   int
	Duration      time.Duration
	Warmup        time.Duration
	Rate          float64
	MixSize       int
	Tokens        int
	Out           string
	OPA           string
	Systems       string
	ServeConstant string
}

// loadtestIssuer is the iss of the tokens the load test mints.
const loadtestIssuer = "https://loadtest.trellis.invalid"

// loadtestSystems are the systems a run can load, in report order: Trellis
// first, as the ratios are Trellis's.
var loadtestSystems = []string{"trellis", "opa", "ceiling"}

// runBench dispatches `trellis bench <subcommand>`; http is the only one so
// far (issue 6 also plans gen).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "http" {
		fmt.Fprint(stderr, "Usage: trellis bench http [flags]\n\nRun 'trellis bench http --help' for the flags.\n")
		return errors.New("bench: the only subcommand is http")
	}
	return runLoadtest(ctx, args[1:], stdout, stderr)
}

// runLoadtest is `trellis bench http`.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseLoadtest(args, stderr)
	if err != nil {
		return err
	}
	if c.ServeConstant != "" {
		return serveConstant(ctx, c.ServeConstant)
	}
	return loadtestRun(ctx, c, os.Args, stdout, stderr)
}

func parseLoadtest(args []string, out io.Writer) (loadtestConfig, error) {
	var c loadtestConfig
	fs := newFlagSet("bench http", "Load Trellis, the stock OPA server on the bundle Trellis builds, and a constant-answer ceiling, one after the other over loopback, with the same generated dataset and request mix; every answer is checked against a brute-force oracle.", out)
	fs.StringVar(&c.Tier, "tier", "S", "dataset tier of package gen: S (100 orgs, ~100k resources) or M (10,000 orgs, ~1M resources)")
	fs.Int64Var(&c.Seed, "seed", 1, "dataset and mix seed")
	fs.IntVar(&c.Connections, "connections", 32, "concurrent connections (closed loop: one request in flight each)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time per system")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "unmeasured (but checked) load before measuring, per system")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop at this many requests per second (0: closed loop)")
	fs.IntVar(&c.MixSize, "mix-size", 10_000, "distinct requests in the mix (cycled)")
	fs.IntVar(&c.Tokens, "tokens", 16, "distinct session tokens in the mix")
	fs.StringVar(&c.Out, "out", "bench-results", "folder for the Markdown report and SVG chart")
	fs.StringVar(&c.OPA, "opa", "", "stock opa binary (default: the path `go tool -n opa` prints)")
	fs.StringVar(&c.Systems, "systems", strings.Join(loadtestSystems, ","), "comma-separated systems to load: trellis, opa, ceiling")
	fs.StringVar(&c.ServeConstant, "serve-constant", "", "internal: serve the constant-decision ceiling on this address and do nothing else")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if _, ok := (gen.Spec{}).Tier(c.Tier); !ok {
		return c, fmt.Errorf("--tier %q: use S or M", c.Tier)
	}
	if c.Connections < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Rate < 0 {
		return c, errors.New("--connections must be at least 1, --duration positive, --warmup and --rate not negative")
	}
	for s := range strings.SplitSeq(c.Systems, ",") {
		if !containsString(loadtestSystems, s) {
			return c, fmt.Errorf("--systems: unknown system %q: use %s", s, strings.Join(loadtestSystems, ", "))
		}
	}
	return c, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveConstant is the ceiling: it reads each request body and answers the
// same decision, so it measures HTTP and JSON framing on this machine and
// nothing else.
func serveConstant(ctx context.Context, addr string) error {
	answer := []byte(`{"allowed":true,"decided_by":"token","reason":{"code":"token_permission"},"revision":1}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	return serveHTTP(ctx, addr, h, slog.New(slog.DiscardHandler), nil)
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
	if opaBin == "" && containsString(systems, "opa") {
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
	mix, err := loadtest.BuildMix(ds, oracle, signer, loadtest.MixConfig{Seed: uint64(c.Seed), Size: c.MixSize, Tokens: c.Tokens, Issuer: loadtestIssuer})
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

	cfg := loadtest.Config{Connections: c.Connections, Duration: c.Duration, Warmup: c.Warmup, Rate: c.Rate}
	var results []loadtest.Result
	var failures []error
	for _, sys := range systems {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		base := "http://" + addr
		var cmd *exec.Cmd
		t := loadtest.Target{Name: sys}
		var ready string
		switch sys {
		case "trellis":
			cmd = exec.CommandContext(ctx, self, "serve", "--addr", addr, "--data", dataPath, "--jwks-file", jwksPath,
				"--issuer", loadtestIssuer, "--log-level", "warn", "--bundles=false")
			t.URL, t.Body, t.Allowed, t.Verify, ready = base+"/v1/check", loadtest.TrellisBody, loadtest.TrellisAllowed, true, base+"/ready"
		case "opa":
			cmd = exec.CommandContext(ctx, opaBin, "run", "--server", "--addr", addr, "--log-level", "error", "--bundle", bundlePath)
			t.Name = "stock opa"
			t.URL, t.Body, t.Allowed, t.Verify, ready = base+"/v1/data/trellis/edge/check", loadtest.OPABody, loadtest.OPAAllowed, true, base+"/health"
		case "ceiling":
			cmd = exec.CommandContext(ctx, self, "bench", "http", "--serve-constant", addr)
			t.Name = "ceiling (constant)"
			t.URL, t.Body, t.Allowed, ready = base+"/v1/check", loadtest.TrellisBody, loadtest.TrellisAllowed, base+"/"
		}
		res, err := runSystem(ctx, cmd, t, ready, mix, cfg, filepath.Join(tmp, sys+".log"), say)
		if err != nil && !errors.Is(err, loadtest.ErrWrongAnswer) {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		if err != nil {
			failures = append(failures, err)
		}
		if res.Errors > 0 {
			failures = append(failures, fmt.Errorf("%s: %d errors, first: %s", t.Name, res.Errors, res.FirstError))
		}
		say("%s: %.0f req/s, p99 %v, %d errors, %d wrong", t.Name, res.Throughput(), res.Latency.P99, res.Errors, res.Wrong)
		results = append(results, res)
	}

	table := loadtest.Table(results)
	fmt.Fprint(stdout, "\n"+table)
	report := loadtestReport(c, argv, ds.Revision, spec, len(ds.Resources), len(ds.Assignments), mixLine, table)
	if err := writeLoadtestResults(c.Out, c.Tier, report, results); err != nil {
		return err
	}
	say("wrote %s", c.Out)
	return errors.Join(failures...)
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
	for _, k := range []string{loadtest.KindToken, loadtest.KindAssignment, loadtest.KindDeny} {
		n, allowed := m.Count(k)
		parts = append(parts, fmt.Sprintf("%d %s checks (%d allowed)", n, k, allowed))
	}
	depths := map[int]int{}
	for _, r := range m.Requests {
		depths[r.Depth]++
	}
	var ds []string
	for d := 1; d <= 16; d++ {
		if depths[d] > 0 {
			ds = append(ds, fmt.Sprintf("%d: %d", d, depths[d]))
		}
	}
	return fmt.Sprintf("%d distinct requests, %d tokens: %s; resources by depth {%s}", len(m.Requests), m.Tokens, strings.Join(parts, ", "), strings.Join(ds, ", "))
}

func loadtestReport(c loadtestConfig, argv []string, rev int64, spec gen.Spec, resources, assignments int, mix, table string) string {
	var b bytes.Buffer
	loop := "closed loop"
	if c.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f req/s", c.Rate)
	}
	fmt.Fprintf(&b, "# HTTP check load test, tier %s\n\n", c.Tier)
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "- command: `%s`\n", strings.Join(argv, " "))
	fmt.Fprintf(&b, "- dataset: gen tier %s, seed %d: %d organizations, %d resources, %d assignments, depth %d (revision %d)\n",
		c.Tier, spec.Seed, spec.Organizations, resources, assignments, spec.Depth, rev)
	fmt.Fprintf(&b, "- mix: %s\n", mix)
	fmt.Fprintf(&b, "- load: %s, %d connections, %v warmup, %v measured per system, one system at a time; load generator on the same machine\n\n",
		loop, c.Connections, c.Warmup, c.Duration)
	b.WriteString(table)
	b.WriteString("\nTrellis: `trellis serve --data` with `--jwks-file`, verifying each RS256 token (verified-token cache on). " +
		"Stock OPA: `opa run --server --bundle` on the bundle Trellis builds, queried at `POST /v1/data/trellis/edge/check` with the same raw tokens (verified in Rego). " +
		"Ceiling: a Go handler that reads the body and answers a constant decision (answers not checked). " +
		"Every Trellis and OPA answer was compared with a brute-force oracle over the dataset.\n")
	return b.String()
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

// writeLoadtestResults writes the report and chart under dir (the default,
// bench-results/, is git-ignored).
func writeLoadtestResults(dir, tier, report string, results []loadtest.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	name := filepath.Join(dir, "http-"+tier+"-"+stamp)
	if err := os.WriteFile(name+".md", []byte(report), 0o644); err != nil {
		return err
	}
	return writeLoadFile(name+".svg", func(w io.Writer) error {
		return loadtest.WriteSVG(w, "Trellis check throughput, tier "+tier+" (higher is better)", results)
	})
}
