package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// parseConfig parses args with the command newCmd builds, returning the
// configuration it would run with.
func parseConfig[C any](newCmd func(func(context.Context, C, io.Writer, io.Writer) error) *cobra.Command, args []string) (C, error) {
	var got C
	_, err := execute(context.Background(), newCmd(func(_ context.Context, c C, _, _ io.Writer) error {
		got = c
		return nil
	}), args, io.Discard, io.Discard)
	return got, err
}

func parseServe(args []string, _ io.Writer) (serveConfig, error) {
	return parseConfig(serveCommand, args)
}
func parseEdge(args []string, _ io.Writer) (edgeConfig, error) { return parseConfig(edgeCommand, args) }
func parseBenchGen(args []string, _ io.Writer) (benchGenConfig, error) {
	return parseConfig(benchGenCommand, args)
}
func parseLoadtest(args []string, _ io.Writer) (loadtestConfig, error) {
	return parseConfig(loadtestCommand, args)
}

// leaves returns every runnable command under cmd but help and the
// completion scripts.
func leaves(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range cmd.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		if sub.HasSubCommands() {
			out = append(out, leaves(sub)...)
		} else {
			out = append(out, sub)
		}
	}
	return out
}

// TestHelpEverywhere: --help exits 0 on every command and group, printing
// one usage to stdout.
func TestHelpEverywhere(t *testing.T) {
	root := newRoot()
	root.InitDefaultCompletionCmd()
	cmds := append(leaves(root), root)
	for _, g := range root.Commands() {
		if g.HasSubCommands() {
			cmds = append(cmds, g)
		}
	}
	if len(cmds) < 20 {
		t.Fatalf("only %d commands found", len(cmds))
	}
	for _, c := range cmds {
		args := append(strings.Fields(commandPath(c)), "--help")
		if c == root {
			args = []string{"--help"}
		}
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), args, &out, &errOut); err != nil {
				t.Fatalf("%v: %v, want nil (exit 0)", args, err)
			}
			if n := strings.Count(out.String(), "Usage:"); n != 1 || errOut.Len() > 0 {
				t.Errorf("%v printed %d usages, stderr %q:\n%s", args, n, errOut.String(), out.String())
			}
		})
	}
}

// TestGroupsNameTheirSubcommands: a group run without a subcommand, or
// with a wrong one, fails saying which exist.
func TestGroupsNameTheirSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schema"}, "give a subcommand: apply"},
		{[]string{"list", "groups", "x"}, `unknown subcommand "groups": the subcommand is memberships or resources`},
		{[]string{"list", "resource", "x"}, `did you mean resources?`},
		{[]string{"bundle", "biuld"}, `did you mean build?`},
		{[]string{"bench"}, "give a subcommand: gen or http"},
		{[]string{"servee"}, `unknown command "servee" for "trellis"`},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestCompletion: the shell scripts are generated, and the completion
// cobra's scripts call suggests the flags and subcommands of the tree.
func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"completion", "bash"}, []string{"__start_trellis"}},
		{[]string{"completion", "zsh"}, []string{"#compdef trellis"}},
		{[]string{"__complete", "serve", "--dat"}, []string{"--data", "--database-url"}},
		{[]string{"__complete", "list", ""}, []string{"memberships", "resources"}},
		{[]string{"__complete", "migrate", ""}, []string{"up", "status"}},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), tc.args, &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: no %q in\n%s", tc.args, w, out.String())
			}
		}
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
		{[]string{"serve", "-addr", "x"}, "unknown flag -addr: long flags take two dashes: --addr"},
		{[]string{"serve", "stray"}, `unexpected argument "stray" (see trellis serve --help)`},
		{[]string{"check", "p"}, "give PERMISSION and RESOURCE (got 1 arguments)"},
		{[]string{"validate"}, "give one or more files: trellis validate FILE..."},
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
	t.Setenv("TRELLIS_HELP", "true")
	var prune bool
	apply := newCommand("apply", "", "", func(fs *pflag.FlagSet) runFunc {
		fs.BoolVar(&prune, "prune", false, "")
		return func(context.Context, []string, io.Writer, io.Writer) error { return nil }
	})
	if _, err := execute(context.Background(), newGroup("schema", "", apply), []string{"apply"}, io.Discard, io.Discard); err != nil || prune {
		t.Errorf("TRELLIS_PRUNE was read by schema apply: prune=%v err=%v", prune, err)
	}
	t.Setenv("TRELLIS_API_KEYS", "env-key-0123456789, env-key-abcdefghij")
	if c := testConfig(t); len(c.APIKeys) != 2 || c.APIKeys[1] != "env-key-abcdefghij" {
		t.Errorf("TRELLIS_API_KEYS, comma-separated: %q", c.APIKeys)
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
	t.Setenv("TRELLIS_CONFIG", file)
	if c := testConfig(t); c.MaxBatch != 7 {
		t.Errorf("TRELLIS_CONFIG: max-batch %d, want the file's 7", c.MaxBatch)
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
