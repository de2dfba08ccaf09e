package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// databaseURLUsage is the --database-url help shared by every command.
const databaseURLUsage = "PostgreSQL connection URL (postgres://user:pass@host:5432/db?sslmode=…)"

func migrateCommand() *cobra.Command {
	cmd := newCommand("migrate [up|status]", "apply (up) or list (status) the PostgreSQL schema migrations",
		"up (the default) applies pending schema migrations; it is idempotent and safe to run\nfrom several processes at once. status lists the migrations and when each was applied.",
		func(fs *pflag.FlagSet) runFunc {
			var dsn string
			fs.StringVar(&dsn, "database-url", "", databaseURLUsage)
			return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				action := "up"
				if len(args) > 0 {
					action = args[0]
				}
				return migrate(ctx, dsn, action, stdout)
			}
		})
	cmd.Args = cobra.MaximumNArgs(1)
	cmd.ValidArgs = []string{"up", "status"}
	return cmd
}

func migrate(ctx context.Context, dsn, action string, stdout io.Writer) error {
	if action != "up" && action != "status" {
		return fmt.Errorf("unknown migrate action %q: use up or status", action)
	}
	if dsn == "" {
		return errors.New("--database-url (or TRELLIS_DATABASE_URL) is required")
	}
	store, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	if action == "up" {
		applied, err := store.Migrate(ctx)
		for _, m := range applied {
			fmt.Fprintf(stdout, "applied %s\n", m.Name)
		}
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "schema is up to date")
		}
		return nil
	}
	ms, err := postgres.MigrationStatus(ctx, store.DB())
	if err != nil {
		return err
	}
	for _, m := range ms {
		when := "pending"
		if m.Applied() {
			when = "applied " + m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%04d  %-32s %s\n", m.Version, m.Name, when)
	}
	return nil
}
