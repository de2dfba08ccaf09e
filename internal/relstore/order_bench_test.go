package relstore_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/index"
)

// BenchmarkTreeOrder reports what the lists' ordered sets (order.go,
// members.go) add to the store of tier M: their heap as a share of the
// whole store's ("order-share"), and the cost of one page of 100 below an organization
// root (ns/op).
func BenchmarkTreeOrder(b *testing.B) {
	_, s := loadedBenchStores(b)
	q := `{"starts":["authz_resource_root_org_1"],"limit":100,"after":["authz_resource_root_org_1","authz_resource_5"]}`
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := storage.ReadOne(ctx, s, storage.Path{index.Root, "tree_page", q})
		if err != nil || len(v.(map[string]any)["paths"].([]any)) != 100 {
			b.Fatalf("page: %v, %v", err, v)
		}
	}
	b.ReportMetric(float64(s.ListsBytes())/float64(s.HeapBytes()), "order-share")
}
