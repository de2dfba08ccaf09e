package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/postgres"
)

const schemaSynopsis = `Declare resource types, permissions and environment roles from FILE, a data
file (YAML or JSON, the format of --data) holding only the resource_types,
permissions and roles sections. What FILE names is created or updated; with
--prune, the types, permissions and environment roles it does not name are
deleted (an organization's own roles never are). Applying the same file again
changes nothing. Everything happens in one transaction: on any error the
database is unchanged. The schema is migrated first.`

func schemaCommand() *cobra.Command {
	apply := newCommand("apply FILE", "declare resource types, permissions and roles from FILE", schemaSynopsis,
		func(fs *pflag.FlagSet) runFunc {
			var dsn string
			var prune bool
			fs.StringVar(&dsn, "database-url", "", databaseURLUsage)
			fs.BoolVar(&prune, "prune", false, "also delete the resource types, permissions and environment roles FILE does not name")
			return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				if dsn == "" {
					return errors.New("--database-url (or TRELLIS_DATABASE_URL) is required")
				}
				return applySchema(ctx, dsn, args[0], prune, stdout)
			}
		})
	apply.Args = exactArgs("FILE")
	return newGroup("schema", "declare resource types, permissions and roles in PostgreSQL (schema apply FILE [--prune])", apply)
}

func applySchema(ctx context.Context, dsn, file string, prune bool, stdout io.Writer) error {
	ds, err := datafile.Load(file)
	if err != nil {
		return err
	}
	if n := len(ds.Organizations) + len(ds.Memberships) + len(ds.Resources) + len(ds.Assignments); n > 0 {
		return fmt.Errorf("%s: a schema file holds resource_types, permissions and roles only; import organizations, memberships, resources and assignments with trellis load", file)
	}
	store, err := postgres.Open(ctx, dsn, postgres.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	report, err := store.ApplySchema(ctx, postgres.Schema{ResourceTypes: ds.ResourceTypes, Permissions: ds.Permissions, Roles: ds.Roles, DefaultRole: ds.DefaultRole}, prune)
	if err != nil {
		return fmt.Errorf("schema apply %s: %w (nothing was changed)", file, err)
	}
	for _, c := range report.Changes {
		fmt.Fprintln(stdout, c)
	}
	if len(report.Changes) == 0 {
		fmt.Fprintln(stdout, "schema is up to date: nothing changed")
		return nil
	}
	fmt.Fprintf(stdout, "applied %d changes at revision %d\n", len(report.Changes), report.Revision)
	return nil
}
