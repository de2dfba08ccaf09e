package postgres_test

import (
	"context"
	"os"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// benchEnv must be set (to anything) for the PostgreSQL benchmarks to run:
// they bulk-load large datasets. `make bench` sets it.
const benchEnv = "TRELLIS_BENCH_POSTGRES"

func requireBench(b *testing.B) {
	b.Helper()
	if os.Getenv(benchEnv) == "" {
		b.Skipf("set %s=1 to run the PostgreSQL benchmarks (they load a 1,000,000-resource dataset)", benchEnv)
	}
}

// BenchmarkSnapshotLoad measures a full snapshot of a tier M dataset
// (≥ 1,000,000 resources and assignments, bulk-loaded with COPY) into the
// engine: time and heap per resource+assignment.
func BenchmarkSnapshotLoad(b *testing.B) {
	requireBench(b)
	ctx := context.Background()
	s, _ := newStore(b)
	spec, _ := gen.Spec{Seed: 1}.Tier("M")
	ds := gen.Generate(spec)
	if _, err := s.Import(ctx, ds); err != nil {
		b.Fatal(err)
	}
	rows := float64(len(ds.Resources) + len(ds.Assignments))
	ds = nil
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		eng := newEngine(b)
		snap, err := s.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := eng.LoadDataset(ctx, snap); err != nil {
			b.Fatal(err)
		}
		snap = nil //nolint:ineffassign // drop the reference so runtime.GC can free the snapshot
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/rows, "heap-B/row")
		runtime.KeepAlive(eng)
	}
}

// BenchmarkApplyAssignment measures applying one assignment change (add,
// then remove) to the engine, as the follower does.
func BenchmarkApplyAssignment(b *testing.B) {
	ctx := context.Background()
	eng := newEngine(b)
	ds := datafile.Demo()
	ds.Revision = 1
	if err := eng.LoadDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	a := &model.Assignment{ID: "role_assignment_b", MembershipID: "om_carol", RoleSlug: "project-editor", ResourceID: "authz_resource_acme_api"}
	rev := int64(1)
	b.ResetTimer()
	for i := range b.N {
		rev++
		op := model.OpUpsert
		if i%2 == 1 {
			op = model.OpDelete
		}
		if err := eng.Apply(ctx, rev, []model.Change{{Op: op, Assignment: a}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFreshness measures commit-to-applied latency (write returns →
// engine at that revision) under about 100 writes per second, and reports
// its percentiles.
func BenchmarkFreshness(b *testing.B) {
	requireBench(b)
	ctx := context.Background()
	s := demoStore(b)
	eng := newEngine(b)
	follow(b, s, eng, postgres.FollowerConfig{PollInterval: time.Hour})
	var lat []time.Duration
	tick := time.NewTicker(10 * time.Millisecond) // 100 writes/s
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		op := model.OpUpsert
		if i%2 == 1 {
			op = model.OpDelete
		}
		rev, err := s.Write(ctx, []model.Change{{Op: op, Assignment: &model.Assignment{ID: "role_assignment_f", MembershipID: "om_carol", RoleSlug: "project-editor", ResourceID: "authz_resource_acme_api"}}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := eng.WaitFor(ctx, rev, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(0.99).Microseconds()), "p99-µs")
}

// BenchmarkWriteReparent measures one validated write transaction — a
// re-parent, with its depth, cycle and parent-type checks — at
// SERIALIZABLE, from one writer (no conflicts, no retries).
func BenchmarkWriteReparent(b *testing.B) {
	ctx := context.Background()
	s := demoStore(b)
	parents := [2]string{"authz_resource_acme_eng", "authz_resource_acme_sales"}
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Write(ctx, []model.Change{{Op: model.OpUpsert, Resource: &model.Resource{ID: "authz_resource_acme_api",
			OrganizationID: "org_acme", Type: "project", ExternalID: "api", Name: "API", ParentID: parents[i%2]}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImport measures a bulk import (COPY, one SERIALIZABLE
// transaction) of a tier S dataset (100,000 resources) into an empty
// database.
func BenchmarkImport(b *testing.B) {
	requireBench(b)
	ctx := context.Background()
	spec, _ := gen.Spec{Seed: 1}.Tier("S")
	ds := gen.Generate(spec)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, _ := newStore(b)
		b.StartTimer()
		if _, err := s.Import(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ds.Resources)+len(ds.Assignments)), "rows")
}
