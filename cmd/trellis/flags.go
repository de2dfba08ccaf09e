package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// runFunc runs a command once its flags are parsed; args are its
// positional arguments.
type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// newCommand returns a command whose flags define declares on fs; the
// function define returns runs once they are parsed and filled from the
// environment and the config file. use is the command's name and its
// positional arguments ("check PERMISSION RESOURCE"); it takes none unless
// Args is set.
func newCommand(use, short, long string, define func(fs *pflag.FlagSet) runFunc) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: noArgs, SilenceErrors: true, SilenceUsage: true}
	cmd.SetFlagErrorFunc(flagError)
	run := define(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := settle(cmd); err != nil {
			return err
		}
		return run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// newGroup returns a command that only holds subcommands: run without
// one, or with an unknown one, it fails naming them.
func newGroup(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, SilenceErrors: true, SilenceUsage: true, Args: cobra.ArbitraryArgs}
	cmd.SetFlagErrorFunc(flagError)
	cmd.SuggestionsMinimumDistance = 2 // cobra leaves it 0 below the root: prefixes only
	cmd.AddCommand(subs...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			names = append(names, s.Name())
		}
		list := strings.Join(names, " or ")
		if len(args) == 0 {
			return fmt.Errorf("trellis %s: give a subcommand: %s (trellis %s --help)", use, list, use)
		}
		if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
			return fmt.Errorf("trellis %s: unknown subcommand %q: did you mean %s?", use, args[0], near[0])
		}
		return fmt.Errorf("trellis %s: unknown subcommand %q: the subcommand is %s", use, args[0], list)
	}
	return cmd
}

// execute runs the command tree cmd on args.
func execute(ctx context.Context, cmd *cobra.Command, args []string, stdout, stderr io.Writer) (*cobra.Command, error) {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd.ExecuteContextC(ctx)
}

// commandPath names cmd as its help does: "schema apply".
func commandPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), "trellis ")
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (see trellis %s --help)", args[0], commandPath(cmd))
	}
	return nil
}

// exactArgs takes the positional arguments names, exactly.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("trellis %s: give %s (got %d arguments)", commandPath(cmd), strings.Join(names, " and "), len(args))
		}
		return nil
	}
}

// fileArgs takes one or more files.
func fileArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("give one or more files: trellis %s FILE...", commandPath(cmd))
	}
	return nil
}

// envPrefix prefixes the environment variables of flags: --jwks-url is
// also TRELLIS_JWKS_URL.
const envPrefix = "TRELLIS_"

// Environment variables are for settings that outlive one command line:
// every flag of the long-lived commands (envCommands), and the connection
// settings of every command (envAnywhere). One-shot and destructive flags
// (--prune, --out, --membership, …) read no variable.
var (
	envCommands = map[string]bool{"serve": true, "edge": true}
	envAnywhere = map[string]bool{"database-url": true, "server": true, "api-key": true}
)

// envOverrides names the variables that differ from the flag's name, by
// flag, or by "command flag".
var envOverrides = map[string]string{
	"api-key": "TRELLIS_API_KEYS", "issuer": "TRELLIS_ISSUERS",
	"edge addr": "TRELLIS_EDGE_ADDR", // not serve's TRELLIS_ADDR: both may run on one host
}

// envName returns the environment variable that sets flag name of command
// cmd ("schema apply"), or "" when it reads none.
func envName(cmd, name string) string {
	switch {
	case name == "help":
		return ""
	case !envCommands[cmd] && !envAnywhere[name]:
		return ""
	}
	if v, ok := envOverrides[cmd+" "+name]; ok {
		return v
	}
	if v, ok := envOverrides[name]; ok {
		return v
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// showEnv adds its variable to the help of every flag under cmd that
// reads one.
func showEnv(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if v := envName(commandPath(cmd), f.Name); v != "" {
			f.Usage += " [" + v + "]"
		}
	})
	for _, sub := range cmd.Commands() {
		showEnv(sub)
	}
}

// flagError explains a parse error of cmd's flags: an unknown flag with
// the nearest known one, a duration without a unit with an example.
func flagError(cmd *cobra.Command, err error) error {
	help := fmt.Sprintf("trellis %s --help lists the flags", commandPath(cmd))
	var unknown *pflag.NotExistError
	var invalid *pflag.InvalidValueError
	switch {
	case errors.As(err, &unknown):
		name := unknown.GetSpecifiedName()
		if short := unknown.GetSpecifiedShortnames(); short != "" {
			if cmd.Flags().Lookup(short) != nil {
				return fmt.Errorf("unknown flag -%s: long flags take two dashes: --%s", short, short)
			}
			name = short
		}
		if near := nearestFlag(cmd.Flags(), name); near != "" {
			return fmt.Errorf("unknown flag --%s: did you mean --%s? (%s)", name, near, help)
		}
		return fmt.Errorf("unknown flag --%s (%s)", name, help)
	case errors.As(err, &invalid) && invalid.GetFlag().Value.Type() == "duration":
		return fmt.Errorf("--%s %q: give a duration with a unit, such as 30s, 5m or 1h", invalid.GetFlag().Name, invalid.GetValue())
	}
	return fmt.Errorf("%w (%s)", err, help)
}

// nearestFlag returns the flag of fs closest to name, if it is close (at
// most two edits, or a prefix of it).
func nearestFlag(fs *pflag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *pflag.Flag) {
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestD && f.Name != "help" {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// settle fills the flags of cmd not given on the command line from their
// environment variables, then from the --config file. Values are validated
// by the command.
func settle(cmd *cobra.Command) error {
	fs := cmd.Flags()
	given := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env := envName(commandPath(cmd), f.Name)
		if env == "" || given[f.Name] || err != nil {
			return
		}
		val, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		given[f.Name] = true // over the config file
		values := []string{val}
		if repeatable(f) {
			values = strings.Split(val, ",")
		}
		for _, v := range values {
			if v = strings.TrimSpace(v); v != "" || !repeatable(f) {
				if e := fs.Set(f.Name, v); e != nil {
					err = fmt.Errorf("%s=%q: %w", env, val, e)
				}
			}
		}
	})
	if err != nil {
		return err
	}
	if f := fs.Lookup(configFlag); f != nil && f.Value.String() != "" {
		err = applyConfig(cmd, f.Value.String(), given)
	}
	return err
}

func repeatable(f *pflag.Flag) bool { return f.Value.Type() == "stringArray" }

// configFlag names the settings file of the long-lived commands.
const configFlag = "config"

// defineConfig declares --config on fs.
func defineConfig(fs *pflag.FlagSet) {
	fs.String(configFlag, "", "YAML file of settings, keyed by flag name (addr: 127.0.0.1:8080, api-key: [k1, k2]); a flag or variable given wins over it")
}

// applyConfig sets, from the YAML file at path, the flags of cmd not in
// given (set on the command line or from the environment). Its keys are
// flag names; a list sets a repeatable flag once per item.
func applyConfig(cmd *cobra.Command, path string, given map[string]bool) error {
	fs := cmd.Flags()
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(raw, &settings); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		switch {
		case f == nil || k == configFlag || k == "help":
			if near := nearestFlag(fs, k); near != "" && near != configFlag {
				return fmt.Errorf("--config %s: unknown setting %q: did you mean %q?", path, k, near)
			}
			return fmt.Errorf("--config %s: unknown setting %q (trellis %s --help lists them)", path, k, commandPath(cmd))
		case given[k]:
			continue
		}
		values := []any{settings[k]}
		if list, isList := settings[k].([]any); isList {
			if !repeatable(f) {
				return fmt.Errorf("--config %s: %s takes one value, not a list", path, k)
			}
			values = list
		}
		for _, v := range values {
			if e := fs.Set(k, fmt.Sprint(v)); e != nil {
				return fmt.Errorf("--config %s: %s: %w", path, k, e)
			}
		}
	}
	return nil
}

// configCommand returns a command whose flags define declares into a C;
// check validates it before run gets it.
func configCommand[C any](use, short, long string, define func(*C, *pflag.FlagSet), check func(*C) error, run func(context.Context, C, io.Writer, io.Writer) error) *cobra.Command {
	return newCommand(use, short, long, func(fs *pflag.FlagSet) runFunc {
		var c C
		define(&c, fs)
		return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
			if err := check(&c); err != nil {
				return err
			}
			return run(ctx, c, stdout, stderr)
		}
	})
}
