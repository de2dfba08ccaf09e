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
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/progress"
)

func loadCommand() *cobra.Command {
	return newCommand("load", "import a data file (default: the demo) into PostgreSQL",
		"Import a data file (default: the embedded demo dataset) into PostgreSQL, migrating the schema first.\nThe data must not overlap what the database holds; running servers pick it up with a fresh snapshot.",
		func(fs *pflag.FlagSet) runFunc {
			var dsn, file string
			fs.StringVar(&dsn, "database-url", "", databaseURLUsage)
			fs.StringVar(&file, "data", "", "YAML or JSON data file to import (default: the embedded demo dataset)")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				if dsn == "" {
					return errors.New("--database-url (or TRELLIS_DATABASE_URL) is required")
				}
				ds := datafile.Demo()
				if file != "" {
					reading := progress.Start(stderr, newLogger(stderr, "info"), "reading the data file", 0)
					var err error
					ds, err = datafile.Load(file)
					reading.Done()
					if err != nil {
						return err
					}
				}
				rev, err := importDataset(ctx, dsn, ds, stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "imported %d organizations, %d resources, %d assignments at revision %d\n",
					len(ds.Organizations), len(ds.Resources), len(ds.Assignments), rev)
				return nil
			}
		})
}

// importDataset migrates the database at dsn and imports ds into it, and
// returns the revision the data is at. It logs to stderr, where an import
// slower than a few seconds shows the rows copied: a bar on a terminal,
// log lines otherwise.
func importDataset(ctx context.Context, dsn string, ds *model.Dataset, stderr io.Writer) (int64, error) {
	level := "info"
	if progress.Terminal(stderr) {
		level = "warn" // the bar shows what the per-table lines would say
	}
	log := newLogger(stderr, level)
	store, err := postgres.Open(ctx, dsn, postgres.Config{MaxDepth: ds.MaxDepth, Logger: log})
	if err != nil {
		return 0, err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return 0, err
	}
	importing := progress.Start(stderr, log, "importing", 0)
	defer importing.Done()
	return store.ImportWith(ctx, ds, postgres.ImportOptions{Progress: importing.Report})
}
