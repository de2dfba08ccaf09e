// Package enginetest holds what the tests and benchmarks of several
// packages share: the OPA floor every decision benchmark is reported
// against, the brute-force Oracle of the decision rules and the Mutator
// that changes a dataset the way a change feed reports it.
package enginetest

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// BenchFloor times the OPA floor, a one-rule prepared query over input on
// an empty in-memory store, and returns its ns/op. Decision benchmarks
// report themselves as multiples of it ("x-floor"), measured in the same
// process just before them.
func BenchFloor(b *testing.B) float64 {
	b.Helper()
	ctx := context.Background()
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query("data.floor.allow"),
		rego.Module("floor.rego", "package floor\n\nallow if input.x == 1\n"),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	input := ast.NewObject(ast.Item(ast.InternedTerm("x"), ast.IntNumberTerm(1)))
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil || len(rs) != 1 || rs[0].Expressions[0].Value != true {
		b.Fatalf("floor query: got %v, %v; want true", rs, err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(n)
}
