package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
)

// benchGenConfig is everything `trellis bench gen` is configured with.
type benchGenConfig struct {
	Tier        string
	Seed        int64
	Out         string
	DatabaseURL string
}

// runBenchGen is `trellis bench gen`: the dataset `trellis bench http`
// loads, for a server started by hand or a PostgreSQL benchmark.
func runBenchGen(ctx context.Context, c benchGenConfig, stdout, stderr io.Writer) error {
	var err error
	spec, _ := gen.Spec{Seed: c.Seed}.Tier(c.Tier)
	ds := gen.Generate(spec)
	where := c.Out
	if c.Out != "" {
		err = writeGenFile(c.Out, ds)
	} else {
		var rev int64
		rev, err = importDataset(ctx, c.DatabaseURL, ds, stderr)
		where = fmt.Sprintf("PostgreSQL at revision %d", rev)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote tier %s seed %d to %s: %d organizations, %d resources, %d memberships, %d assignments, depth %d\n",
		c.Tier, c.Seed, where, len(ds.Organizations), len(ds.Resources), len(ds.Memberships), len(ds.Assignments), spec.Depth)
	return nil
}

func benchGenCommand(run func(context.Context, benchGenConfig, io.Writer, io.Writer) error) *cobra.Command {
	return configCommand("gen", "write a generated dataset of a size tier",
		"Generate the deterministic dataset of a size tier (package gen: Zipf-like organization sizes, heavy-tailed fan-out) and write it to a JSON data file that `trellis serve --data` reads, or import it into PostgreSQL (migrating the schema first; the database must not already hold any of it).",
		(*benchGenConfig).define, (*benchGenConfig).check, run)
}

func (c *benchGenConfig) define(fs *pflag.FlagSet) {
	fs.StringVar(&c.Tier, "tier", "S", "dataset tier: S (100 orgs, ~100k resources), M (10,000 orgs, ~1M resources) or L (100,000 orgs, ~10M resources, depth 6); +groups adds groups (M+groups), +wide a 100,000-resource organization (M+wide)")
	fs.Int64Var(&c.Seed, "seed", 1, "dataset seed: equal tiers and seeds give equal datasets (trellis bench http uses the same)")
	fs.StringVar(&c.Out, "out", "", "JSON data file to write (.json)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", databaseURLUsage+"; import there instead of writing --out")
}

func (c *benchGenConfig) check() error {
	if _, ok := (gen.Spec{}).Tier(c.Tier); !ok {
		return fmt.Errorf("--tier %q: use S, M or L, with +groups, and +wide for M (depth 5)", c.Tier)
	}
	switch {
	case c.Out == "" && c.DatabaseURL == "":
		return errors.New("give --out FILE or --database-url URL")
	case c.Out != "" && c.DatabaseURL != "":
		return errors.New("give --out or --database-url, not both (is TRELLIS_DATABASE_URL set?)")
	}
	if ext := strings.ToLower(filepath.Ext(c.Out)); ext == ".yaml" || ext == ".yml" {
		return fmt.Errorf("--out %s: the data file is JSON; name it .json", c.Out)
	}
	return nil
}

// writeGenFile writes ds as a JSON data file at path; on failure it
// removes what it wrote.
func writeGenFile(path string, ds *model.Dataset) error {
	err := writeLoadFile(path, func(w io.Writer) error { return loadtest.WriteDataFile(w, ds) })
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
