// Package relstore is a storage.Store for OPA that keeps Trellis's data
// document (package index) in a compact, pointer-free form and materializes
// only the values a query reads.
//
// The document OPA's in-memory store holds is maps of boxed Go values: at
// a million resources, over ten million heap objects that every garbage
// collection marks. Here the same data is a handful of flat slices: one
// string table (an arena of bytes, every id, slug and external id once,
// named by its offset), integer row numbers everywhere else, a table of
// fixed-width uint32 rows per entity kind (an entity is one memory access
// away), and open-addressing hash indexes over []uint32 instead of maps
// with string keys. Ancestor chains are not stored but walked up the parent
// links when read, so a re-parent is O(1); children and grants are linked
// lists through the rows, so adding or removing one is O(1); deleted rows
// are reused, and strings and lists nothing names any more are reclaimed
// as the tables grow.
//
// # Reads
//
// Read below Root returns, for every path the policies read, exactly what
// an in-memory store holding index.Build's document returns (freshly
// allocated, in the same plain Go shape: map[string]any, []any, string,
// bool, json.Number), including storage.NotFoundErr for absent keys:
//
//	revision                        orgs/<org>[/...]
//	resources/<rid>[/...]           lookup/<org>[/<type>[/<ext>]]
//	children/<rid>[/...]            grants/<rid>[/<om>[/...]]
//	memberships/<om>[/...]          org_roles/<om>[/...]
//	roles/<key>[/...]               permissions[/<slug>[/...]]
//	max_depth                       quarantined/<org>
//	quarantined_resources/<rid>     quarantined_memberships/<om>
//
// and one key the in-memory document does not have:
//
//	tree_page/<query>               a page of resources in tree order
//
// so that a policy can page through subtrees without reading them whole:
// the query is a JSON object (pageQuery in order.go) naming anchors, a
// type, a position and a limit, and the value the paths of the page's
// resources (each the ids from the organization root down).
// A read of a whole collection (Root itself, resources, lookup, children,
// grants, memberships, org_roles, orgs, roles, the three quarantine
// collections, tree_page; and the data root) would materialize up to millions of values: it fails with a
// *storage.Error of code WholeCollectionErr, unless Options.WholeReads is
// set (never for tree_page). Export streams the whole document instead.
//
// # Writes and transactions
//
// Every other root (the engine's trellis_host) is kept by an inner
// in-memory store, to which transactions, Write, policies and triggers are
// delegated, so a Store is a drop-in storage.Store for package rego. The
// document under Root changes only through Load and Apply, inside a write
// transaction: Write under Root is refused. Read transactions hold a read
// lock from NewTransaction to Commit or Abort; the first Load or Apply of a
// write transaction takes the write lock, changes the data in place, and
// holds the lock until Commit, or until Abort has undone every change. A
// read transaction therefore sees one revision whole, never part of a
// batch. A goroutine holding a write transaction that has changed the
// document must not open another transaction on the store.
package relstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

// Root is the path of the document this store keeps compact: index.Root.
const Root = index.Root

// Options configures a Store. The zero value is what a server uses.
type Options struct {
	// WholeReads lets Read materialize a whole collection (and the whole
	// document) instead of refusing, for tests and small data. Export
	// writes the whole document without it.
	WholeReads bool
}

// Store is a storage.Store holding the document under Root in compact form
// and every other root in an inner in-memory store. It is safe for
// concurrent use as OPA's stores are: many read transactions, one write
// transaction at a time. Create it with New.
type Store struct {
	inner storage.Store
	opts  Options

	mu sync.RWMutex // read transactions hold R; a write transaction that changed st holds W
	st *state

	// committing is the write transaction being committed, for the
	// triggers the inner store runs during its commit.
	committing *txn
}

// New returns a store whose document is that of an empty dataset at
// revision 0.
func New(opts Options) *Store {
	st, err := build(&model.Dataset{})
	if err != nil {
		panic(fmt.Sprintf("relstore: build an empty document: %v", err))
	}
	return &Store{
		// As the engine configures its store: values kept as written, and
		// returned as Go values.
		inner: inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(false)),
		opts:  opts,
		st:    st,
	}
}

// txn is a transaction of a Store: one of the inner store, and the undo
// log of the changes made to the document under Root.
type txn struct {
	s       *Store
	inner   storage.Transaction
	write   bool
	locked  bool // holds s.mu for writing
	changed bool // Load or Apply changed the document
	stale   bool
	undo    []func()
}

// ID returns the inner transaction's id.
func (t *txn) ID() uint64 { return t.inner.ID() }

// NewTransaction opens a transaction. A read transaction waits for a write
// transaction that changed the document to end.
func (s *Store) NewTransaction(ctx context.Context, params ...storage.TransactionParams) (storage.Transaction, error) {
	write := len(params) > 0 && params[0].Write
	if !write {
		s.mu.RLock()
	}
	inner, err := s.inner.NewTransaction(ctx, params...)
	if err != nil {
		if !write {
			s.mu.RUnlock()
		}
		return nil, err
	}
	return &txn{s: s, inner: inner, write: write}, nil
}

func invalidTxn(msg string) error {
	return &storage.Error{Code: storage.InvalidTransactionErr, Message: msg}
}

// txnOf returns the transaction behind a storage.Transaction of s.
func (s *Store) txnOf(t storage.Transaction) (*txn, error) {
	x, ok := t.(*txn)
	switch {
	case !ok:
		return nil, invalidTxn(fmt.Sprintf("unexpected transaction type %T", t))
	case x.s != s:
		return nil, invalidTxn("unknown transaction")
	case x.stale:
		return nil, invalidTxn("stale transaction")
	}
	return x, nil
}

// writeTxn is txnOf for a write transaction.
func (s *Store) writeTxn(t storage.Transaction) (*txn, error) {
	x, err := s.txnOf(t)
	if err != nil {
		return nil, err
	}
	if !x.write {
		return nil, invalidTxn("data write during read transaction")
	}
	return x, nil
}

// lock takes the write lock for t's first change of the document, and
// points the document's undo log at t's.
func (s *Store) lock(t *txn) {
	if !t.locked {
		s.mu.Lock()
		t.locked = true
		s.st.undo = &t.undo
	}
}

// Load replaces the document with the one of ds, built straight from the
// dataset, at revision ds.Revision: Build, then LoadBuilt.
func (s *Store) Load(ctx context.Context, txn storage.Transaction, ds *model.Dataset) error {
	b, err := Build(ds)
	if err != nil {
		return err
	}
	return s.LoadBuilt(ctx, txn, b)
}

// Built is the document of a dataset, built outside any transaction, for
// LoadBuilt.
type Built struct {
	st *state
}

// Build builds the document of ds. It refuses what index.Build refuses,
// with the same error text, and data that breaks ErrInvariant. It needs no
// Store, so it may run while the dataset is still being validated.
func Build(ds *model.Dataset) (*Built, error) {
	st, err := build(ds)
	if err != nil {
		return nil, err
	}
	return &Built{st: st}, nil
}

// LoadBuilt replaces the document with b, which no other Store may load
// (nor this one again). Readers are held up only by the swap. txn must be
// a write transaction of s.
func (s *Store) LoadBuilt(ctx context.Context, txn storage.Transaction, b *Built) error {
	t, err := s.writeTxn(txn)
	if err != nil {
		return err
	}
	if b.st == nil {
		return errors.New("relstore: a Built loaded twice")
	}
	st := b.st
	b.st = nil
	s.lock(t)
	old := s.st
	old.undo = nil
	st.undo = &t.undo
	s.st = st
	t.undo = append(t.undo, func() { s.st = old; old.undo = &t.undo })
	t.changed = true
	return nil
}

// Apply applies changes to the document, in order, with exactly the effect
// of index.Patch on index.Build's document, and sets its revision. Each
// change costs O(what it changes): an assignment touches one grant record,
// a re-parent two child lists, a delete its subtree. On error none of the
// changes is applied and the error says which one failed: the error of
// index.Patch for that change, index.ErrIncomplete or ErrInvariant
// (wrapped). txn must be a write transaction of s; its Abort undoes the
// changes, its Commit makes them visible to read transactions at once.
func (s *Store) Apply(ctx context.Context, txn storage.Transaction, revision int64, changes []model.Change) error {
	return s.ApplyWith(ctx, txn, revision, changes, nil)
}

// ApplyWith is Apply calling before, when not nil, with each change just
// before it is applied: on the document as the earlier changes of the
// batch left it, read through txn (for index.ScopeOf, which needs the
// document before the change). An error of before fails ApplyWith as the
// change's own error would.
func (s *Store) ApplyWith(ctx context.Context, txn storage.Transaction, revision int64, changes []model.Change, before func(model.Change) error) error {
	return s.change(ctx, txn, func(st *state) error {
		for i, ch := range changes {
			var err error
			if before != nil {
				err = before(ch)
			}
			if err == nil {
				err = st.apply(ch)
			}
			if err != nil {
				return fmt.Errorf("change %d of %d: %w", i+1, len(changes), err)
			}
		}
		st.setRevision(revision)
		return nil
	})
}

// change runs fn on the document in write transaction txn, under the
// write lock, and undoes what fn did if it fails.
func (s *Store) change(ctx context.Context, txn storage.Transaction, fn func(*state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := s.writeTxn(txn)
	if err != nil {
		return err
	}
	s.lock(t)
	mark := len(t.undo)
	if err := fn(s.st); err != nil {
		t.rollback(mark)
		return err
	}
	t.changed = true
	return nil
}

// rollback undoes the changes logged after the first mark entries.
func (t *txn) rollback(mark int) {
	for i := len(t.undo) - 1; i >= mark; i-- {
		t.undo[i]()
	}
	clear(t.undo[mark:])
	t.undo = t.undo[:mark]
}

// Read returns the value at path: below Root, materialized from the
// compact document (see the package documentation for what may be read);
// elsewhere, the inner store's. The caller owns a value read below Root.
func (s *Store) Read(ctx context.Context, txn storage.Transaction, path storage.Path) (any, error) {
	t, err := s.txnOf(txn)
	if err != nil {
		return nil, err
	}
	if len(path) == 0 {
		if !s.opts.WholeReads {
			return nil, wholeCollection(path)
		}
		v, err := s.inner.Read(ctx, t.inner, path)
		if err != nil {
			return nil, err
		}
		data, _ := v.(map[string]any)
		data = maps.Clone(data)
		if data == nil {
			data = map[string]any{}
		}
		data[Root] = s.st.document()
		return data, nil
	}
	if path[0] == Root {
		return s.st.read(path[1:], path, s.opts.WholeReads)
	}
	return s.inner.Read(ctx, t.inner, path)
}

func refusedWrite() error {
	return &storage.Error{Code: storage.InvalidPatchErr, Message: "relstore: " + Root + " is changed by Load and Apply, not by Write"}
}

// touchesRoot reports whether a write of value at path would write below
// Root.
func touchesRoot(path storage.Path, value any) bool {
	if len(path) > 0 {
		return path[0] == Root
	}
	m, ok := value.(map[string]any)
	_, has := m[Root]
	return !ok || has
}

// Write writes to the inner store; a write below Root is refused.
func (s *Store) Write(ctx context.Context, txn storage.Transaction, op storage.PatchOp, path storage.Path, value any) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	if touchesRoot(path, value) {
		return refusedWrite()
	}
	return s.inner.Write(ctx, t.inner, op, path, value)
}

// Commit ends a transaction. A write transaction's changes to the document
// become visible with the inner store's, at once; the triggers run before
// any reader sees them. When the string or list tables have grown enough
// since their last compaction, Commit compacts them (O(document), amortized
// over the growth) before it releases the write lock.
func (s *Store) Commit(ctx context.Context, txn storage.Transaction) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	if !t.write {
		t.stale = true
		err := s.inner.Commit(ctx, t.inner)
		s.mu.RUnlock()
		return err
	}
	s.committing = t
	err = s.inner.Commit(ctx, t.inner)
	s.committing = nil
	t.stale = true
	if t.locked {
		if err != nil {
			t.rollback(0) // the inner store has aborted: so does the document
		} else if s.st.str.compactDue() || s.st.lists.compactDue() {
			s.st.compact()
		}
		s.st.undo, t.undo = nil, nil
		s.mu.Unlock()
	}
	return err
}

// Abort ends a transaction, undoing its changes. Like the inner store's, it
// panics on a transaction that is not an open one of s.
func (s *Store) Abort(ctx context.Context, txn storage.Transaction) {
	t, err := s.txnOf(txn)
	if err != nil {
		panic(err)
	}
	t.stale = true
	if t.locked {
		t.rollback(0)
		s.st.undo, t.undo = nil, nil
		s.mu.Unlock()
	}
	s.inner.Abort(ctx, t.inner)
	if !t.write {
		s.mu.RUnlock()
	}
}

// Export writes the whole document under Root as JSON, equal to
// index.Build's document for the same data (keys sorted), without
// building it in memory: for bundles. txn may be any open transaction of
// s.
func (s *Store) Export(ctx context.Context, txn storage.Transaction, w io.Writer) error {
	if _, err := s.txnOf(txn); err != nil {
		return err
	}
	return s.st.export(w)
}

// Truncate delegates to the inner store; data files under Root (or at the
// data root) are refused: the document is loaded with Load.
func (s *Store) Truncate(ctx context.Context, txn storage.Transaction, params storage.TransactionParams, it storage.Iterator) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	return s.inner.Truncate(ctx, t.inner, params, refuseRoot{it})
}

// refuseRoot passes on an iterator's updates but fails on data below Root.
type refuseRoot struct{ storage.Iterator }

func (r refuseRoot) Next() (*storage.Update, error) {
	u, err := r.Iterator.Next()
	if err == nil && !u.IsPolicy && (len(u.Path) == 0 || u.Path[0] == Root) {
		return nil, refusedWrite()
	}
	return u, err
}

// Register registers a trigger with the inner store. Its OnCommit receives
// this store's transaction, and, when the transaction changed the
// document, a storage.DataEvent for Root (without the data: read it).
func (s *Store) Register(ctx context.Context, txn storage.Transaction, config storage.TriggerConfig) (storage.TriggerHandle, error) {
	t, err := s.txnOf(txn)
	if err != nil {
		return nil, err
	}
	onCommit := config.OnCommit
	config.OnCommit = func(ctx context.Context, _ storage.Transaction, event storage.TriggerEvent) {
		committing := s.committing
		if committing.changed {
			event.Data = append(slices.Clip(event.Data), storage.DataEvent{Path: storage.Path{Root}})
		}
		if onCommit != nil {
			onCommit(ctx, committing, event)
		}
	}
	h, err := s.inner.Register(ctx, t.inner, config)
	if err != nil {
		return nil, err
	}
	return handle{s: s, inner: h}, nil
}

// handle is a trigger registered through a Store.
type handle struct {
	s     *Store
	inner storage.TriggerHandle
}

// Unregister unregisters the trigger; txn must be a write transaction.
func (h handle) Unregister(ctx context.Context, txn storage.Transaction) {
	t, err := h.s.txnOf(txn)
	if err != nil {
		panic(err)
	}
	h.inner.Unregister(ctx, t.inner)
}

// ListPolicies lists the inner store's policies.
func (s *Store) ListPolicies(ctx context.Context, txn storage.Transaction) ([]string, error) {
	t, err := s.txnOf(txn)
	if err != nil {
		return nil, err
	}
	return s.inner.ListPolicies(ctx, t.inner)
}

// GetPolicy returns a policy of the inner store.
func (s *Store) GetPolicy(ctx context.Context, txn storage.Transaction, id string) ([]byte, error) {
	t, err := s.txnOf(txn)
	if err != nil {
		return nil, err
	}
	return s.inner.GetPolicy(ctx, t.inner, id)
}

// UpsertPolicy stores a policy in the inner store.
func (s *Store) UpsertPolicy(ctx context.Context, txn storage.Transaction, id string, bs []byte) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	return s.inner.UpsertPolicy(ctx, t.inner, id, bs)
}

// DeletePolicy deletes a policy of the inner store.
func (s *Store) DeletePolicy(ctx context.Context, txn storage.Transaction, id string) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	return s.inner.DeletePolicy(ctx, t.inner, id)
}

// MakeDir makes an object at path in the inner store. Below Root, where
// nothing is written, it succeeds only where the document has an object
// already.
func (s *Store) MakeDir(ctx context.Context, txn storage.Transaction, path storage.Path) error {
	t, err := s.txnOf(txn)
	if err != nil {
		return err
	}
	if len(path) == 0 || path[0] != Root {
		return storage.MakeDir(ctx, s.inner, t.inner, path)
	}
	v, err := s.st.read(path[1:], path, false)
	if _, isObj := v.(map[string]any); isObj || IsWholeCollection(err) {
		return nil // every whole collection is an object
	}
	return refusedWrite()
}

// NonEmpty reports, for the compiler's check that rules do not overlap
// data, whether a path holds data (storage.NonEmpty's contract): below
// Root from the document, elsewhere from the inner store.
func (s *Store) NonEmpty(ctx context.Context, txn storage.Transaction) func([]string) (bool, error) {
	t, err := s.txnOf(txn)
	if err != nil {
		return func([]string) (bool, error) { return false, err }
	}
	inner := storage.NonEmpty(ctx, s.inner, t.inner)
	return func(path []string) (bool, error) {
		if len(path) == 0 || path[0] != Root {
			return inner(path)
		}
		for i := len(path); i >= 1; i-- {
			v, err := s.st.read(path[1:i], storage.Path(path[:i]), false)
			switch {
			case IsWholeCollection(err):
				return i == len(path), nil // an object: empty below only if it is a prefix
			case storage.IsNotFound(err):
				continue
			case err != nil:
				return false, err
			}
			if _, isObj := v.(map[string]any); isObj && i < len(path) {
				return false, nil
			}
			return true, nil
		}
		return false, nil
	}
}

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.MakeDirer  = (*Store)(nil)
	_ storage.NonEmptyer = (*Store)(nil)
)
