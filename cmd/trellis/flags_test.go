package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestHelpEverywhere: --help exits 0 (flag.ErrHelp) on every command, and
// prints one usage.
func TestHelpEverywhere(t *testing.T) {
	for name := range commands {
		args := []string{name, "--help"}
		switch name {
		case "schema":
			args = []string{"schema", "apply", "--help"}
		case "bundle":
			args = []string{"bundle", "build", "--help"}
		case "events":
			args = []string{"events", "tail", "--help"}
		case "token":
			args = []string{"token", "mint", "--help"}
		case "list":
			args = []string{"list", "resources", "--help"}
		case "bench":
			args = []string{"bench", "gen", "--help"}
		}
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), args, &out, &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("%v: %v, want flag.ErrHelp (exit 0)", args, err)
			}
			if n := strings.Count(out.String(), "Usage:"); n != 1 {
				t.Errorf("%v printed %d usages:\n%s", args, n, out.String())
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--adr", "x"}, "unknown flag --adr: did you mean --addr?"},
		{[]string{"serve", "--token-skew", "30"}, `--token-skew "30": give a duration with a unit, such as 30s`},
		{[]string{"serve", "--nothing-like-it"}, "unknown flag --nothing-like-it (trellis serve --help lists the flags)"},
		{[]string{"check", "--membrship", "om_a", "p", "r"}, "did you mean --membership?"},
		{[]string{"serve", "--addr"}, "flag needs an argument: --addr"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestEnvironmentOnlyForLongLivedSettings: serve and edge read every flag
// from the environment, each with its own address variable; other
// commands only their connection settings.
func TestEnvironmentOnlyForLongLivedSettings(t *testing.T) {
	for _, tc := range []struct{ cmd, flag, want string }{
		{"serve", "addr", "TRELLIS_ADDR"},
		{"edge", "addr", "TRELLIS_EDGE_ADDR"},
		{"serve", "api-key", "TRELLIS_API_KEYS"},
		{"schema apply", "database-url", "TRELLIS_DATABASE_URL"},
		{"check", "server", "TRELLIS_SERVER"},
		{"schema apply", "prune", ""},
		{"bundle build", "out", ""},
		{"check", "membership", ""},
	} {
		if got := envName(tc.cmd, tc.flag); got != tc.want {
			t.Errorf("envName(%q, %q) = %q, want %q", tc.cmd, tc.flag, got, tc.want)
		}
	}
	t.Setenv("TRELLIS_PRUNE", "true")
	var prune bool
	fs := newFlagSet("schema apply", "x", io.Discard)
	fs.BoolVar(&prune, "prune", false, "")
	if err := parse(fs, nil); err != nil || prune {
		t.Errorf("TRELLIS_PRUNE was read by schema apply: prune=%v err=%v", prune, err)
	}
}

// TestConfigFile: serve and edge read settings from --config, keyed by
// flag name; the command line and the environment win over it.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "trellis.yaml", []byte(`
addr: 127.0.0.1:9191
api-key: [config-key-0123456789, config-key-abcdefghij]
max-batch: 7
decision-log: true
token-skew: 45s
`))
	c := testConfig(t, "--config", file, "--max-batch", "9")
	if c.Addr != "127.0.0.1:9191" || c.MaxBatch != 9 || !c.DecisionLog || len(c.APIKeys) != 2 || c.APIKeys[1] != "config-key-abcdefghij" {
		t.Errorf("from the file: addr %s max-batch %d decision-log %v keys %v", c.Addr, c.MaxBatch, c.DecisionLog, c.APIKeys)
	}
	t.Setenv("TRELLIS_ADDR", "127.0.0.1:9292")
	if c := testConfig(t, "--config", file); c.Addr != "127.0.0.1:9292" {
		t.Errorf("the environment does not win over the file: %s", c.Addr)
	}
	for content, want := range map[string]string{
		"adr: x\n":             `unknown setting "adr": did you mean "addr"?`,
		"max-batch: [1, 2]\n":  "takes one value",
		"max-batch: many\n":    "max-batch",
		"config: other.yaml\n": `unknown setting "config"`,
	} {
		bad := writeFile(t, dir, "bad.yaml", []byte(content))
		if _, err := parseServe([]string{"--config", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}
