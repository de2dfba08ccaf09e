package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trellis-authz/trellis/policies"
)

// policiesCommand groups the commands about Trellis's own Rego.
func policiesCommand() *cobra.Command {
	return newGroup("policies", "Trellis's Rego policies: export them to test your extensions with stock opa", policiesExportCommand())
}

// policiesExportCommand writes the core's modules and test fixture to a
// directory (policies.Export), for `opa test DIR my-extensions/`.
func policiesExportCommand() *cobra.Command {
	cmd := newCommand("export DIR", "write the core's policies and test fixture to DIR, for opa test on your extensions",
		`Write into DIR the core policy modules exactly as the server compiles them,
and the core's test fixture (trellis/fixture_test.rego, package trellis_test:
data.trellis_test.fixture), so a team can test its extensions with stock opa:

  trellis policies export core/
  opa test core/ my-extensions/

DIR must be empty or absent, unless --force: then the exported files replace
theirs and other files stay (export to a fresh DIR when upgrading).`,
		func(fs *pflag.FlagSet) runFunc {
			force := fs.Bool("force", false, "write into a DIR that is not empty, replacing the files exported")
			return func(_ context.Context, args []string, stdout, _ io.Writer) error {
				written, err := policies.Export(args[0], *force)
				if errors.Is(err, policies.ErrNotEmpty) {
					return fmt.Errorf("%w (--force writes over the exported files)", err)
				}
				if err != nil {
					return err
				}
				for _, rel := range written {
					fmt.Fprintln(stdout, filepath.Join(args[0], filepath.FromSlash(rel)))
				}
				return nil
			}
		})
	cmd.Args = exactArgs("DIR")
	return cmd
}
