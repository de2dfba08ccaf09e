package index

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
)

// TxnStore is a Store over one transaction of an OPA storage.Store that
// holds the document at Root as plain Go values (the engine's inmem store).
// It is valid only while Txn is open; Put and Delete need a write
// transaction.
type TxnStore struct {
	Ctx   context.Context
	Store storage.Store
	Txn   storage.Transaction
}

func docPath(p []string) storage.Path {
	return append(storage.Path{Root}, p...)
}

// Get implements Store.
func (s TxnStore) Get(p ...string) (ast.Value, bool, error) {
	v, err := s.Store.Read(s.Ctx, s.Txn, docPath(p))
	if storage.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	switch v := v.(type) {
	case ast.Value:
		return v, true, nil
	case map[string]any:
		// Lazily: patches read large objects (a type's external ids) only
		// to look up or count a few keys.
		return ast.LazyObject(v), true, nil
	}
	av, err := ast.InterfaceToValue(v)
	return av, err == nil, err
}

// Put implements Store.
func (s TxnStore) Put(v ast.Value, p ...string) error {
	native, err := ast.JSON(v)
	if err != nil {
		return err
	}
	err = s.Store.Write(s.Ctx, s.Txn, storage.AddOp, docPath(p), native)
	if storage.IsNotFound(err) && len(p) > 1 {
		// A missing parent: create it holding just this key.
		return s.Put(ast.NewObject(ast.Item(ast.StringTerm(p[len(p)-1]), ast.NewTerm(v))), p[:len(p)-1]...)
	}
	return err
}

// Scan implements Store.
func (s TxnStore) Scan(fn func(string, ast.Value) bool, p ...string) error {
	v, err := s.Store.Read(s.Ctx, s.Txn, docPath(p))
	if storage.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("index: %v is %T, not an object", p, v)
	}
	for k, x := range m {
		var av ast.Value
		if obj, isObj := x.(map[string]any); isObj {
			av = ast.LazyObject(obj)
		} else if av, err = ast.InterfaceToValue(x); err != nil {
			return err
		}
		if !fn(k, av) {
			return nil
		}
	}
	return nil
}

// Delete implements Store.
func (s TxnStore) Delete(p ...string) error {
	err := s.Store.Write(s.Ctx, s.Txn, storage.RemoveOp, docPath(p), nil)
	if storage.IsNotFound(err) {
		return nil
	}
	return err
}
