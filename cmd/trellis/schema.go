package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/postgres"
)

const schemaSynopsis = `Usage: trellis schema apply FILE [--prune] --database-url URL

Declare resource types, permissions and environment roles from FILE, a data
file (YAML or JSON, the format of --data) holding only the resource_types,
permissions and roles sections. What FILE names is created or updated; with
--prune, the types, permissions and environment roles it does not name are
deleted (an organization's own roles never are). Applying the same file again
changes nothing. Everything happens in one transaction: on any error the
database is unchanged. The schema is migrated first.`

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := subcommand(args, "schema", "apply", schemaSynopsis, stderr); err != nil {
		return err
	}
	args = args[1:]
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	var dsn string
	var prune bool
	fs := newFlagSet("schema apply", schemaSynopsis, stderr)
	fs.StringVar(&dsn, "database-url", "", databaseURLUsage)
	fs.BoolVar(&prune, "prune", false, "also delete the resource types, permissions and environment roles FILE does not name")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case file == "":
		return errors.New("schema apply: give the schema file right after apply: trellis schema apply FILE")
	case dsn == "":
		return errors.New("--database-url (or TRELLIS_DATABASE_URL) is required")
	}
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
