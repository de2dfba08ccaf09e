package postgres_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestConformanceDemo: the demo loaded from its data file and from
// PostgreSQL gives the same data document.
func TestConformanceDemo(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	want := datafile.Demo()
	rev, err := s.Import(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != rev {
		t.Errorf("snapshot revision = %d, want %d", got.Revision, rev)
	}
	sameDocument(t, got, want)
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := func() string { _, d := newStore(t); return d }()
	s := openStore(t, dsn)
	errs := make(chan error, 4)
	for range 4 {
		go func() { _, err := s.Migrate(ctx); errs <- err }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := postgres.MigrationStatus(ctx, s.DB())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied() {
			t.Errorf("migration %s not applied", m.Name)
		}
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(len(files), len(st)); diff != "" { // every file of migrations/, none other
		t.Errorf("migrations: %s", diff)
	}
}
