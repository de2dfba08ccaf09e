package bundle_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/policies"
)

// BenchmarkBuild measures building a signed bundle of the generated tier
// "M" dataset (~1,000,000 resources, ~1,000,000 assignments): encoding,
// hashing, signing and compressing, from the index's AST document (as
// `trellis bundle build` does) and from the Go values an engine snapshot
// returns (as the bundle server does). Target: ≤ 20 s.
func BenchmarkBuild(b *testing.B) {
	spec, _ := gen.Spec{Seed: 1}.Tier("M")
	ds := gen.Generate(spec)
	doc, err := index.BuildAST(ds)
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := keyPair(b, bundle.RS256)
	signer, err := bundle.NewSigner(priv, "", "trellis", "")
	if err != nil {
		b.Fatal(err)
	}
	opts := bundle.Options{Modules: policies.Modules(), Signer: signer}
	b.Logf("%d resources, %d assignments, %d memberships", len(ds.Resources), len(ds.Assignments), len(ds.Memberships))
	run := func(b *testing.B, data any) {
		var info bundle.Info
		start := time.Now()
		for b.Loop() {
			if info, err = bundle.Build(context.Background(), io.Discard, bundle.Document{Revision: ds.Revision, Data: data}, opts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/build")
		b.ReportMetric(float64(info.Size)/1e6, "bundle_MB")
		b.ReportMetric(float64(info.DataBytes)/1e6, "data_json_MB")
	}
	b.Run("from=ast", func(b *testing.B) { run(b, doc) })
	goValue, err := ast.JSON(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("from=snapshot", func(b *testing.B) { run(b, goValue) })
}
