package relstore_test

// Benchmarks on the "M" tier of package gen (seed 1: ~1,000,000 resources,
// ~1,000,000 assignments, 10,000 organizations, depth 5), the compact store
// beside OPA's in-memory store holding index.Build's document (configured
// as the engine configures it), in one run:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/relstore/
//
// The machine may be shared: beside wall time, every benchmark reports the
// process's CPU time ("cpu-…"), which neighbours do not inflate.
//
// The dataset and the loaded stores are built lazily, once per process, by
// the first benchmark that needs them: `go test` without -bench builds
// nothing.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// benchStores are the two stores loaded with gen.Shared("M"), for the read
// and apply benchmarks.
var benchStores struct {
	once sync.Once
	ref  *reference
	rel  *relstore.Store
}

func loadedBenchStores(b *testing.B) (*reference, *relstore.Store) {
	benchStores.once.Do(func() {
		ds := gen.Shared("M")
		benchStores.ref = newReference(b, ds)
		benchStores.rel = loaded(b, ds, relstore.Options{})
	})
	return benchStores.ref, benchStores.rel
}

// heapNow is the live heap (bytes and objects) after a full collection.
func heapNow() (bytes, objects uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapObjects
}

// BenchmarkBuild turns the dataset into a loaded store and reports, beside
// the time ("s-build"), the heap the store keeps: per resource, its
// assignments included ("B/resource", target ≤ 200), and in live heap
// objects ("objects", target ≤ 1,000,000): the difference, after a forced
// collection on both sides, between before the build and after it, while
// the store is reachable. The dataset is generated beforehand and not
// counted. inmem is index.Build and a write into OPA's in-memory store,
// what the engine does today.
func BenchmarkBuild(b *testing.B) {
	ds := gen.Shared("M")
	builds := []struct {
		name  string
		build func() any
	}{
		{"inmem", func() any { return newReference(b, ds) }},
		{"relstore", func() any { return loaded(b, ds, relstore.Options{}) }},
	}
	for _, bu := range builds {
		b.Run(bu.name, func(b *testing.B) {
			var secs, cpuSecs, perResource, objects float64
			for range b.N {
				b.StopTimer()
				bytes0, objects0 := heapNow()
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				store := bu.build()
				secs, cpuSecs = time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
				b.StopTimer()
				bytes1, objects1 := heapNow()
				runtime.KeepAlive(store)
				perResource = float64(int64(bytes1)-int64(bytes0)) / float64(len(ds.Resources))
				objects = float64(int64(objects1) - int64(objects0))
				b.StartTimer()
			}
			b.ReportMetric(secs, "s-build")
			b.ReportMetric(cpuSecs, "cpu-s-build")
			b.ReportMetric(perResource, "B/resource")
			b.ReportMetric(objects, "objects")
		})
	}
}

// tierLEnv opts in to BenchmarkBuildTierL, which needs ~8 GiB and minutes.
const tierLEnv = "TRELLIS_BENCH_TIER_L"

// BenchmarkBuildTierL builds the compact store alone for the tier L
// (100,000 organizations, ~10,000,000 resources, ~10,000,000 assignments,
// depth 6: gen's tier L) and reports what
// BenchmarkBuild does, and the store's heap in GiB (target ≤ 4). It runs
// only with TRELLIS_BENCH_TIER_L=1: the generated dataset alone takes
// several GiB.
func BenchmarkBuildTierL(b *testing.B) {
	if os.Getenv(tierLEnv) == "" {
		b.Skipf("set %s=1 to build tier L (~8 GiB of memory)", tierLEnv)
	}
	spec, _ := gen.Spec{Seed: 1}.Tier("L")
	ds := gen.Generate(spec)
	for range b.N {
		b.StopTimer()
		bytes0, objects0 := heapNow()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		s := loaded(b, ds, relstore.Options{})
		secs, cpuSecs := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
		b.StopTimer()
		bytes1, objects1 := heapNow()
		runtime.KeepAlive(s)
		b.ReportMetric(secs, "s-build")
		b.ReportMetric(cpuSecs, "cpu-s-build")
		b.ReportMetric(float64(int64(bytes1)-int64(bytes0))/float64(len(ds.Resources)), "B/resource")
		b.ReportMetric(float64(int64(objects1)-int64(objects0)), "objects")
		b.ReportMetric(float64(int64(bytes1)-int64(bytes0))/(1<<30), "GiB")
		b.StartTimer()
	}
}

// benchSample is a fixed sample of resource ids, memberships with grants
// and resources with grants to read.
func benchSample(ds *model.Dataset) (rids []string, grants [][2]string) {
	rnd := rand.New(rand.NewPCG(1, 1)) // the same sample for both stores
	for range 1024 {
		rids = append(rids, ds.Resources[rnd.IntN(len(ds.Resources))].ID)
		a := ds.Assignments[rnd.IntN(len(ds.Assignments))]
		grants = append(grants, [2]string{a.ResourceID, a.MembershipID})
	}
	return rids, grants
}

// BenchmarkRead reads one resource entry (resources/<rid>), one grant list
// (grants/<rid>/<om>) or one membership (memberships/<om>), each in a read
// transaction of its own as one evaluation would, over a fixed sample of
// 1024 random keys per operation, so that -benchtime 1x still measures
// something: "ns/read" is the mean. The in-memory store returns its own
// values; the compact store materializes fresh ones ("B/read",
// "allocs/read"), short-lived garbage instead of a heap the collector
// marks on every cycle.
func BenchmarkRead(b *testing.B) {
	ref, rel := loadedBenchStores(b)
	rids, grants := benchSample(gen.Shared("M"))
	stores := []struct {
		name  string
		store storage.Store
	}{{"inmem", ref.store}, {"relstore", rel}}
	paths := []struct {
		name string
		path func(i int) storage.Path
	}{
		{"resource", func(i int) storage.Path { return storage.Path{index.Root, "resources", rids[i]} }},
		{"grant", func(i int) storage.Path { return storage.Path{index.Root, "grants", grants[i][0], grants[i][1]} }},
		{"membership", func(i int) storage.Path { return storage.Path{index.Root, "memberships", grants[i][1]} }},
	}
	ctx := context.Background()
	for _, p := range paths {
		for _, s := range stores {
			b.Run(p.name+"/"+s.name, func(b *testing.B) {
				// No collection in progress: its assists would charge the
				// reads of one store for marking the other's heap.
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu0, loops := cpuTime(), 0
				for b.Loop() {
					loops++
					for i := range len(rids) {
						if _, err := storage.ReadOne(ctx, s.store, p.path(i)); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu := cpuTime() - cpu0
				runtime.ReadMemStats(&after)
				reads := float64(loops * len(rids))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/reads, "ns/read")
				b.ReportMetric(float64(cpu.Nanoseconds())/reads, "cpu-ns/read")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/reads, "B/read")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/reads, "allocs/read")
			})
		}
	}
}

// BenchmarkApplyAssignment applies one assignment at a time, each in a
// write transaction of its own, alternately adding and removing it so that
// the data stays the same size: 256 applies per operation, "ns/apply" the
// mean.
func BenchmarkApplyAssignment(b *testing.B) {
	ref, rel := loadedBenchStores(b)
	ds := gen.Shared("M")
	a := ds.Assignments[len(ds.Assignments)/2]
	a.ID = "role_assignment_bench"
	rev := int64(1)
	applies := []struct {
		name  string
		apply func([]model.Change) error
	}{
		{"inmem", func(chs []model.Change) error { rev++; return ref.apply(rev, chs) }},
		{"relstore", func(chs []model.Change) error { rev++; return apply(rel, rev, chs) }},
	}
	const perOp = 256
	for _, ap := range applies {
		b.Run(ap.name, func(b *testing.B) {
			runtime.GC()
			cpu0, loops := cpuTime(), 0
			for b.Loop() {
				loops++
				for i := range perOp {
					op := []model.Op{model.OpUpsert, model.OpDelete}[i%2]
					if err := ap.apply([]model.Change{{Op: op, Assignment: &a}}); err != nil {
						b.Fatal(fmt.Errorf("%s: %w", op, err))
					}
				}
			}
			applies := float64(loops * perOp)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/applies, "ns/apply")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/applies, "cpu-ns/apply")
		})
	}
}
