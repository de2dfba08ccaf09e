package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/modeltest"
)

// validateCommand checks data files without starting anything: every
// problem of each, with its line, all at once.
func validateCommand() *cobra.Command {
	cmd := newCommand("validate FILE...", "check data files offline: every problem, with its line",
		"Check data files (YAML or JSON) against the data model, offline: every problem, with its line.",
		func(*pflag.FlagSet) runFunc { return validate })
	cmd.Args = fileArgs
	return cmd
}

func validate(_ context.Context, files []string, stdout, _ io.Writer) error {
	bad := 0
	for _, file := range files {
		ds, err := datafile.Load(file)
		var verr *model.ValidationError
		switch {
		case errors.As(err, &verr):
			bad++
			for _, p := range verr.Problems {
				fmt.Fprintf(stdout, "%s: %s\n", file, p)
			}
		case err != nil:
			bad++
			fmt.Fprintf(stdout, "%s: %v\n", file, err)
		default:
			fmt.Fprintf(stdout, "%s: valid: %d organizations, %d memberships, %d resources, %d assignments, %d roles\n",
				file, len(ds.Organizations), len(ds.Memberships), len(ds.Resources), len(ds.Assignments), len(ds.Roles))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files are not valid", bad, len(files))
	}
	return nil
}

// testCommand runs model test files (package modeltest) on the embedded
// engine.
func testCommand() *cobra.Command {
	cmd := newCommand("test FILE...", "run model test files: assertions about a data file's decisions",
		"Run model test files: assertions (check, list_resources, list_memberships, effective_permissions)\nabout a data file, decided by the embedded engine with Trellis's policies. Exits 1 when any fails.\nThe format: internal/datafile/demo.test.yaml.",
		func(fs *pflag.FlagSet) runFunc {
			var p policyFlags
			p.register(fs, false)
			return func(ctx context.Context, files []string, stdout, stderr io.Writer) error {
				mods, err := p.modules()
				if err != nil {
					return err
				}
				return runModelTests(ctx, files, mods, stdout)
			}
		})
	cmd.Args = fileArgs
	return cmd
}

func runModelTests(ctx context.Context, files []string, modules map[string]string, stdout io.Writer) error {
	failed, total := 0, 0
	for _, file := range files {
		f, ds, err := modeltest.Load(file)
		if err != nil {
			return err
		}
		results, err := modeltest.Run(ctx, f, ds, modules)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		failed += modeltest.Report(stdout, file, results)
		total += len(results)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d assertions failed", failed, total)
	}
	return nil
}
