package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/modeltest"
)

// runValidate checks data files without starting anything: every problem
// of each, with its line, all at once.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "Usage: trellis validate FILE...\n\nCheck data files (YAML or JSON) against the data model, offline: every problem, with its line.", stderr)
	files, err := parseFiles(fs, args)
	if err != nil {
		return err
	}
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

// runTest runs model test files (package modeltest) on the embedded engine.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("test", "Usage: trellis test FILE...\n\nRun model test files: assertions (check, list_resources, list_memberships, effective_permissions)\nabout a data file, decided by the embedded engine with Trellis's policies. Exits 1 when any fails.\nThe format: internal/datafile/demo.test.yaml.", stderr)
	files, err := parseFiles(fs, args)
	if err != nil {
		return err
	}
	failed, total := 0, 0
	for _, file := range files {
		f, ds, err := modeltest.Load(file)
		if err != nil {
			return err
		}
		results, err := modeltest.Run(ctx, f, ds)
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
