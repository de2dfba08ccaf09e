package engine_test

// Benchmarks on the "M" tier of package gen (seed 1: ~1,000,000 resources,
// ~1,000,000 assignments, 10,000 organizations, depth 5), run by `make bench`;
// TRELLIS_BENCH_TIER=L runs them on tier L instead (10,000,000 resources,
// depth 6: about 16 GiB of memory).
//
// The dataset and the loaded engine are built lazily, once per process, by
// the first benchmark that needs them: `go test ./...` without -bench never
// builds them.
//
// BenchmarkDecide runs the OPA floor first, a one-rule prepared query on a
// store configured like the engine's, and reports every other sub-benchmark
// as a multiple of it (unit "x-floor"). The ratio is only meaningful when the
// floor ran earlier in the same process, on the same machine and heap: run
// the whole of BenchmarkDecide, not one sub-benchmark. With -bench selecting
// a single sub-benchmark the ratio is simply not reported.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// What the decision benchmarks ask about: view of the deepest type.
const (
	benchPerm     = "document:view"
	benchLeafType = "document"
	benchBatch    = 100
	benchPage     = 1000
)

// benchTier is the tier of package gen the benchmarks run on.
var benchTier = cmp.Or(os.Getenv("TRELLIS_BENCH_TIER"), "M")

// benchStore is the engine loaded with gen.Shared(benchTier) and what to ask it.
var benchStore struct {
	once sync.Once
	e    *engine.Engine
	fx   *benchFixture
	err  error
}

func benchEngine(tb testing.TB) (*engine.Engine, *benchFixture) {
	tb.Helper()
	ds := gen.Shared(benchTier)
	benchStore.once.Do(func() {
		ctx := context.Background()
		e, err := benchLoadEngine(ctx, ds)
		if err != nil {
			benchStore.err = err
			return
		}
		benchStore.e, benchStore.fx, benchStore.err = e, findBenchFixture(ds), nil
		if benchStore.fx.membership == "" || benchStore.fx.listMembership == "" {
			benchStore.err = fmt.Errorf("no benchmark fixture in the generated data: %+v", *benchStore.fx)
		}
	})
	if benchStore.err != nil {
		tb.Fatal(benchStore.err)
	}
	return benchStore.e, benchStore.fx
}

func benchLoadEngine(ctx context.Context, ds *model.Dataset) (*engine.Engine, error) {
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		return nil, err
	}
	if err := e.LoadDataset(ctx, ds); err != nil {
		return nil, err
	}
	return e, nil
}

// benchDocuments is the tier M dataset in an engine of Options.Documents,
// built once per process by the first benchmark that needs it.
var benchDocuments struct {
	once sync.Once
	e    *engine.Engine
	err  error
}

func benchDocumentsEngine(tb testing.TB) *engine.Engine {
	tb.Helper()
	benchDocuments.once.Do(func() {
		ctx := context.Background()
		e, err := engine.New(ctx, engine.Options{Modules: policies.Modules(), Documents: true})
		if err == nil {
			err = e.LoadDataset(ctx, gen.Shared(benchTier))
		}
		benchDocuments.e, benchDocuments.err = e, err
	})
	if benchDocuments.err != nil {
		tb.Fatal(benchDocuments.err)
	}
	return benchDocuments.e
}

// BenchmarkStoreBuild reports the cost of turning the dataset into a loaded
// store (engine.LoadDataset: the compact store, relstore), in seconds
// ("s-build"), the heap the store keeps per resource ("B/resource") and
// its live heap objects ("live-objects"): the HeapAlloc and HeapObjects
// differences, after a forced GC on both sides, between before the build
// and after the load, while the engine is still reachable. The dataset
// itself is generated beforehand and is not counted. One build takes
// seconds, so b.N stays 1 at the default -benchtime.
func BenchmarkStoreBuild(b *testing.B) {
	ds := gen.Shared(benchTier)
	var secs, perResource, objects float64
	for range b.N {
		secs, perResource, objects = benchMeasureStoreBuild(b, ds)
	}
	b.ReportMetric(secs, "s-build")
	b.ReportMetric(perResource, "B/resource")
	b.ReportMetric(objects, "live-objects")
}

func benchMeasureStoreBuild(b *testing.B, ds *model.Dataset) (secs, perResource, objects float64) {
	ctx := context.Background()
	b.StopTimer()
	// engine.New compiles the policies; it is not part of the store build.
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		b.Fatal(err)
	}
	before, beforeObjects := benchHeap()
	b.StartTimer()

	start := time.Now()
	if err := e.LoadDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	secs = time.Since(start).Seconds()

	b.StopTimer()
	after, afterObjects := benchHeap()
	runtime.KeepAlive(e)
	b.StartTimer()
	return secs, (float64(after) - float64(before)) / float64(len(ds.Resources)), float64(afterObjects) - float64(beforeObjects)
}

// benchHeap is the live heap, bytes and objects, after a forced GC.
func benchHeap() (bytes, objects uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapObjects
}

// benchFloorNs is the ns/op of the last BenchmarkDecide/floor run in this
// process; zero until it has run.
var benchFloorNs float64

// BenchmarkDecide measures the decision entrypoints on the loaded store,
// each against the OPA floor measured just before in the same run.
// Inputs are built once, as ast values, outside the timed loop; the service
// layer's cost of building them is in internal/authz's benchmarks.
func BenchmarkDecide(b *testing.B) {
	e, fx := benchEngine(b)
	ctx := context.Background()

	b.Run("floor", func(b *testing.B) { benchFloorNs = enginetest.BenchFloor(b) })

	leaf := fx.leaves[0]
	b.Run("check_token", func(b *testing.B) {
		// A verified token of the leaf's organization carrying the
		// permission: the policy allows at the token layer.
		input := benchCheckInput(benchTokenSubject(fx.org, fx.membership), benchPerm, leaf)
		benchDecision(b, e, input, "token", "")
	})
	var coreNs float64
	b.Run("check_assignment_depth5", func(b *testing.B) {
		// The membership's only route to the leaf is a role on the
		// workspace three levels above it.
		input := benchCheckInput(benchMembershipSubject(fx.membership), benchPerm, leaf)
		coreNs = benchDecision(b, e, input, "assignment", fx.workspace)
	})
	b.Run("check_assignment_depth5_extension", func(b *testing.B) {
		// The same check with a one-rule extension loaded, which reads the
		// request's context and lets it through: what an extension costs
		// an uncached check (x-core: of check_assignment_depth5 just before).
		benchWithModules(b, e, `deny contains {"code": "blocked", "message": "blocked"} if input.context.blocked == true`)
		input := benchCheckInput(benchMembershipSubject(fx.membership), benchPerm, leaf)
		input.Insert(ast.InternedTerm("context"), ast.MustParseTerm(`{"blocked": false, "ip": "10.0.0.1"}`))
		if ns := benchDecision(b, e, input, "assignment", fx.workspace); coreNs > 0 {
			b.ReportMetric(ns/coreNs, "x-core")
		}
	})
	b.Run("check_assignment_depth5_documents", func(b *testing.B) {
		// The same check on an engine of Options.Documents (OPA's
		// in-memory store holding index.Build's document, as an edge
		// holds a bundle's): what the compact store costs per check.
		docs := benchDocumentsEngine(b)
		input := benchCheckInput(benchMembershipSubject(fx.membership), benchPerm, leaf)
		benchDecision(b, docs, input, "assignment", fx.workspace)
	})
	b.Run(fmt.Sprintf("batch_%d", benchBatch), func(b *testing.B) {
		checks := make([]*ast.Term, benchBatch)
		for i := range checks {
			checks[i] = ast.ObjectTerm(
				ast.Item(ast.InternedTerm("permission"), ast.StringTerm(benchPerm)),
				ast.Item(ast.InternedTerm("resource"), ast.ObjectTerm(ast.Item(ast.InternedTerm("id"), ast.StringTerm(fx.leaves[i])))),
			)
		}
		input := benchMembershipSubject(fx.membership)
		input.Insert(ast.InternedTerm("checks"), ast.ArrayTerm(checks...))
		res, err := e.Decide(ctx, engine.Batch, input)
		if err != nil {
			b.Fatal(err)
		}
		if got, _ := res.Value.([]any); len(got) != benchBatch {
			b.Fatalf("batch: got %d decisions, want %d", len(got), benchBatch)
		}
		for i, d := range res.Value.([]any) {
			if d, _ := d.(map[string]any); d["allowed"] != true {
				b.Fatalf("batch: check %d (%s) not allowed: %v", i, fx.leaves[i], d)
			}
		}
		ns := benchLoop(b, e, engine.Batch, input)
		perCheck := ns / benchBatch
		b.ReportMetric(perCheck, "ns/check")
		if benchFloorNs > 0 {
			b.ReportMetric(perCheck/benchFloorNs, "x-floor/check")
		}
	})
	b.Run(fmt.Sprintf("list_resources_%d", benchPage), func(b *testing.B) {
		// The smallest answer of at least benchPage ids in the data: a
		// page of benchPage, which the policy asks the store for in tree
		// order (tree_page), so what is not on the page costs nothing.
		input := benchMembershipSubject(fx.listMembership)
		input.Insert(ast.InternedTerm("permission"), ast.StringTerm(benchPerm))
		input.Insert(ast.InternedTerm("resource_type"), ast.StringTerm(benchLeafType))
		input.Insert(ast.InternedTerm("limit"), ast.IntNumberTerm(benchPage))
		res, err := e.Decide(ctx, engine.ListResources, input)
		if err != nil {
			b.Fatal(err)
		}
		page, _ := res.Value.(map[string]any)
		ids, _ := page["ids"].([]any)
		if len(ids) != benchPage || page["has_more"] != (fx.listAnswer > benchPage) {
			b.Fatalf("list_resources for %s: got %d ids (has_more %v), want %d of %d; reason %v",
				fx.listMembership, len(ids), page["has_more"], benchPage, fx.listAnswer, page["reason"])
		}
		ns := benchLoop(b, e, engine.ListResources, input)
		b.ReportMetric(float64(fx.listAnswer), "answer-ids")
		if benchFloorNs > 0 {
			b.ReportMetric(ns/benchFloorNs, "x-floor")
		}
	})
}

// benchWithModules loads, for the rest of b, the core's policies with the
// extension rules src (package trellis.ext.bench).
func benchWithModules(b *testing.B, e *engine.Engine, src string) {
	b.Helper()
	ctx := context.Background()
	if err := e.SetModules(ctx, enginetest.Extended("bench", src)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.SetModules(ctx, policies.Modules()); err != nil {
			b.Error(err)
		}
	})
}

// benchDecision checks that input gets an allow decided by decidedBy (on
// grantOn, when set), then times engine.Check on it and returns its ns/op.
func benchDecision(b *testing.B, e *engine.Engine, input ast.Object, decidedBy, grantOn string) float64 {
	b.Helper()
	res, err := e.Decide(context.Background(), engine.Check, input)
	if err != nil {
		b.Fatal(err)
	}
	d, _ := res.Value.(map[string]any)
	reason, _ := d["reason"].(map[string]any)
	grant, _ := reason["resource"].(map[string]any)
	if d["allowed"] != true || d["decided_by"] != decidedBy || (grantOn != "" && grant["id"] != grantOn) {
		b.Fatalf("check %v: got %v, want an allow by %s (on %q)", input, d, decidedBy, grantOn)
	}
	ns := benchLoop(b, e, engine.Check, input)
	if benchFloorNs > 0 {
		b.ReportMetric(ns/benchFloorNs, "x-floor")
	}
	return ns
}

// benchLoop times ep on input and returns the measured ns/op.
func benchLoop(b *testing.B, e *engine.Engine, ep engine.Entrypoint, input ast.Value) float64 {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := e.Decide(ctx, ep, input); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(n)
}

func benchMembershipSubject(om string) ast.Object {
	return ast.NewObject(ast.Item(ast.InternedTerm("subject"), ast.ObjectTerm(
		ast.Item(ast.InternedTerm("organization_membership_id"), ast.StringTerm(om)))))
}

// benchTokenSubject is the input the service layer builds from a verified token
// (internal/authz claimsTerm) whose organization permissions include
// benchPerm.
func benchTokenSubject(org, om string) ast.Object {
	perms := []*ast.Term{}
	for _, p := range []string{"organization:view", "workspace:view", "project:view", "folder:view", benchPerm} {
		perms = append(perms, ast.StringTerm(p))
	}
	return ast.NewObject(ast.Item(ast.InternedTerm("token"), ast.ObjectTerm(
		ast.Item(ast.InternedTerm("sub"), ast.StringTerm("user_bench")),
		ast.Item(ast.InternedTerm("org_id"), ast.StringTerm(org)),
		ast.Item(ast.InternedTerm("membership_id"), ast.StringTerm(om)),
		ast.Item(ast.InternedTerm("role"), ast.StringTerm("org-member")),
		ast.Item(ast.InternedTerm("roles"), ast.ArrayTerm(ast.StringTerm("org-member"))),
		ast.Item(ast.InternedTerm("permissions"), ast.ArrayTerm(perms...)),
	)))
}

func benchCheckInput(subject ast.Object, perm, rid string) ast.Object {
	in := subject.Copy()
	in.Insert(ast.InternedTerm("permission"), ast.StringTerm(perm))
	in.Insert(ast.InternedTerm("resource"), ast.ObjectTerm(ast.Item(ast.InternedTerm("id"), ast.StringTerm(rid))))
	return in
}

// benchFixture is what BenchmarkDecide asks about, found by walking the
// generated dataset in plain Go (and double-checked against the policy
// before timing).
type benchFixture struct {
	org        string
	membership string   // active; a role granting benchPerm on workspace
	workspace  string   // a workspace with ≥ benchBatch depth-5 leaves
	leaves     []string // depth-5 leaves under workspace, benchBatch of them

	listMembership string // active; smallest list answer ≥ benchPage ids
	listAnswer     int    // the size of that answer
}

func findBenchFixture(ds *model.Dataset) *benchFixture {
	fx := &benchFixture{}
	pos := make(map[string]int32, len(ds.Resources))
	for i, r := range ds.Resources {
		pos[r.ID] = int32(i)
	}
	parent := make([]int32, len(ds.Resources)) // -1: the organization root
	for i, r := range ds.Resources {
		parent[i] = -1
		if r.ParentID != "" {
			parent[i] = pos[r.ParentID]
		}
	}
	grantsPerm := map[string]bool{} // role key → has benchPerm
	for _, r := range ds.Roles {
		for _, p := range r.Permissions {
			if p == benchPerm {
				grantsPerm[r.Key()] = true
			}
		}
	}
	roleHas := func(org, slug string) bool {
		if k := model.RoleKey(org, slug); org != "" && grantsPerm[k] {
			return true
		}
		return grantsPerm[slug]
	}
	members := make(map[string]*model.Membership, len(ds.Memberships))
	for i := range ds.Memberships {
		members[ds.Memberships[i].ID] = &ds.Memberships[i]
	}

	// below[i] counts the leaves (resources of benchLeafType) in i's
	// subtree, i included; orgLeaves counts an organization's. depth5 lists,
	// per workspace, the leaves four levels below the root.
	below := make([]int32, len(ds.Resources))
	orgLeaves := map[string]int{}
	depth5 := map[int32][]int32{}
	for i, r := range ds.Resources {
		if r.Type != benchLeafType {
			continue
		}
		orgLeaves[r.OrganizationID]++
		chain := []int32{}
		for j := int32(i); j >= 0; j = parent[j] {
			below[j]++
			chain = append(chain, j)
		}
		if len(chain) == 4 {
			ws := chain[3]
			depth5[ws] = append(depth5[ws], int32(i))
		}
	}

	anchors := map[string][]int32{} // membership → resources granting benchPerm
	for _, a := range ds.Assignments {
		if m := members[a.MembershipID]; roleHas(m.OrganizationID, a.RoleSlug) {
			anchors[a.MembershipID] = append(anchors[a.MembershipID], pos[a.ResourceID])
		}
	}
	orgWide := func(m *model.Membership) bool {
		for _, slug := range m.RoleSlugs {
			if roleHas(m.OrganizationID, slug) {
				return true
			}
		}
		return false
	}

	// The check fixture: the first assignment, in data order, of a role
	// granting benchPerm on a workspace to an active membership whose
	// organization roles do not grant it, with at least benchBatch depth-5
	// leaves under the workspace on which the membership holds no other
	// grant: for those leaves the workspace is the only grant path.
	for _, a := range ds.Assignments {
		m := members[a.MembershipID]
		ws := pos[a.ResourceID]
		if m.Status != model.StatusActive || ds.Resources[ws].Type != "workspace" ||
			!roleHas(m.OrganizationID, a.RoleSlug) || orgWide(m) || len(depth5[ws]) < benchBatch {
			continue
		}
		other := map[int32]bool{}
		for _, i := range anchors[m.ID] {
			other[i] = i != ws
		}
		var leaves []string
		for _, l := range depth5[ws] {
			if !other[l] && !other[parent[l]] && !other[parent[parent[l]]] {
				leaves = append(leaves, ds.Resources[l].ID)
			}
		}
		if len(leaves) >= benchBatch {
			fx.org, fx.membership, fx.workspace, fx.leaves = m.OrganizationID, m.ID, a.ResourceID, leaves[:benchBatch]
			break
		}
	}

	// The list fixture: the active membership whose answer (leaves under
	// its anchors, or the whole organization for an organization role) is
	// the smallest of at least benchPage ids.
	for _, m := range ds.Memberships {
		if m.Status != model.StatusActive {
			continue
		}
		answer := 0
		if orgWide(&m) {
			answer = orgLeaves[m.OrganizationID]
		} else {
			set := map[int32]bool{}
			for _, i := range anchors[m.ID] {
				set[i] = true
			}
			for i := range set {
				nested := false
				for j := parent[i]; j >= 0 && !nested; j = parent[j] {
					nested = set[j]
				}
				if !nested {
					answer += int(below[i])
				}
			}
		}
		if answer >= benchPage && (fx.listMembership == "" || answer < fx.listAnswer) {
			fx.listMembership, fx.listAnswer = m.ID, answer
		}
	}
	return fx
}

// BenchmarkApply measures incremental changes on the 1,000,000-resource
// store, each one Apply call: adding or removing one assignment, and
// deleting a leaf resource (then putting it back). A change must cost
// O(what it touches), not O(size of the collections it touches) — which is
// why the engine's store holds plain Go values (see engine.New).
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	e, _ := benchEngine(b)
	ds := gen.Shared(benchTier)
	parents := make(map[string]bool, len(ds.Resources))
	for _, r := range ds.Resources {
		parents[r.ParentID] = true
	}
	var leaf model.Resource
	for _, r := range ds.Resources {
		if !parents[r.ID] && r.ParentID != "" {
			leaf = r
			break
		}
	}
	a := ds.Assignments[0]
	rev := e.Revision()
	run := func(b *testing.B, changes func(i int) []model.Change) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rev++
			if err := e.Apply(ctx, rev, changes(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("assignment", func(b *testing.B) {
		run(b, func(i int) []model.Change {
			op := []model.Op{model.OpDelete, model.OpUpsert}[i%2]
			return []model.Change{{Op: op, Assignment: &a}}
		})
	})
	b.Run("leaf_resource", func(b *testing.B) {
		run(b, func(i int) []model.Change {
			if i%2 == 0 {
				return []model.Change{{Op: model.OpDelete, Resource: &model.Resource{ID: leaf.ID}}}
			}
			return []model.Change{{Op: model.OpUpsert, Resource: &leaf}}
		})
	})
}
