package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the advisory lock key that serializes Migrate calls
// across processes.
const migrateLockKey = 7234101

// Migration is one versioned schema migration.
type Migration struct {
	// Version is the number the file name starts with (0001_… is 1).
	Version int
	// Name is the file name.
	Name string
	// AppliedAt is when it was applied; zero when it is pending.
	AppliedAt time.Time
}

// Applied reports whether the migration has been applied.
func (m Migration) Applied() bool { return !m.AppliedAt.IsZero() }

// migrations returns the embedded migrations in version order, with their
// SQL.
func migrations() ([]Migration, map[int]string, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	sqls := map[int]string{}
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, nil, fmt.Errorf("migration %s: name must start with a positive version number and _", e.Name())
		}
		if _, dup := sqls[v]; dup {
			return nil, nil, fmt.Errorf("migration %s: version %d is used twice", e.Name(), v)
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name()})
		sqls[v] = string(body)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, sqls, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS trellis_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies every pending migration, each in its own transaction, in
// version order, and returns the ones it applied. It is idempotent and safe
// to run from several processes at once: a session advisory lock serializes
// them, and a process that waited finds nothing left to do.
//
// On a read-only server (a hot standby, see Store.InRecovery) it writes
// nothing: it checks that every migration is applied (on the primary, and
// replicated) and fails with an error wrapping ErrReadOnly that names the
// missing ones otherwise.
func Migrate(ctx context.Context, db *sqlx.DB) ([]Migration, error) {
	ms, sqls, err := migrations()
	if err != nil {
		return nil, err
	}
	switch ro, err := inRecovery(ctx, db); {
	case err != nil:
		return nil, fmt.Errorf("migrate: %w", err)
	case ro:
		return nil, checkApplied(ctx, db)
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must happen even when ctx is done.
		// Closing the connection would release it too.
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockKey)
	}()
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("migrate: create trellis_schema_migrations: %w", err)
	}
	done := map[int]bool{}
	var versions []int
	if err := sqlx.SelectContext(ctx, conn, &versions, "SELECT version FROM trellis_schema_migrations"); err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for _, v := range versions {
		done[v] = true
	}
	var applied []Migration
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		err := inTx(ctx, conn, nil, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, sqls[m.Version]); err != nil {
				return err
			}
			return tx.GetContext(ctx, &m.AppliedAt,
				"INSERT INTO trellis_schema_migrations (version, name) VALUES ($1, $2) RETURNING applied_at", m.Version, m.Name)
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		applied = append(applied, m)
	}
	return applied, nil
}

// checkApplied fails, wrapping ErrReadOnly, when a migration of this binary
// is not applied to the read-only database db.
func checkApplied(ctx context.Context, db *sqlx.DB) error {
	status, err := MigrationStatus(ctx, db)
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range status {
		if !m.Applied() {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("migrate: %w and lacks migrations %s: run trellis migrate against the primary, then start again once the standby has replayed them",
			ErrReadOnly, strings.Join(missing, ", "))
	}
	return nil
}

// MigrationStatus lists every embedded migration with when it was applied
// (zero AppliedAt: pending), plus any applied version this binary does not
// know (a newer binary ran it).
func MigrationStatus(ctx context.Context, db *sqlx.DB) ([]Migration, error) {
	ms, _, err := migrations()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := db.GetContext(ctx, &exists, "SELECT to_regclass('trellis_schema_migrations') IS NOT NULL"); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if !exists {
		return ms, nil
	}
	var rows []struct {
		Version   int       `db:"version"`
		Name      string    `db:"name"`
		AppliedAt time.Time `db:"applied_at"`
	}
	if err := db.SelectContext(ctx, &rows, "SELECT version, name, applied_at FROM trellis_schema_migrations ORDER BY version"); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	idx := map[int]int{}
	for i, m := range ms {
		idx[m.Version] = i
	}
	for _, r := range rows {
		if i, ok := idx[r.Version]; ok {
			ms[i].AppliedAt = r.AppliedAt
			continue
		}
		ms = append(ms, Migration{Version: r.Version, Name: r.Name, AppliedAt: r.AppliedAt})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}
