package loadtest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
)

// TestMinimalStockOPA loads stock opa, serving WriteMinimal's files, with a
// small check mix of real RS256 tokens (cached, fresh and of an inactive
// membership) and compares every answer with the Oracle's: the same
// relationships give no wrong answer, and data.json without the role
// assignments is caught.
func TestMinimalStockOPA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stock opa")
	}
	opa := opaBinary(t)
	ds := gen.Generate(gen.Spec{Seed: 5, Organizations: 4, Resources: 600, Assignments: 800, MembershipsPerOrg: 8, Depth: loadtest.MinimalLevels, Skew: 1.1, InactiveRatio: 0.2})
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
	o := loadtest.NewOracle(ds)
	signer, err := token.NewSigner(token.RS256, "minimal-1")
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://minimal.test"
	mix, err := loadtest.BuildMix(ds, o, signer, loadtest.MixConfig{Seed: 3, Size: 400, Tokens: 8, Issuer: issuer,
		Shares: loadtest.Shares{Token: 25, Fresh: 5, Assignment: 45, Deny: 25}})
	if err != nil {
		t.Fatal(err)
	}
	depths := map[int]bool{}
	allowed := 0
	for _, r := range mix.Requests {
		depths[r.Checks[0].Depth] = true
		if r.Checks[0].Want {
			allowed++
		}
	}
	if !depths[loadtest.MinimalLevels] || allowed == 0 || allowed == len(mix.Requests) {
		t.Fatalf("the mix should ask at every depth up to %d and both allow and deny: depths %v, %d of %d allowed", loadtest.MinimalLevels, depths, allowed, len(mix.Requests))
	}
	withoutAssignments := *ds
	withoutAssignments.Assignments = nil

	tests := []struct {
		name  string
		ds    *model.Dataset
		wrong bool
	}{
		{"same relationships", ds, false},
		{"role assignments left out", &withoutAssignments, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := loadtest.WriteMinimal(dir, tt.ds, issuer, signer.JWKS()); err != nil {
				t.Fatal(err)
			}
			base := startOPA(t, opa, dir)
			// Two passes through the mix on 4 connections, at most 60 s.
			cfg := loadtest.Config{Connections: 4, Warmup: 200 * time.Millisecond, Duration: time.Minute, MaxRequests: 2 * int64(len(mix.Requests))}
			res, err := loadtest.Run(t.Context(), loadtest.Target{Name: "opa-minimal", Base: base, API: loadtest.MinimalAPI{}, Verify: true}, mix, cfg)
			if res.Errors != 0 || res.Requests < cfg.MaxRequests {
				t.Fatalf("%d requests, %d errors, first: %s", res.Requests, res.Errors, res.FirstError)
			}
			if !tt.wrong {
				if err != nil || res.Wrong != 0 {
					t.Errorf("%d wrong answers (first: %s), err %v", res.Wrong, res.FirstWrong, err)
				}
				if res.FreshFirst == 0 {
					t.Error("no fresh token was verified")
				}
				return
			}
			if !errors.Is(err, loadtest.ErrWrongAnswer) || !strings.Contains(res.FirstWrong, "want true") {
				t.Errorf("err %v, first wrong %q; want ErrWrongAnswer on an allow", err, res.FirstWrong)
			}
		})
	}
}

func TestWriteMinimalRefuses(t *testing.T) {
	deep := gen.Generate(gen.Spec{Seed: 1, Organizations: 1, Resources: 50, Assignments: 10, MembershipsPerOrg: 2, Depth: loadtest.MinimalLevels + 1})
	tests := []struct {
		name string
		ds   *model.Dataset
		jwks []byte
		want string
	}{
		{"trees deeper than the rule walks", deep, []byte(`{"keys":[]}`), "walks 6"},
		{"a JWKS that is not JSON", tiny(), []byte("{"), "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := loadtest.WriteMinimal(dir, tt.ds, "iss", tt.jwks)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteMinimal: %v, want an error containing %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("WriteMinimal wrote %d files before failing", len(entries))
			}
		})
	}
}

// opaBinary returns the stock opa of go.mod's version (`go tool -n opa`).
func opaBinary(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "opa").Output()
	if err != nil {
		t.Fatalf("go tool -n opa: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// startOPA runs stock opa on dir (loadtest.MinimalOPAArgs) until the test
// ends and returns its base URL once /health answers 200.
func startOPA(t testing.TB, opa, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, opa, loadtest.MinimalOPAArgs(addr, dir)...)
	logPath := filepath.Join(t.TempDir(), "opa.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("opa log:\n%s", b)
		}
	})
	base := "http://" + addr
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
	}
	t.Fatal("stock opa not healthy after 30 s")
	return ""
}
