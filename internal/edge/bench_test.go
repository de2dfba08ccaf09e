package edge_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/edge"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/policies"
)

var tierM struct {
	once sync.Once
	raw  []byte
	info bundle.Info
	err  error
}

// tierMBundle builds, once per process, an unsigned bundle of the
// generated tier "M" dataset (~1,000,000 resources).
func tierMBundle(b *testing.B) ([]byte, bundle.Info) {
	b.Helper()
	tierM.once.Do(func() {
		spec, _ := gen.Spec{Seed: 1}.Tier("M")
		ds := gen.Generate(spec)
		doc, err := index.BuildAST(ds)
		if err != nil {
			tierM.err = err
			return
		}
		var buf bytes.Buffer
		tierM.info, tierM.err = bundle.Build(context.Background(), &buf, bundle.Document{Revision: ds.Revision, Data: doc},
			bundle.Options{Modules: policies.Modules()})
		tierM.raw = buf.Bytes()
	})
	if tierM.err != nil {
		b.Fatal(tierM.err)
	}
	return tierM.raw, tierM.info
}

// BenchmarkActivate measures what an edge does with a downloaded bundle of
// ~1,000,000 resources: read it (gunzip, parse), build the engine (compile
// the policies) and load the data, then swap it in.
func BenchmarkActivate(b *testing.B) {
	raw, info := tierMBundle(b)
	n, err := edge.New(edge.Config{URL: "http://127.0.0.1:1/unused", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.Size)/1e6, "bundle_MB")
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := n.Activate(context.Background(), raw, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/activation")
}
