// Command trellis is the Trellis authorization service: `trellis serve` answers
// decision queries over HTTP. main only parses, wires and runs; the packages
// under internal/ do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// newRoot returns the command tree; each command lives in its own file.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "trellis",
		Short: "Trellis — a self-hosted authorization service for multi-tenant SaaS",
		Long: `Trellis — a self-hosted authorization service for multi-tenant SaaS.

Every flag of serve and edge, and the connection flags of every command, can
also be set with an environment variable, shown in brackets in each --help:
--jwks-url is TRELLIS_JWKS_URL.`,
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		migrateCommand(), loadCommand(), schemaCommand(), serveCommand(serve),
		bundleCommand(), edgeCommand(runEdge), eventsCommand(), tokenCommand(),
		checkCommand(), explainCommand(), listCommand(), permissionsCommand(),
		versionCommand(), validateCommand(), testCommand(), benchCommand(),
		policiesCommand(),
	)
	showEnv(root)
	return root
}

// errorExit annotates a command that exits with this code on an error, not
// 1 (check: 1 is "denied").
const errorExit = "error-exit"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var exit *exitError
	switch {
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

// run runs a command line; it returns when the command is done or ctx
// ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, err := execute(ctx, newRoot(), args, stdout, stderr)
	var exit *exitError
	if err != nil && cmd != nil && cmd.Annotations[errorExit] == "2" && !errors.As(err, &exit) {
		return &exitError{code: 2, err: err}
	}
	return err
}

// exitError ends the process with code, printing err unless it is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
