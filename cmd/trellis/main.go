// Command trellis is the Trellis authorization service: `trellis serve` answers
// decision queries over HTTP. main only parses, wires and runs; the packages
// under internal/ do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: run parses args and runs until done or ctx ends.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands; each lives in its own file.
var commands = map[string]command{
	"migrate":     {"apply (up) or list (status) the PostgreSQL schema migrations", runMigrate},
	"load":        {"import a data file (default: the demo) into PostgreSQL", runLoad},
	"schema":      {"declare resource types, permissions and roles in PostgreSQL (schema apply FILE [--prune])", runSchema},
	"serve":       {"answer decision queries over HTTP (embedded demo data by default)", runServe},
	"bundle":      {"build a signed OPA bundle of policies and data (bundle build --out FILE)", runBundle},
	"edge":        {"answer decisions offline from bundles pulled from a Trellis server", runEdge},
	"events":      {"print the change stream of a server, one line an event (events tail)", runEvents},
	"token":       {"print a session token minted by a --dev server for a membership of its data (token mint)", runToken},
	"check":       {"ask a running server whether a subject may (check PERMISSION RESOURCE); exits 0 allowed, 1 denied, 2 error", runCheck},
	"explain":     {"show why a subject may or may not: the grant's path, or the denial's cause (explain PERMISSION RESOURCE)", runExplain},
	"list":        {"list what a permission reaches on a running server (list resources PERMISSION, list memberships PERMISSION RESOURCE)", runList},
	"permissions": {"print a subject's effective permissions on a resource (permissions RESOURCE)", runPermissions},
	"version":     {"print the version, the VCS revision and the Go version", runVersion},
	"validate":    {"check data files offline: every problem, with its line (validate FILE...)", runValidate},
	"test":        {"run model test files: assertions about a data file's decisions (test FILE...)", runTest},
	"bench":       {"load Trellis, stock OPA and a constant ceiling over HTTP, checking every answer (bench http); write a generated dataset (bench gen)", runBench},
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Trellis — a self-hosted authorization service for multi-tenant SaaS.\n\nUsage: trellis <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-12s %s\n", name, commands[name].summary)
	}
	fmt.Fprint(w, "\nRun 'trellis <command> --help' for a command's flags. Every flag of serve and\nedge, and the connection flags of every command, can also be set with an\nenvironment variable: --jwks-url is TRELLIS_JWKS_URL (see each --help).\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var exit *exitError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintln(os.Stderr, "trellis:", exit.err)
		}
		os.Exit(exit.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "trellis:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it returns when the command is done or ctx
// ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd.run(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "--version" {
		return runVersion(ctx, nil, stdout, stderr)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}
