package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPrefix prefixes the environment variable of every flag: --jwks-url is
// also TRELLIS_JWKS_URL.
const envPrefix = "TRELLIS_"

// envOverrides names the variables that differ from the flag's name.
var envOverrides = map[string]string{"api-key": "TRELLIS_API_KEYS", "issuer": "TRELLIS_ISSUERS"}

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	if v, ok := envOverrides[name]; ok {
		return v
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// newFlagSet returns a flag set whose usage lists each flag's variable.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: trellis %s [flags]\n\n%s\n\nFlags (each also an environment variable):\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return fs
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
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
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
		val, ok := os.LookupEnv(envName(f.Name))
		if given[f.Name] || !ok || err != nil {
			return
		}
		if _, isList := f.Value.(*stringList); isList {
			for _, v := range strings.Split(val, ",") {
				if v = strings.TrimSpace(v); v != "" {
					_ = f.Value.Set(v)
				}
			}
			return
		}
		if e := fs.Set(f.Name, val); e != nil {
			err = fmt.Errorf("%s=%q: %w", envName(f.Name), val, e)
		}
	})
	return pos, err
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
