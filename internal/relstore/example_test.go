package relstore_test

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// A Store serves a prepared rego query as OPA's in-memory store does: the
// query reads one resource entry, which the store materializes from its
// compact form. A change applied in a write transaction is seen by the
// next evaluation.
func Example() {
	ctx := context.Background()
	store := relstore.New(relstore.Options{})
	err := storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		return store.Load(ctx, txn, datafile.Demo())
	})
	if err != nil {
		panic(err)
	}
	pq, err := rego.New(
		rego.Query("data.trellis_data.resources[input.id]"),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		panic(err)
	}
	entry := func() any {
		rs, err := pq.Eval(ctx, rego.EvalInput(map[string]any{"id": "authz_resource_acme_api"}))
		if err != nil {
			panic(err)
		}
		return rs[0].Expressions[0].Value
	}
	fmt.Println(entry())

	// Move the project to the sales workspace.
	moved := model.Resource{ID: "authz_resource_acme_api", OrganizationID: "org_acme", Type: "project",
		ExternalID: "api", ParentID: "authz_resource_acme_sales"}
	err = storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		return store.Apply(ctx, txn, 1, []model.Change{{Op: model.OpUpsert, Resource: &moved}})
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(entry())
	// Output:
	// [org_acme project api [authz_resource_acme_api authz_resource_acme_eng authz_resource_root_org_acme]]
	// [org_acme project api [authz_resource_acme_api authz_resource_acme_sales authz_resource_root_org_acme]]
}
