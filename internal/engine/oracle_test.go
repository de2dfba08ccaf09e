package engine_test

// The brute-force oracle (DESIGN.md §7): random datasets from package gen are
// loaded into the engine, and the policies' answers are compared with a
// plain-Go answer computed straight from the model.Dataset by walking parent
// pointers, and the list entrypoints with the check entrypoint.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// oracleRun is one random dataset and how much to ask about it.
type oracleRun struct {
	spec       gen.Spec
	checks     int // random data-path checks
	tokens     int // random token-path checks
	agreements int // samples of each list entrypoint
}

func oracleRuns(short bool) []oracleRun {
	spec := func(seed int64, depth int) gen.Spec {
		return gen.Spec{Seed: seed, Organizations: 3, Resources: 300, Assignments: 300, MembershipsPerOrg: 8,
			Depth: depth, Skew: 1.2, InactiveRatio: 0.2}
	}
	// Groups: 4 per organization, 30 % of the assignments to groups.
	grouped := spec(5, 5)
	grouped.GroupsPerOrg, grouped.GroupAssignmentRatio = 4, 0.3
	if short {
		return []oracleRun{{spec(1, 5), 1000, 500, 40}, {grouped, 1000, 300, 40}}
	}
	return []oracleRun{
		{grouped, 3000, 1500, 150},
		{spec(1, 5), 3000, 1500, 150},
		{spec(2, 4), 3000, 1500, 150},
		{spec(3, 5), 3000, 1500, 150},
		{spec(4, 4), 3000, 1500, 150},
	}
}

func TestOracle(t *testing.T) {
	for _, run := range oracleRuns(testing.Short()) {
		t.Run(fmt.Sprintf("seed %d depth %d", run.spec.Seed, run.spec.Depth), func(t *testing.T) {
			// Measured: each run is CPU-bound on its own engine, so runs in
			// parallel halve the wall time on two cores.
			t.Parallel()
			ds := gen.Generate(run.spec)
			if err := ds.Validate(); err != nil {
				t.Fatal(err)
			}
			w := enginetest.NewOracle(ds)
			e := oracleEngine(t, ds)
			rng := rand.New(rand.NewPCG(uint64(run.spec.Seed), 1))
			p := &prober{t: t, e: e, w: w, rng: rng}

			t.Run("check", func(t *testing.T) { p.with(t).checks(run.checks) })
			t.Run("token", func(t *testing.T) { p.with(t).tokenChecks(run.tokens) })
			t.Run("list_resources", func(t *testing.T) { p.with(t).listResources(run.agreements) })
			t.Run("effective_permissions", func(t *testing.T) { p.with(t).effectivePermissions(run.agreements) })
			t.Run("list_memberships", func(t *testing.T) { p.with(t).listMemberships(run.agreements) })
		})
	}
}

// oracleEngine returns an engine loaded with ds.
func oracleEngine(t testing.TB, ds *model.Dataset) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatalf("LoadDataset: %v", err)
	}
	return e
}

// prober asks the engine random questions and compares the answers.
type prober struct {
	t      *testing.T
	e      *engine.Engine
	w      *enginetest.Oracle
	rng    *rand.Rand
	errors int
}

func (p *prober) with(t *testing.T) *prober {
	return &prober{t: t, e: p.e, w: p.w, rng: p.rng}
}

// mismatch reports a disagreement, giving up on the subtest after a few.
func (p *prober) mismatch(format string, args ...any) {
	p.t.Helper()
	p.t.Errorf(format, args...)
	if p.errors++; p.errors >= 20 {
		p.t.Fatal("too many mismatches")
	}
}

func (p *prober) decide(ep engine.Entrypoint, input map[string]any) map[string]any {
	p.t.Helper()
	v, err := ast.InterfaceToValue(input)
	if err != nil {
		p.t.Fatalf("input %v: %v", input, err)
	}
	res, err := p.e.Decide(context.Background(), ep, v)
	if err != nil {
		p.t.Fatalf("%s %v: %v", ep, input, err)
	}
	out, ok := res.Value.(map[string]any)
	if !ok {
		p.t.Fatalf("%s %v: result %T %v is not an object", ep, input, res.Value, res.Value)
	}
	return out
}

// check returns the policy's allowed for input, and the whole answer.
func (p *prober) check(input map[string]any) (bool, map[string]any) {
	p.t.Helper()
	out := p.decide(engine.Check, input)
	allowed, ok := out["allowed"].(bool)
	if !ok {
		p.t.Fatalf("check %v: no boolean allowed in %v", input, out)
	}
	return allowed, out
}

// pickOne returns a random element of xs, or the zero value when it is empty.
func pickOne[T any](rng *rand.Rand, xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	return xs[rng.IntN(len(xs))]
}

func (p *prober) chance(percent int) bool { return p.rng.IntN(100) < percent }

// membership returns a random membership id, sometimes an unknown one.
func (p *prober) membership() string {
	if p.chance(3) {
		return "om_unknown"
	}
	return pickOne(p.rng, p.w.MemIDs)
}

// permission returns a random permission for om: often one of a role om
// holds, sometimes an unknown one.
func (p *prober) permission(om string) string {
	switch {
	case p.chance(4):
		return pickOne(p.rng, []string{"nope:view", "project:fly", ""})
	case p.chance(50):
		if g := pickOne(p.rng, p.w.Grants[om]); g.Role != "" {
			if perm := pickOne(p.rng, p.w.Roles[g.Role].Permissions); perm != "" {
				return perm
			}
		}
	}
	return pickOne(p.rng, p.w.Perms)
}

// resource returns a random resource id for om: often at or below one of
// its grants, often in its organization, sometimes anywhere, sometimes
// unknown.
func (p *prober) resource(om string) string {
	switch {
	case p.chance(3):
		return "authz_resource_unknown"
	case p.chance(40):
		if a := pickOne(p.rng, p.w.AnchorsOf[om]); a != "" {
			return p.descend(a)
		}
	case p.chance(60):
		if org := p.w.Mem[om].OrganizationID; org != "" {
			return pickOne(p.rng, p.w.OrgRes[org])
		}
	}
	return pickOne(p.rng, p.w.ResIDs)
}

// descend walks down from rid through a random number of random children.
func (p *prober) descend(rid string) string {
	for steps := p.rng.IntN(4); steps > 0; steps-- {
		next := pickOne(p.rng, p.w.Children[rid])
		if next == "" {
			break
		}
		rid = next
	}
	return rid
}

// refTo returns a reference to rid: by id, or by type and external id with
// its organization, another organization, or none (tokenOK: the token's).
func (p *prober) refTo(rid string, tokenOK bool) enginetest.ResourceRef {
	r, ok := p.w.Res[rid]
	if !ok || p.chance(60) {
		return enginetest.ResourceRef{ID: rid}
	}
	out := enginetest.ResourceRef{Type: r.Type, Ext: r.ExternalID, Org: r.OrganizationID}
	switch {
	case tokenOK && p.chance(30):
		out.Org = ""
	case p.chance(10):
		out.Org = pickOne(p.rng, p.w.DS.Organizations).ID
	}
	return out
}

func membershipSubject(om string) map[string]any {
	return map[string]any{"organization_membership_id": om}
}

// checks compares check with the decision rule for random (membership,
// permission, resource) triples.
func (p *prober) checks(n int) {
	var allowed int
	for range n {
		om := p.membership()
		perm := p.permission(om)
		r := p.refTo(p.resource(om), false)
		want := p.w.Allowed(om, perm, p.w.Resolve(r, ""))
		got, out := p.check(map[string]any{"subject": membershipSubject(om), "permission": perm, "resource": r.Input()})
		if got != want {
			p.mismatch("check(%s, %q, %s): got allowed=%v (%v), brute force says %v", om, perm, r, got, out["reason"], want)
		}
		if want {
			allowed++
		}
	}
	p.t.Logf("%d checks, %d allowed", n, allowed)
	p.balanced(n, allowed)
}

// balanced fails the test when the random questions were nearly all
// answered the same way, which would make the comparison weak.
func (p *prober) balanced(n, allowed int) {
	p.t.Helper()
	if n >= 100 && (allowed < n/10 || allowed > n*9/10) {
		p.t.Errorf("%d of %d allowed: the random cases do not exercise both answers", allowed, n)
	}
}

// token returns a random token for a random membership: usually of the
// membership's organization with some of the permissions, sometimes of
// another organization, without a membership, or with an unknown one.
func (p *prober) token() enginetest.TokenClaims {
	om := p.membership()
	org := p.w.Mem[om].OrganizationID
	if org == "" || p.chance(15) {
		org = pickOne(p.rng, p.w.DS.Organizations).ID
	}
	k := enginetest.TokenClaims{Org: org, Membership: om}
	switch {
	case p.chance(10):
		k.Membership = ""
	case p.chance(10): //nolint:gocritic // dupCase: each call draws a new random number
		k.Membership = pickOne(p.rng, p.w.OrgMems[org]) // another member of its organization
	}
	for _, perm := range p.w.Perms {
		if p.chance(15) {
			k.Perms = append(k.Perms, perm)
		}
	}
	if p.chance(5) {
		k.Perms = append(k.Perms, "nope:view")
	}
	return k
}

// tokenChecks compares check with the token-first rule for random tokens.
func (p *prober) tokenChecks(n int) {
	var allowed int
	for range n {
		k := p.token()
		var perm string
		if p.chance(30) && len(k.Perms) > 0 {
			perm = pickOne(p.rng, k.Perms)
		} else {
			perm = p.permission(k.Membership)
		}
		om := k.Membership
		if om == "" || p.chance(20) {
			om = pickOne(p.rng, p.w.OrgMems[k.Org])
		}
		r := p.refTo(p.resource(om), true)
		want := p.w.AllowedToken(k, perm, p.w.Resolve(r, k.Org))
		got, out := p.check(map[string]any{"token": k.Input(), "permission": perm, "resource": r.Input()})
		if got != want {
			p.mismatch("check(token %+v, %q, %s): got allowed=%v (%v), brute force says %v", k, perm, r, got, out, want)
		}
		if want {
			allowed++
		}
	}
	p.t.Logf("%d token checks, %d allowed", n, allowed)
	p.balanced(n, allowed)
}

// page collects every id of a paged list entrypoint, following after/limit
// until has_more is false.
func (p *prober) page(ep engine.Entrypoint, input map[string]any) []string {
	p.t.Helper()
	limit := 1 + p.rng.IntN(8)
	if p.chance(20) {
		limit = 0 // the default
	}
	var (
		ids   []string
		paths [][]string // of list_resources: positions in tree order
		after any
	)
	for pages := 0; ; pages++ {
		in := map[string]any{"limit": limit}
		if after != nil {
			in["after"] = after
		}
		for k, v := range input {
			in[k] = v
		}
		out := p.decide(ep, in)
		page, ok := out["ids"].([]any)
		if !ok {
			p.t.Fatalf("%s %v: no ids in %v", ep, in, out)
		}
		if limit > 0 && len(page) > limit {
			p.t.Fatalf("%s %v: %d ids, more than the limit", ep, in, len(page))
		}
		for _, id := range page {
			ids = append(ids, id.(string))
		}
		pp, _ := out["paths"].([]any)
		for _, path := range pp {
			paths = append(paths, strs(path.([]any)))
		}
		more, _ := out["has_more"].(bool)
		if !more {
			break
		}
		if pages > len(p.w.ResIDs)+len(p.w.MemIDs) {
			p.t.Fatalf("%s %v: has_more with no progress (%v)", ep, in, out)
		}
		switch {
		case out["resume"] != nil:
			after = out["resume"]
		case len(ids) > 0:
			after = ids[len(ids)-1]
		default:
			p.t.Fatalf("%s %v: has_more with nothing to resume from (%v)", ep, in, out)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		p.t.Errorf("%s %v: ids not unique across pages: %v", ep, input, ids)
	}
	if ep != engine.ListResources {
		sorted := slices.Sorted(slices.Values(ids))
		if input["order"] == "desc" {
			slices.Reverse(sorted)
		}
		if !slices.Equal(ids, sorted) {
			p.t.Errorf("%s %v: ids not in order across pages: %v", ep, input, ids)
		}
		return ids
	}
	// list_resources pages in tree order: by path, reversed for desc.
	sorted := slices.SortedFunc(slices.Values(paths), slices.Compare[[]string])
	if input["order"] == "desc" {
		slices.Reverse(sorted)
	}
	if len(paths) != len(ids) || !slices.EqualFunc(paths, sorted, slices.Equal[[]string]) {
		p.t.Errorf("%s %v: pages not in tree order: %v", ep, input, paths)
	}
	for i, path := range paths {
		if path[len(path)-1] != ids[i] || !slices.Equal(path, p.w.Path(ids[i])) {
			p.t.Errorf("%s %v: path %v of %s is not its path %v", ep, input, path, ids[i], p.w.Path(ids[i]))
		}
	}
	return ids
}

func strs(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.(string)
	}
	return out
}

// subjectInput returns a random subject: a membership, or a token for one.
// The caller must not modify the returned map.
func (p *prober) subjectInput() (in map[string]any, label string) {
	if p.chance(25) {
		k := p.token()
		return map[string]any{"token": k.Input()}, fmt.Sprintf("token %+v", k)
	}
	om := p.membership()
	return map[string]any{"subject": membershipSubject(om)}, om
}

// subjectMembership returns the membership a subject input names.
func subjectMembership(in map[string]any) string {
	if s, ok := in["subject"].(map[string]any); ok {
		return s["organization_membership_id"].(string)
	}
	return in["token"].(map[string]any)["membership_id"].(string)
}

func mergeInputs(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// listResources compares list_resources with check on every candidate.
func (p *prober) listResources(n int) {
	var listed int
	for range n {
		subj, label := p.subjectInput()
		om := subjectMembership(subj)
		perm := p.permission(om)
		org := p.w.Mem[om].OrganizationID
		if tk, ok := subj["token"].(map[string]any); ok {
			org = tk["org_id"].(string)
		}
		in := map[string]any{"permission": perm}
		typ := ""
		if !p.chance(10) {
			typ = pickOne(p.rng, p.w.DS.ResourceTypes).Slug
			if p.chance(10) {
				typ = model.OrganizationType
			}
			in["resource_type"] = typ
		}
		parent := ""
		switch {
		case p.chance(30) && org != "":
			parent = pickOne(p.rng, p.w.OrgRes[org])
			in["parent"] = map[string]any{"id": parent}
		case p.chance(20):
			if !p.chance(60) {
				org = pickOne(p.rng, p.w.DS.Organizations).ID // perhaps another one
			}
			in["organization_id"] = org
		}
		if p.chance(50) {
			in["order"] = "desc"
		}
		got := slices.Sorted(slices.Values(p.page(engine.ListResources, mergeInputs(subj, in))))
		label += " in " + org

		// Candidates: every resource of the type in the organization the
		// list is about, under the parent when given, and anything listed.
		cands := map[string]bool{}
		for _, id := range got {
			cands[id] = true
		}
		for _, id := range p.w.OrgRes[org] {
			if (typ == "" || p.w.Res[id].Type == typ) && (parent == "" || id != parent && p.w.IsAncestorOrSelf(parent, id)) {
				cands[id] = true
			}
		}
		var want []string
		for id := range cands {
			if ok, _ := p.check(mergeInputs(subj, map[string]any{"permission": perm, "resource": map[string]any{"id": id}})); ok &&
				(typ == "" || p.w.Res[id].Type == typ) && (parent == "" || id != parent && p.w.IsAncestorOrSelf(parent, id)) {
				want = append(want, id)
			}
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			p.mismatch("list_resources(%s, %q, type %q, parent %q): got %v, check allows %v (%s)", label, perm, typ, parent, got, want, setDiff(got, want))
		}
		if len(want) > 0 {
			listed++
		}
	}
	p.t.Logf("%d lists, %d non-empty", n, listed)
	if n >= 100 && listed < n/10 {
		p.t.Errorf("only %d of %d lists are non-empty", listed, n)
	}
}

// effectivePermissions compares effective_permissions with check on every
// known permission.
func (p *prober) effectivePermissions(n int) {
	var nonEmpty int
	for range n {
		subj, label := p.subjectInput()
		om := subjectMembership(subj)
		_, isToken := subj["token"]
		r := p.refTo(p.resource(om), isToken)
		out := p.decide(engine.EffectivePermissions, mergeInputs(subj, map[string]any{"resource": r.Input()}))
		list, ok := out["permissions"].([]any)
		if !ok {
			p.t.Fatalf("effective_permissions(%s, %s): no permissions in %v", label, r, out)
		}
		got := make([]string, len(list))
		for i, perm := range list {
			got[i] = perm.(string)
		}
		var want []string
		for _, perm := range p.w.Perms {
			if ok, _ := p.check(mergeInputs(subj, map[string]any{"permission": perm, "resource": r.Input()})); ok {
				want = append(want, perm)
			}
		}
		if !slices.Equal(got, want) {
			p.mismatch("effective_permissions(%s, %s): got %v, check allows %v (%s)", label, r, got, want, setDiff(got, want))
		}
		if len(want) > 0 {
			nonEmpty++
		}
	}
	p.t.Logf("%d effective permission sets, %d non-empty", n, nonEmpty)
}

// listMemberships compares list_memberships with check for every active
// membership (direct: false), and with the brute force for direct: true.
func (p *prober) listMemberships(n int) {
	var nonEmpty int
	for range n {
		om := p.membership()
		perm := p.permission(om)
		rid := p.resource(om)
		r := p.refTo(rid, false)
		direct := p.chance(25)
		in := map[string]any{"permission": perm, "resource": r.Input(), "direct": direct}
		if p.chance(50) {
			in["order"] = "desc"
		}
		got := slices.Sorted(slices.Values(p.page(engine.ListMemberships, in)))
		var want []string
		for _, m := range p.w.MemIDs {
			if p.w.Mem[m].Status != model.StatusActive {
				continue
			}
			var ok bool
			if direct {
				ok = p.w.AllowedDirect(m, perm, p.w.Resolve(r, ""))
			} else {
				ok, _ = p.check(map[string]any{"subject": membershipSubject(m), "permission": perm, "resource": r.Input()})
			}
			if ok {
				want = append(want, m)
			}
		}
		if !slices.Equal(got, want) {
			p.mismatch("list_memberships(%q, %s, direct %v): got %v, want %v (%s)", perm, r, direct, got, want, setDiff(got, want))
		}
		if len(want) > 0 {
			nonEmpty++
		}
	}
	p.t.Logf("%d membership lists, %d non-empty", n, nonEmpty)
}

// setDiff describes how got differs from want.
func setDiff(got, want []string) string {
	var extra, missing []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	return fmt.Sprintf("extra %v, missing %v", extra, missing)
}
