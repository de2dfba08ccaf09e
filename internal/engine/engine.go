// Package engine evaluates Trellis's Rego policies in an embedded OPA runtime
// against a store holding the data document: the server's, a dataset in
// the compact store of package relstore; an edge's, a bundle's document in
// OPA's in-memory store. It owns the store and the prepared queries; it
// decides nothing itself: every answer is the value of a policy rule.
package engine

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
	"github.com/trellis-authz/trellis/policies"
)

// Entrypoint names a decision rule of package trellis.
type Entrypoint string

// The decision entrypoints (see policies/trellis).
const (
	Check                Entrypoint = "check"
	Batch                Entrypoint = "batch"
	EffectivePermissions Entrypoint = "effective_permissions"
	ListResources        Entrypoint = "list_resources"
	ListMemberships      Entrypoint = "list_memberships"
)

var entrypoints = []Entrypoint{Check, Batch, EffectivePermissions, ListResources, ListMemberships}

// ErrUndefined is returned when a query has no result. For a decision
// entrypoint it means the policy could not decide, which callers must treat
// as a deny.
var ErrUndefined = errors.New("engine: policy result is undefined")

// ErrStale is returned by WaitFor when the wanted revision was not applied in
// time.
var ErrStale = errors.New("engine: revision not applied in time")

// HostRoot is the data document in which the engine tells the policies
// that its host verifies tokens (data.trellis_host.verifies_tokens).
const HostRoot = "trellis_host"

// maxDataQueries bounds the cache of prepared ad-hoc Data API queries.
const maxDataQueries = 256

// ErrDocumentEngine is returned by Apply, Quarantine and PutOrganization on
// an engine made with Options.Documents, and ErrDatasetEngine by Load on one
// made without.
var (
	ErrDocumentEngine = errors.New("engine: an engine of a data document (Options.Documents) takes only whole loads")
	ErrDatasetEngine  = errors.New("engine: an engine of datasets loads them with LoadDataset, not a data document")
)

// Options configures an Engine. Zero fields get defaults.
type Options struct {
	// Modules are the Rego modules by file name (required).
	Modules map[string]string
	// Documents makes an engine of a generic data document, a bundle's (an
	// edge's): OPA's in-memory store holds it, Load or LoadDataset replace
	// it whole, and nothing changes it in place. Without it the engine
	// holds a dataset in the compact store of package relstore (the
	// server's): LoadDataset loads it, Apply, Quarantine and
	// PutOrganization change it, and Load is refused.
	Documents bool
	// Budget bounds the time of one evaluation when the modules hold
	// extensions (policies.Extensions): past it the evaluation fails, and
	// so the decision denies. 0: DefaultBudget.
	Budget time.Duration
	// Holds, when set, names the organizations the engine serves (a
	// shard's, package shard): LoadDataset and LoadEarly keep only theirs
	// and the shared data, and Apply and PutOrganization leave the others
	// out (shard.go). nil: every organization.
	Holds func(org string) bool
}

// DefaultBudget is the default of Options.Budget.
const DefaultBudget = time.Second

// Engine evaluates policies. It is safe for concurrent use: decisions run
// in parallel; a write waits for in-flight decisions and blocks new ones
// while it changes the store (one writer at a time).
type Engine struct {
	store  storage.Store
	rel    *relstore.Store       // the store, unless Options.Documents
	holds  func(org string) bool // Options.Holds
	budget time.Duration         // Options.Budget
	policy atomic.Pointer[policySet]

	// writeMu makes each Load or Apply, from its store transaction to the
	// publication of its generations and revision, one step.
	writeMu  sync.Mutex
	gens     Generations
	revision atomic.Int64
	loaded   atomic.Bool
	changed  atomic.Pointer[chan struct{}] // closed and replaced on every load
}

// policySet is one compiled set of policies and its prepared queries.
// SetModules replaces it whole; an evaluation uses the one it started with.
type policySet struct {
	compiler *ast.Compiler
	prepared map[Entrypoint]rego.PreparedEvalQuery
	revision string // PolicyRevision
	// budget is Options.Budget when extensions are loaded, else 0: no
	// bound. With extensions, builtin errors fail the evaluation too
	// (rego.StrictBuiltinErrors), so a broken extension denies instead of
	// being undefined, which would let the allow through.
	budget time.Duration
	// extensions are the extension modules, by file.
	extensions map[string]*ast.Module
	// contextFree is contextFree(extensions): see ContextFree.
	contextFree bool

	dataMu      sync.Mutex
	dataQueries map[string]rego.PreparedEvalQuery
}

// Result is the answer of one evaluation.
type Result struct {
	// Value is the JSON-shaped value of the rule (map[string]any, []any,
	// string, json.Number, bool or nil).
	Value any
	// Revision is the data revision the answer was evaluated at.
	Revision int64
}

// New compiles the modules and prepares the decision queries over an empty
// data document (revision 0). Call Load to give it data.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if len(opts.Modules) == 0 {
		return nil, errors.New("engine: no policy modules")
	}
	e := &Engine{budget: cmp.Or(opts.Budget, DefaultBudget), holds: opts.Holds}
	if opts.Documents {
		// Plain Go values, not AST: a bundle's document reaches the
		// policies as lazily converted objects, and converting it whole to
		// AST at activation would double the edge's memory for a while.
		e.store = inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(false))
	} else {
		// An empty dataset at revision 0.
		e.rel = relstore.New(relstore.Options{})
		e.store = e.rel
	}
	ch := make(chan struct{})
	e.changed.Store(&ch)
	// The Go host (package authz) verifies every token before it reaches the
	// policies, so it vouches for input.token here. Bundles never carry this
	// document: on a stock OPA edge the core rules ignore a claims object, and
	// only package trellis.edge, which verifies the raw JWT itself, vouches.
	host := map[string]any{"verifies_tokens": true}
	err := storage.Txn(ctx, e.store, storage.WriteParams, func(txn storage.Transaction) error {
		return e.store.Write(ctx, txn, storage.AddOp, storage.Path{HostRoot}, host)
	})
	if err != nil {
		return nil, fmt.Errorf("engine: write %s: %w", HostRoot, err)
	}
	if e.rel == nil {
		if err := e.write(ctx, map[string]any{"revision": json.Number("0")}); err != nil {
			return nil, err
		}
	}
	e.publish(0, index.Scope{Shared: true})
	ps, err := e.compilePolicies(ctx, opts.Modules)
	if err != nil {
		return nil, err
	}
	e.policy.Store(ps)
	return e, nil
}

// compilePolicies compiles modules and prepares the decision queries.
func (e *Engine) compilePolicies(ctx context.Context, modules map[string]string) (*policySet, error) {
	compiler, err := compile(modules)
	if err != nil {
		return nil, err
	}
	ps := &policySet{
		compiler:    compiler,
		prepared:    map[Entrypoint]rego.PreparedEvalQuery{},
		revision:    modulesDigest(modules),
		extensions:  extensionFiles(compiler),
		dataQueries: map[string]rego.PreparedEvalQuery{},
	}
	if len(ps.extensions) > 0 {
		ps.budget = e.budget
	}
	ps.contextFree = contextFree(ps.extensions)
	for _, ep := range entrypoints {
		pq, err := e.prepare(ctx, ps, "data.trellis."+string(ep))
		if err != nil {
			return nil, fmt.Errorf("engine: prepare %s: %w", ep, err)
		}
		ps.prepared[ep] = pq
	}
	return ps, nil
}

// SetModules replaces the policies with modules, atomically: an evaluation
// uses the set it began with, and one that begins once SetModules returns
// uses the new set. Modules that do not compile leave the current set in
// place. Every generation moves (as on a whole load): no answer cached
// for the old policies stays valid.
func (e *Engine) SetModules(ctx context.Context, modules map[string]string) error {
	if len(modules) == 0 {
		return errors.New("engine: no policy modules")
	}
	ps, err := e.compilePolicies(ctx, modules)
	if err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	// Every generation moves before the new policies are in use, as well
	// as after: an answer cached under the old ones, stamped before the
	// swap, is then no longer valid once an evaluation can see the new
	// ones, so a batch never joins the two (authz.Service.CheckBatch
	// validates its cached answers after evaluating the rest).
	e.gens.publish(index.Scope{Shared: true})
	e.policy.Store(ps)
	e.publish(e.revision.Load(), index.Scope{Shared: true})
	return nil
}

// PolicyRevision identifies the policies in use: a digest of the modules'
// names and texts.
func (e *Engine) PolicyRevision() string { return e.policy.Load().revision }

// modulesDigest is the first 12 hex digits of the SHA-256 of the modules,
// in name order.
func modulesDigest(modules map[string]string) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(name), name, len(modules[name]), modules[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func compile(modules map[string]string) (*ast.Compiler, error) {
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	sort.Strings(names)
	parsed := make(map[string]*ast.Module, len(modules))
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, fmt.Errorf("engine: parse %s: %w", name, err)
		}
		parsed[name] = m
	}
	c := ast.NewCompiler().WithEnablePrintStatements(false)
	if c.Compile(parsed); c.Failed() {
		return nil, fmt.Errorf("engine: compile policies: %w", c.Errors)
	}
	return c, nil
}

// extensionFiles maps each compiled extension module's file to the name
// of its extension (package trellis.ext.<name>[.…]).
func extensionFiles(c *ast.Compiler) map[string]*ast.Module {
	files := map[string]*ast.Module{}
	for file, m := range c.Modules {
		if strings.HasPrefix(strings.TrimPrefix(m.Package.Path.String(), "data."), policies.ExtensionPrefix) {
			files[file] = m
		}
	}
	return files
}

// ruleAt names the rule of module m that row is in: the last one to begin
// at or above it (data.trellis.ext.<name>.deny, or a helper rule).
func ruleAt(m *ast.Module, row int) string {
	var at *ast.Rule
	for _, r := range m.Rules {
		if r.Location != nil && r.Location.Row <= row && (at == nil || r.Location.Row > at.Location.Row) {
			at = r
		}
	}
	if at == nil {
		return m.Package.Path.String()
	}
	return m.Package.Path.String() + "." + at.Head.Ref().String()
}

// ExtensionError is an evaluation that failed for an extension: a runtime
// error in one of its modules (a builtin error, a conflict), or, while
// extensions are loaded, an evaluation past the time budget. Either way it
// is no allow: package authz answers a check that meets one as denied,
// with the rule in the reason.
type ExtensionError struct {
	// Rule is the failing rule of an extension (data.trellis.ext.<name>.deny,
	// deny_grant or a helper rule of the module); after the budget ran out,
	// the extensions' root data.trellis.ext.
	Rule string
	// Location is file:row:col of the expression that failed, if known.
	Location string
	// Budget is the time budget when it ran out, else 0.
	Budget time.Duration
	Err    error
}

func (e *ExtensionError) Error() string {
	if e.Budget > 0 {
		return fmt.Sprintf("extensions: the evaluation took longer than its budget of %s", e.Budget)
	}
	at := ""
	if e.Location != "" {
		at = " at " + e.Location
	}
	return fmt.Sprintf("extension %s failed%s: %v", e.Rule, at, e.Err)
}

func (e *ExtensionError) Unwrap() error { return e.Err }

// extensionError returns err as an *ExtensionError if an extension caused
// it (see there), else nil; overBudget tells that the evaluation was
// cancelled for its time budget, not by its caller.
func (ps *policySet) extensionError(err error, overBudget bool) *ExtensionError {
	var te *topdown.Error
	if ps.budget == 0 || !errors.As(err, &te) {
		return nil
	}
	if te.Code == topdown.CancelErr && overBudget {
		return &ExtensionError{Rule: "data." + strings.TrimSuffix(policies.ExtensionPrefix, "."), Budget: ps.budget, Err: err}
	}
	if te.Location == nil {
		return nil
	}
	m, ok := ps.extensions[te.Location.File]
	if !ok {
		return nil
	}
	return &ExtensionError{Rule: ruleAt(m, te.Location.Row), Location: fmt.Sprintf("%s:%d:%d", te.Location.File, te.Location.Row, te.Location.Col), Err: errors.New(te.Message)}
}

// Extended reports whether the policies hold extensions: they see the
// whole token and the request's context.
func (e *Engine) Extended() bool { return len(e.policy.Load().extensions) > 0 }

// ContextFree reports whether an answer depends only on the check, its
// subject and token, and the data they name: true without extensions, and
// with extensions that read neither the request's context, nor the clock
// or another nondeterministic builtin, nor data but their own (attributes
// come in their input). Package authz caches answers only then.
func (e *Engine) ContextFree() bool { return e.policy.Load().contextFree }

// prepare prepares the query for ref. eval reads the revision in the same
// store transaction, so an answer and its revision always agree.
func (e *Engine) prepare(ctx context.Context, ps *policySet, ref string) (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query(ref),
		rego.Compiler(ps.compiler),
		rego.Store(e.store),
		rego.GenerateJSON(copyResult),
		rego.StrictBuiltinErrors(ps.budget > 0),
	).PrepareForEval(ctx)
}

// copyResult converts a result to JSON values, copying any object read
// straight from the store: those are the store's own maps, which Apply
// changes in place once the read transaction is over.
func copyResult(t *ast.Term, _ *rego.EvalContext) (any, error) {
	return ast.JSONWithOpt(t.Value, ast.JSONOpt{CopyMaps: true})
}

// Load replaces the whole data document with doc, an AST object (a
// bundle's data), and makes its revision current. The engine keeps a
// converted copy; doc stays the caller's. Only an engine made with
// Options.Documents takes it (else ErrDatasetEngine).
func (e *Engine) Load(ctx context.Context, doc ast.Object) error {
	if e.rel != nil {
		return ErrDatasetEngine
	}
	revision, err := index.Revision(doc)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	// Each resource brings its id and external id; the rest is shared.
	n := 0
	if t := doc.Get(ast.InternedTerm("resources")); t != nil {
		if res, ok := t.Value.(ast.Object); ok {
			n = 2 * res.Len()
		}
	}
	native, err := newPlainer(n).value(doc)
	if err != nil {
		return fmt.Errorf("engine: convert data: %w", err)
	}
	return e.load(ctx, native, revision)
}

// LoadDataset replaces the data with ds's, a full load at ds.Revision:
// straight into the compact store, or, for an engine of Options.Documents,
// as the document package index builds. A dataset the store refuses
// (index.Build's refusals, relstore.ErrInvariant) leaves the data as it
// was, still served.
func (e *Engine) LoadDataset(ctx context.Context, ds *model.Dataset) error {
	p, err := e.build(ds)
	if err != nil {
		return err
	}
	return e.loadPrepared(ctx, p)
}

// LoadEarly starts building the store of ds, which is still being
// validated, and returns the load to call once it is: load(ctx, final) is
// LoadDataset(ctx, final), but swaps in the store already built when final
// is ds (validation kept it as it was: on two cores the build and the
// validation take the time of the longer). A final that validation changed
// (a quarantine) is built anew. Call load once; until then the engine is
// as it was.
func (e *Engine) LoadEarly(ds *model.Dataset) (load func(ctx context.Context, final *model.Dataset) error) {
	var (
		p    *prepared
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		p, err = e.build(ds)
	}()
	return func(ctx context.Context, final *model.Dataset) error {
		<-done
		switch {
		case final != ds:
			return e.LoadDataset(ctx, final)
		case err != nil:
			return err
		}
		return e.loadPrepared(ctx, p)
	}
}

// prepared is a dataset built for the engine to load.
type prepared struct {
	revision int64
	built    *relstore.Built // for the compact store
	doc      map[string]any  // for an engine of Options.Documents
}

// build builds what loadPrepared swaps in for ds (of the organizations
// the engine holds). It takes no lock and leaves the engine as it is.
func (e *Engine) build(ds *model.Dataset) (*prepared, error) {
	if e.holds != nil {
		ds = ds.Only(e.holds)
	}
	p := &prepared{revision: ds.Revision}
	var err error
	if e.rel == nil {
		p.doc, err = index.Build(ds)
	} else {
		p.built, err = relstore.Build(ds)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return p, nil
}

// loadPrepared replaces the data with p. On error the data is as it was.
func (e *Engine) loadPrepared(ctx context.Context, p *prepared) error {
	if e.rel == nil {
		return e.load(ctx, p.doc, p.revision)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err := storage.Txn(ctx, e.store, storage.WriteParams, func(txn storage.Transaction) error {
		return e.rel.LoadBuilt(ctx, txn, p.built)
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	e.loaded.Store(true)
	e.publish(p.revision, index.Scope{Shared: true})
	return nil
}

// load replaces the document of an engine of Options.Documents with doc,
// plain values the store keeps as they are, and publishes revision.
func (e *Engine) load(ctx context.Context, doc any, revision int64) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.write(ctx, doc); err != nil {
		return err
	}
	e.loaded.Store(true)
	e.publish(revision, index.Scope{Shared: true})
	return nil
}

// publish makes a committed change visible to the cache and WaitFor: it
// moves the generations of the change's scope, then the revision (in this
// order; see Generations), and wakes WaitFor callers. The caller holds
// writeMu.
func (e *Engine) publish(rev int64, sc index.Scope) {
	e.gens.publish(sc)
	e.revision.Store(rev)
	ch := make(chan struct{})
	close(*e.changed.Swap(&ch))
}

// write replaces the document with doc, in plain values.
func (e *Engine) write(ctx context.Context, doc any) error {
	err := storage.Txn(ctx, e.store, storage.WriteParams, func(txn storage.Transaction) error {
		return e.store.Write(ctx, txn, storage.AddOp, storage.Path{index.Root}, doc)
	})
	if err != nil {
		return fmt.Errorf("engine: write data: %w", err)
	}
	return nil
}

// Loaded reports whether data has been loaded at least once.
func (e *Engine) Loaded() bool { return e.loaded.Load() }

// Revision returns the revision of the data currently in the store.
func (e *Engine) Revision() int64 { return e.revision.Load() }

// WaitFor blocks until the store holds revision rev or later, ctx ends, or
// timeout passes (ErrStale).
func (e *Engine) WaitFor(ctx context.Context, rev int64, timeout time.Duration) error {
	if e.revision.Load() >= rev {
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ch := *e.changed.Load()
		if e.revision.Load() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return ErrStale
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Decide evaluates a decision entrypoint with input (an AST object built by
// the caller). It returns ErrUndefined when the rule has no value; any error
// means "no decision", never an allow.
func (e *Engine) Decide(ctx context.Context, ep Entrypoint, input ast.Value) (Result, error) {
	ps := e.policy.Load()
	pq, err := ps.query(ep)
	if err != nil {
		return Result{}, err
	}
	return e.eval(ctx, ps, pq, input)
}

// query returns the prepared query of entrypoint ep.
func (ps *policySet) query(ep Entrypoint) (rego.PreparedEvalQuery, error) {
	pq, ok := ps.prepared[ep]
	if !ok {
		return rego.PreparedEvalQuery{}, fmt.Errorf("engine: unknown entrypoint %q", ep)
	}
	return pq, nil
}

// Data evaluates data.<path> (path segments separated by "/") for the OPA
// Data API. Prepared queries are cached per path, up to a bound.
func (e *Engine) Data(ctx context.Context, path string, input ast.Value) (Result, error) {
	ref, err := dataRef(path)
	if err != nil {
		return Result{}, err
	}
	ps := e.policy.Load()
	ps.dataMu.Lock()
	pq, ok := ps.dataQueries[ref]
	ps.dataMu.Unlock()
	if !ok {
		if pq, err = e.prepare(ctx, ps, ref); err != nil {
			return Result{}, fmt.Errorf("engine: prepare %s: %w", ref, err)
		}
		ps.dataMu.Lock()
		if len(ps.dataQueries) < maxDataQueries {
			ps.dataQueries[ref] = pq
		}
		ps.dataMu.Unlock()
	}
	return e.eval(ctx, ps, pq, input)
}

func dataRef(path string) (string, error) {
	ref := ast.DefaultRootRef.Copy()
	for _, seg := range splitPath(path) {
		ref = append(ref, ast.StringTerm(seg))
	}
	if _, err := ast.ParseRef(ref.String()); err != nil {
		return "", fmt.Errorf("engine: bad data path %q: %w", path, err)
	}
	return ref.String(), nil
}

func splitPath(path string) []string {
	var segs []string
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			if i > start {
				segs = append(segs, path[start:i])
			}
			start = i + 1
		}
	}
	return segs
}

func (e *Engine) eval(ctx context.Context, ps *policySet, pq rego.PreparedEvalQuery, input ast.Value) (Result, error) {
	txn, err := e.store.NewTransaction(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("engine: open transaction: %w", err)
	}
	defer e.store.Abort(ctx, txn)
	return e.evalIn(ctx, ps, pq, txn, e.revisionIn(ctx, txn), input)
}

// Session calls fn with a decide function that evaluates entrypoints in
// one store transaction, with one policy set: every result fn gets
// reflects the same revision, whatever commits meanwhile. Writes wait for
// fn to return; fn must not open transactions of its own (a read lock
// taken again while a write waits would never be granted).
func (e *Engine) Session(ctx context.Context, fn func(decide func(Entrypoint, ast.Value) (Result, error)) error) error {
	ps := e.policy.Load()
	txn, err := e.store.NewTransaction(ctx)
	if err != nil {
		return fmt.Errorf("engine: open transaction: %w", err)
	}
	defer e.store.Abort(ctx, txn)
	rev := e.revisionIn(ctx, txn)
	return fn(func(ep Entrypoint, input ast.Value) (Result, error) {
		pq, err := ps.query(ep)
		if err != nil {
			return Result{}, err
		}
		return e.evalIn(ctx, ps, pq, txn, rev, input)
	})
}

// revisionIn reads the data revision in txn; 0 without one.
func (e *Engine) revisionIn(ctx context.Context, txn storage.Transaction) int64 {
	var rev int64
	if v, err := e.store.Read(ctx, txn, revisionPath); err == nil {
		switch n := v.(type) {
		case ast.Number:
			rev, _ = n.Int64()
		case json.Number:
			rev, _ = n.Int64()
		case int64:
			rev = n
		}
	}
	return rev
}

// evalIn evaluates pq on input in txn, whose data is at revision rev.
// The evaluation stops when ctx ends or, with extensions loaded, when
// the time budget runs out: a cancel of its own, which, unlike a context
// of its own, costs OPA no goroutine per evaluation.
func (e *Engine) evalIn(ctx context.Context, ps *policySet, pq rego.PreparedEvalQuery, txn storage.Transaction, rev int64, input ast.Value) (Result, error) {
	cancel := topdown.NewCancel()
	defer context.AfterFunc(ctx, cancel.Cancel)()
	var budget *time.Timer
	if ps.budget > 0 {
		budget = time.AfterFunc(ps.budget, cancel.Cancel)
	}
	opts := []rego.EvalOption{rego.EvalTransaction(txn), rego.EvalExternalCancel(cancel)}
	if input != nil {
		opts = append(opts, rego.EvalParsedInput(input))
	}
	rs, err := pq.Eval(ctx, opts...)
	overBudget := budget != nil && !budget.Stop() // Stop is false once it fired
	if err != nil {
		if xe := ps.extensionError(err, ctx.Err() == nil && overBudget); xe != nil {
			return Result{}, xe
		}
		return Result{}, fmt.Errorf("engine: evaluate: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Result{}, ErrUndefined
	}
	return Result{Value: rs[0].Expressions[0].Value, Revision: rev}, nil
}

var revisionPath = storage.Path{index.Root, "revision"}

// Apply applies changes to the data, in order, in one store transaction,
// and makes revision current: decisions see all of the changes or none
// (relstore.Store.Apply: each costs O(what it changes)). It then moves the
// generations of what the changes affect (index.ScopeOf, read before each
// change is applied), and only those: a revision without changes moves
// none. On error nothing is applied; index.ErrIncomplete or
// relstore.ErrInvariant (wrapped) mean the caller should reload the whole
// dataset, a *model.RuleError (wrapped) names the organizations whose data
// a change would break (index.Patch's errors).
func (e *Engine) Apply(ctx context.Context, revision int64, changes []model.Change) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var sc index.Scope
	err := e.change(ctx, func(txn storage.Transaction) error {
		view := index.TxnStore{Ctx: ctx, Store: e.store, Txn: txn}
		changes, err := e.held(view, changes)
		if err != nil {
			return err
		}
		return e.rel.ApplyWith(ctx, txn, revision, changes, func(ch model.Change) error {
			chs, err := index.ScopeOf(view, ch)
			sc.Add(chs)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("engine: apply revision %d: %w", revision, err)
	}
	e.publish(revision, sc)
	return nil
}

// Quarantine takes organizations out of service at the current revision:
// each one's entries leave the data, which keeps only what recognises
// requests about it, so that its decisions answer organization_unavailable
// (relstore.Store.RemoveOrganization, PutQuarantine). It returns each
// organization's quarantine with the ids of the resources and memberships
// it held; its Problems are the caller's to fill in. Every cached answer is
// evicted; on error nothing changes.
func (e *Engine) Quarantine(ctx context.Context, orgs []string) ([]model.Quarantine, error) {
	qs := make([]model.Quarantine, len(orgs))
	err := e.writeOrganizations(ctx, func(txn storage.Transaction) error {
		for i, org := range orgs {
			resources, memberships, err := e.rel.RemoveOrganization(ctx, txn, org)
			if err != nil {
				return err
			}
			qs[i] = model.Quarantine{Organization: org, Resources: resources, Memberships: memberships}
			if err := e.rel.PutQuarantine(ctx, txn, qs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: quarantine %v: %w", orgs, err)
	}
	return qs, nil
}

// PutOrganization replaces organization org's part of the data with what
// part holds of it: part is a dataset holding that organization alone,
// with the data every organization shares, as model.Dataset.Isolate
// returns it. If part quarantines org, only the ids that recognise requests
// about it are kept; if part does not hold it, it leaves the data. The
// shared data of part is not written: it must equal the store's. The
// revision stays, every cached answer is evicted; on error nothing changes.
func (e *Engine) PutOrganization(ctx context.Context, org string, part *model.Dataset) error {
	if e.holds != nil && !e.holds(org) {
		return nil // another shard's
	}
	q := part.QuarantineOf(org)
	err := e.writeOrganizations(ctx, func(txn storage.Transaction) error {
		if _, _, err := e.rel.RemoveOrganization(ctx, txn, org); err != nil {
			return err
		}
		if q != nil {
			return e.rel.PutQuarantine(ctx, txn, *q)
		}
		return e.rel.MergeOrganization(ctx, txn, org, part)
	})
	if err != nil {
		return fmt.Errorf("engine: put organization %s: %w", org, err)
	}
	return nil
}

// writeOrganizations runs write in one store write transaction and
// publishes the result at the current revision. It moves the shared
// generation, so every cached answer is evicted: a quarantine changes the
// answers of every subject and resource of its organization, and both
// happen rarely enough that a finer scope is not worth its argument.
func (e *Engine) writeOrganizations(ctx context.Context, write func(storage.Transaction) error) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.change(ctx, write); err != nil {
		return err
	}
	e.publish(e.revision.Load(), index.Scope{Shared: true})
	return nil
}

// change runs write in one write transaction of the compact store
// (ErrDocumentEngine without one). The caller holds writeMu.
func (e *Engine) change(ctx context.Context, write func(storage.Transaction) error) error {
	if e.rel == nil {
		return ErrDocumentEngine
	}
	return storage.Txn(ctx, e.store, storage.WriteParams, write)
}

// Document returns a copy of the whole data document at one revision, as
// package index builds it; the caller owns it. It is O(document size):
// for bundles.
func (e *Engine) Document(ctx context.Context) (ast.Value, error) {
	var doc ast.Value
	err := storage.Txn(ctx, e.store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		if e.rel != nil {
			var buf bytes.Buffer
			if err := e.rel.Export(ctx, txn, &buf); err != nil {
				return err
			}
			var err error
			doc, err = ast.ValueFromReader(&buf)
			return err
		}
		v, err := e.store.Read(ctx, txn, storage.Path{index.Root})
		if err != nil {
			return err
		}
		doc, err = ast.InterfaceToValue(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: read data: %w", err)
	}
	return doc, nil
}
