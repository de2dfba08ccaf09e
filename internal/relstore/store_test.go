package relstore_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

var bg = context.Background()

// TestOtherRoots: every root but index.Root is an in-memory store's, as the
// engine uses it (trellis_host, its generation), written and read in the
// transaction that changes the document.
func TestOtherRoots(t *testing.T) {
	s := loaded(t, small(), relstore.Options{})
	host := storage.Path{"trellis_host"}
	err := storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		if err := s.Write(bg, txn, storage.AddOp, host, map[string]any{"verifies_tokens": true}); err != nil {
			return err
		}
		if err := s.Write(bg, txn, storage.AddOp, storage.Path{"trellis_host", "generation"}, json.Number("7")); err != nil {
			return err
		}
		return s.Apply(bg, txn, 43, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = storage.Txn(bg, s, storage.TransactionParams{}, func(txn storage.Transaction) error {
		got, err := s.Read(bg, txn, host)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(got, map[string]any{"verifies_tokens": true, "generation": json.Number("7")}); diff != "" {
			t.Errorf("trellis_host (-got +want):\n%s", diff)
		}
		rev, err := readRevision(s, txn)
		if rev != 43 || err != nil {
			t.Errorf("revision %d, %v; want 43", rev, err)
		}
		if _, err := s.Read(bg, txn, storage.Path{"nope"}); !storage.IsNotFound(err) {
			t.Errorf("read of a missing root: %v, want not found", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefusedWrites: the document changes only through Load and Apply.
func TestRefusedWrites(t *testing.T) {
	s := loaded(t, small(), relstore.Options{})
	tests := []struct {
		name  string
		path  storage.Path
		value any
	}{
		{"the document", storage.Path{index.Root}, map[string]any{}},
		{"an entry", storage.Path{index.Root, "revision"}, json.Number("1")},
		{"the data root with the document", storage.Path{}, map[string]any{index.Root: map[string]any{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := storage.WriteOne(bg, s, storage.AddOp, tc.path, tc.value)
			if !storage.IsInvalidPatch(err) {
				t.Errorf("write: %v, want an invalid-patch error", err)
			}
		})
	}
	err := storage.Txn(bg, s, storage.TransactionParams{}, func(txn storage.Transaction) error {
		return s.Apply(bg, txn, 1, nil)
	})
	if !storage.IsInvalidTransaction(err) {
		t.Errorf("Apply in a read transaction: %v, want an invalid-transaction error", err)
	}
	txn := storage.NewTransactionOrDie(bg, s, storage.WriteParams)
	if err := s.Commit(bg, txn); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(bg, txn, 1, nil); !storage.IsInvalidTransaction(err) {
		t.Errorf("Apply in a committed transaction: %v, want an invalid-transaction error", err)
	}
	if _, err := s.Read(bg, txn, storage.Path{index.Root, "revision"}); !storage.IsInvalidTransaction(err) {
		t.Errorf("Read in a committed transaction: %v, want an invalid-transaction error", err)
	}
}

// TestAbortedLoad: a Load, and Applies before and after it, undone by
// Abort, leave the document as it was.
func TestAbortedLoad(t *testing.T) {
	s, ref := loaded(t, small(), relstore.Options{}), newReference(t, small())
	txn := storage.NewTransactionOrDie(bg, s, storage.WriteParams)
	del := []model.Change{{Op: model.OpDelete, Organization: &model.Organization{ID: "org_a"}}}
	if err := s.Apply(bg, txn, 50, del); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(bg, txn, chain(3, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(bg, txn, 51, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Read(bg, txn, storage.Path{index.Root, "orgs", "org_c"}); err != nil {
		t.Errorf("the transaction does not see its own load: %v, %v", v, err)
	}
	s.Abort(bg, txn)
	sameReads(t, s, ref)
}

// TestTriggers: a trigger sees the committing transaction, can read the
// changed document in it, and is told the document changed.
func TestTriggers(t *testing.T) {
	s := loaded(t, small(), relstore.Options{})
	var events []storage.TriggerEvent
	var seen []any
	var handle storage.TriggerHandle
	err := storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		var err error
		handle, err = s.Register(bg, txn, storage.TriggerConfig{OnCommit: func(ctx context.Context, txn storage.Transaction, ev storage.TriggerEvent) {
			events = append(events, ev)
			v, err := s.Read(ctx, txn, storage.Path{index.Root, "revision"})
			seen = append(seen, v, err)
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(s, 44, nil); err != nil {
		t.Fatal(err)
	}
	if err := storage.WriteOne(bg, s, storage.AddOp, storage.Path{"trellis_host"}, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d trigger calls, want 3 (registration, apply, write)", len(events))
	}
	if !events[1].DataChanged() || !events[1].Data[0].Path.Equal(storage.Path{index.Root}) {
		t.Errorf("apply: event %+v does not name %s", events[1], index.Root)
	}
	if len(events[2].Data) != 1 || !events[2].Data[0].Path.Equal(storage.Path{"trellis_host"}) {
		t.Errorf("write: event %+v, want one for trellis_host only", events[2])
	}
	if diff := cmp.Diff(seen[2:4], []any{json.Number("44"), nil}); diff != "" {
		t.Errorf("the trigger's read (-got +want):\n%s", diff)
	}
	err = storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		handle.Unregister(bg, txn)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(s, 45, nil); err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Errorf("%d trigger calls after unregistering, want still 3", len(events))
	}
}

// TestPolicies: policies are the inner store's.
func TestPolicies(t *testing.T) {
	s := relstore.New(relstore.Options{})
	err := storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		return s.UpsertPolicy(bg, txn, "p.rego", []byte("package p"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		ids, err := s.ListPolicies(bg, txn)
		if err != nil || len(ids) != 1 || ids[0] != "p.rego" {
			t.Errorf("ListPolicies: %v, %v", ids, err)
		}
		bs, err := s.GetPolicy(bg, txn, "p.rego")
		if err != nil || string(bs) != "package p" {
			t.Errorf("GetPolicy: %q, %v", bs, err)
		}
		return s.DeletePolicy(bg, txn, "p.rego")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMakeDirAndNonEmpty: the storage helpers that bundle activation and
// the compiler's path-conflict check use.
func TestMakeDirAndNonEmpty(t *testing.T) {
	s := loaded(t, small(), relstore.Options{})
	err := storage.Txn(bg, s, storage.WriteParams, func(txn storage.Transaction) error {
		for _, p := range []storage.Path{{"a", "b"}, {index.Root}, {index.Root, "resources"}, {index.Root, "orgs", "org_a"}} {
			if err := storage.MakeDir(bg, s, txn, p); err != nil {
				t.Errorf("MakeDir %v: %v", p, err)
			}
		}
		for _, p := range []storage.Path{{index.Root, "resources", "r_ws1"}, {index.Root, "orgs", "org_nope"}} {
			if err := storage.MakeDir(bg, s, txn, p); err == nil {
				t.Errorf("MakeDir %v: no error", p)
			}
		}
		nonEmpty := storage.NonEmpty(bg, s, txn)
		for p, want := range map[string]bool{
			"a":                               true, // an object holds a value
			"a/b":                             true,
			"a/b/c":                           false,
			index.Root:                        true,
			index.Root + "/resources":         true,
			index.Root + "/resources/nope":    false,
			index.Root + "/resources/r_ws1/x": true, // below an array
			index.Root + "/orgs/org_a/x":      false,
			"nope":                            false,
		} {
			path, _ := storage.ParsePath("/" + p)
			if got, err := nonEmpty(path); got != want || err != nil {
				t.Errorf("NonEmpty %s: %v, %v; want %v", p, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
