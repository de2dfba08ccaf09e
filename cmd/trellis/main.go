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
	"syscall"
)

const usage = `Trellis — a self-hosted authorization service for multi-tenant SaaS.

Usage: trellis <command> [flags]

Commands:
  serve    answer decision queries over HTTP (embedded demo data by default)

Run 'trellis <command> --help' for a command's flags. Every flag can also be
set with an environment variable: --jwks-url is TRELLIS_JWKS_URL.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "trellis:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it returns when the command is done or ctx
// ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
