package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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
// cmd, or "" when it reads none.
func envName(cmd, name string) string {
	if !envCommands[cmd] && !envAnywhere[name] {
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

// newFlagSet returns a flag set whose usage lists each flag with its
// variable. Errors are not printed by the set: parseFlags returns them,
// explained.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if envCommands[name] {
		fs.String(configFlag, "", "YAML file of settings, keyed by flag name (addr: 127.0.0.1:8080, api-key: [k1, k2]); a flag or variable given wins over it")
	}
	fs.Usage = func() {
		if !strings.HasPrefix(synopsis, "Usage:") {
			fmt.Fprintf(out, "Usage: trellis %s [flags]\n\n", name)
		}
		fmt.Fprintf(out, "%s\n\nFlags:\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			env := ""
			if v := envName(name, f.Name); v != "" {
				env = "  [" + v + "]"
			}
			fmt.Fprintf(out, "  --%s%s\n      %s%s\n", f.Name, env, f.Usage, def)
		})
	}
	return fs
}

// flagError explains a parse error of fs: an unknown flag with the
// nearest known one, a duration without a unit with an example.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	help := fmt.Sprintf("trellis %s --help lists the flags", fs.Name())
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		if near := nearestFlag(fs, name); near != "" {
			return fmt.Errorf("unknown flag --%s: did you mean --%s? (%s)", name, near, help)
		}
		return fmt.Errorf("unknown flag --%s (%s)", name, help)
	}
	var value, name string
	if _, e := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &name); e == nil {
		name = strings.TrimSuffix(name, ":")
		if f := fs.Lookup(name); f != nil {
			if _, isDuration := f.Value.(flag.Getter).Get().(time.Duration); isDuration {
				return fmt.Errorf("--%s %q: give a duration with a unit, such as 30s, 5m or 1h", name, value)
			}
		}
	}
	return fmt.Errorf("%s (%s)", strings.Replace(msg, " -", " --", 1), help)
}

// nearestFlag returns the flag of fs closest to name, if it is close (at
// most two edits, or a prefix of it).
func nearestFlag(fs *flag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
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

// parse parses args, which hold flags only, then fills every flag not
// given on the command line from its environment variable. Values are
// validated by the caller.
func parse(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q (see trellis %s --help)", pos[0], fs.Name())
	}
	return err
}

// parseFiles is parse for a command of flags then one or more files.
func parseFiles(fs *flag.FlagSet, args []string) ([]string, error) {
	files, err := parseFlags(fs, args)
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("give one or more files: trellis %s FILE...", fs.Name())
	}
	return files, err
}

// parseFlags parses args, flags and positional arguments in any order
// ("--" ends the flags), fills the flags not given from the environment,
// and returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package prints the usage on every error; print it only when
	// asked for (explained errors are returned instead).
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		} else if err != nil {
			return nil, flagError(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(fs.Name(), f.Name)
		if env == "" || given[f.Name] || err != nil {
			return
		}
		val, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		given[f.Name] = true // over the config file
		if _, isList := f.Value.(*stringList); isList {
			for _, v := range strings.Split(val, ",") {
				if v = strings.TrimSpace(v); v != "" {
					_ = f.Value.Set(v)
				}
			}
			return
		}
		if e := fs.Set(f.Name, val); e != nil {
			err = fmt.Errorf("%s=%q: %w", env, val, e)
		}
	})
	if err != nil {
		return nil, err
	}
	if f := fs.Lookup(configFlag); f != nil && f.Value.String() != "" {
		err = applyConfig(fs, f.Value.String(), given)
	}
	return pos, err
}

// configFlag names the settings file of the long-lived commands.
const configFlag = "config"

// applyConfig sets, from the YAML file at path, the flags of fs not in
// given (set on the command line or from the environment). Its keys are
// flag names; a list sets a repeatable flag once per item.
func applyConfig(fs *flag.FlagSet, path string, given map[string]bool) error {
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
		case f == nil || k == configFlag:
			if near := nearestFlag(fs, k); near != "" && near != configFlag {
				return fmt.Errorf("--config %s: unknown setting %q: did you mean %q?", path, k, near)
			}
			return fmt.Errorf("--config %s: unknown setting %q (trellis %s --help lists them)", path, k, fs.Name())
		case given[k]:
			continue
		}
		values := []any{settings[k]}
		if list, isList := settings[k].([]any); isList {
			if _, repeatable := f.Value.(*stringList); !repeatable {
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

// subcommand checks that args start with sub, the one subcommand of cmd;
// otherwise it prints synopsis, and answers --help with flag.ErrHelp.
func subcommand(args []string, cmd, sub, synopsis string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == sub {
		return nil
	}
	_, _ = io.WriteString(stderr, synopsis+"\n")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return flag.ErrHelp
	}
	return fmt.Errorf("%s: the subcommand is %s", cmd, sub)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
