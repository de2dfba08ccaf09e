package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/loadtest"
)

func TestParseLoadtest(t *testing.T) {
	c, err := parseLoadtest(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tier != "S" || c.Connections != 32 || c.Duration != 10*time.Second || c.Out != "bench-results" || c.Systems != "trellis,trellis-nocache,opa,ceiling" ||
		c.Shares != loadtest.DefaultShares || c.BatchSize != 50 || c.ListLimit != 100 || c.HalfLoad {
		t.Errorf("defaults: %+v", c)
	}
	for _, args := range [][]string{
		{"--tier", "XL"},
		{"--connections", "0"},
		{"--systems", "trellis,nginx"},
		{"--duration", "0s"},
		{"--mix", "token=1,nope=2"},
		{"--batch-size", "0"},
		{"--list-limit", "1001"},
		{"--half-load", "--rate", "100"},
		{"--half-load", "--systems", "opa,ceiling"},
		{"--write-rate", "100"},
		{"--write-rate", "-1", "--database-url", "postgres://localhost/x"},
		{"--write-rate", "100", "--database-url", "postgres://localhost/x", "--systems", "opa"},
		{"--systems", "trellis-nocache,opa-minimal"}, // the default mix has batches and lists
		{"--systems", "opa-minimal", "--mix", "token=1,list=1"},
	} {
		if _, err := parseLoadtest(args, io.Discard); err == nil {
			t.Errorf("parseLoadtest(%q): no error", args)
		}
	}
	c, err = parseLoadtest([]string{"--write-rate", "100", "--database-url", "postgres://localhost/x"}, io.Discard)
	if err != nil || c.WriteRate != 100 || c.DatabaseURL != "postgres://localhost/x" {
		t.Errorf("--write-rate 100 --database-url …: %+v, %v", c, err)
	}
	c, err = parseLoadtest([]string{"--systems", "trellis-nocache,opa-minimal", "--mix", "token=1,token-fresh=1,assignment=2,deny=1"}, io.Discard)
	if err != nil || c.Systems != "trellis-nocache,opa-minimal" {
		t.Errorf("--systems trellis-nocache,opa-minimal with single checks: %+v, %v", c, err)
	}
	c, err = parseLoadtest([]string{"--half-load", "--mix", "batch=1,list=3"}, io.Discard)
	if err != nil || !c.HalfLoad || c.Shares != (loadtest.Shares{Batch: 1, List: 3}) {
		t.Errorf("--half-load --mix batch=1,list=3: %+v, %v", c, err)
	}
}

func TestParseShares(t *testing.T) {
	tests := []struct {
		in      string
		want    loadtest.Shares
		wantErr string
	}{
		{loadtest.DefaultShares.String(), loadtest.DefaultShares, ""},
		{"assignment=3, deny=1", loadtest.Shares{Assignment: 3, Deny: 1}, ""},
		{"token-fresh=1", loadtest.Shares{Fresh: 1}, ""},
		{"token", loadtest.Shares{}, "not kind=share"},
		{"token=x", loadtest.Shares{}, "not a whole number"},
		{"token=-1", loadtest.Shares{}, "negative"},
		{"token=1,token=2", loadtest.Shares{}, "twice"},
		{"fresh=1", loadtest.Shares{}, `unknown request kind "fresh"`},
		{"token=0,deny=0", loadtest.Shares{}, "every share is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseShares(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("parseShares(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseShares(%q): error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestAcceptanceMinimalRatio(t *testing.T) {
	c := loadtestConfig{Systems: "trellis-nocache,opa-minimal", Duration: time.Second}
	results := []loadtest.Result{
		{Target: "trellis, no decision cache", Elapsed: time.Second, Requests: 900},
		{Target: minimalName, Elapsed: time.Second, Requests: 1000},
	}
	got := acceptance(c, results)
	want := "- trellis, no decision cache throughput ≥ 1.0× " + minimalName + "'s (issue 12 asks it of Trellis with --decision-cache-size 0): 0.90× — NOT met"
	if !strings.Contains(got, want) {
		t.Errorf("acceptance:\n%s\nwant a line %q", got, want)
	}
	results[0].Requests = 1500
	if got := acceptance(c, results); !strings.Contains(got, "1.50× — met") {
		t.Errorf("acceptance at 1.5×:\n%s", got)
	}
}

func TestAcceptanceHalfLoadCeiling(t *testing.T) {
	c := loadtestConfig{Systems: "trellis,ceiling", Duration: time.Second, HalfLoad: true}
	results := []loadtest.Result{
		{Target: halfLoadName + " (1000 req/s)", Rate: 1000, Elapsed: time.Second, Requests: 1000, Latency: loadtest.Percentiles{P99: 3 * time.Millisecond}},
		{Target: halfCeilingName + " (1000 req/s)", Rate: 1000, Elapsed: time.Second, Requests: 1000, Latency: loadtest.Percentiles{P99: 2 * time.Millisecond}},
	}
	tests := []struct {
		trellis, ceiling time.Duration
		want             string
	}{
		{3 * time.Millisecond, 2 * time.Millisecond, "(2.00 ms) and ≤ 5 ms — met"},
		{5 * time.Millisecond, 2 * time.Millisecond, "(2.00 ms) and ≤ 5 ms — NOT met"}, // over twice the ceiling's
		{6 * time.Millisecond, 4 * time.Millisecond, "(4.00 ms) and ≤ 5 ms — NOT met"}, // over 5 ms
	}
	for _, tt := range tests {
		results[0].Latency.P99, results[1].Latency.P99 = tt.trellis, tt.ceiling
		if got := acceptance(c, results); !strings.Contains(got, "- issue 12: that p99 ≤ 2 × the ceiling's p99 at the same rate "+tt.want) {
			t.Errorf("acceptance with p99 %v beside the ceiling's %v:\n%s\nwant a line ending %q", tt.trellis, tt.ceiling, got, tt.want)
		}
	}
}
