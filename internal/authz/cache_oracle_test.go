package authz_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// question is one check a reader asks again and again: by a membership or
// by a token (tokens[sub.Token]).
type question struct {
	sub   authz.Subject
	check authz.Check
}

// tokenTable is a Verifier that knows a fixed set of raw tokens.
type tokenTable map[string]token.Claims

func (tt tokenTable) Verify(_ context.Context, raw string) (token.Claims, error) {
	c, ok := tt[raw]
	if !ok {
		return token.Claims{}, &token.Error{Code: token.CodeBadSignature, Message: "unknown test token"}
	}
	return c, nil
}

// answered is one answer a reader got.
type answered struct {
	q   question
	d   authz.Decision
	rev int64
}

// listed is one list-resources page a reader got: of the resources q's
// subject has q's permission on, below q's resource when parent is set.
type listed struct {
	q      question
	parent bool
	limit  int
	p      authz.Page
	rev    int64
}

func (l listed) request() authz.ListRequest {
	req := authz.ListRequest{Permission: l.q.check.Permission, Limit: l.limit}
	if l.parent {
		req.Parent = &l.q.check.Resource
	}
	return req
}

// TestCacheOracle interleaves random writes of every kind (the Mutator's:
// resources created, re-parented and deleted with their subtrees,
// assignments, memberships and their organization roles, organization and
// environment roles created, edited and deleted, permissions deleted and
// added, new organizations) with cached single and batch checks from
// concurrent readers, through a Service on a real engine, and compares
// every answer with the brute-force oracle on the dataset at the answer's
// revision.
//
// The readers ask a pool of questions drawn from the data of the last few
// dozen writes, so the cache is really hit; the pool names resources and
// memberships the writer will create or has deleted, and references by
// external id with and without an organization. The writes are drawn
// before the run, so every revision's dataset and every token is known
// before any answer can carry it.
func TestCacheOracle(t *testing.T) { cacheOracle(t, policies.Modules(), nil) }

// TestCacheOracleWithExtension is TestCacheOracle with an extension that
// reads attributes only (so answers are cached) and denies what is
// confidential or in a frozen organization; the writes change attributes
// too.
func TestCacheOracleWithExtension(t *testing.T) {
	mods := enginetest.Extended("attrs", `deny contains {"code": "confidential", "message": "confidential"} if input.resource.attributes.confidential == true

deny contains {"code": "frozen", "message": "frozen"} if input.organization.attributes.frozen == true`)
	cacheOracle(t, mods, func(w *enginetest.Oracle, rid string) bool {
		r := w.Res[rid]
		i := slices.IndexFunc(w.DS.Organizations, func(o model.Organization) bool { return o.ID == r.OrganizationID })
		return r.Attributes["confidential"] == true || i >= 0 && w.DS.Organizations[i].Attributes["frozen"] == true
	})
}

// cacheOracle runs TestCacheOracle with the policy modules mods, whose
// extensions deny what denies says of the resource (nil: none).
func cacheOracle(t *testing.T, mods map[string]string, denies func(w *enginetest.Oracle, rid string) bool) {
	steps, readers, readsPerStep, epoch := 300, 3, 60, 25
	if testing.Short() {
		steps = 100
	}
	ctx := context.Background()
	ds := gen.Generate(gen.Spec{Seed: 11, Organizations: 4, Resources: 160, Assignments: 220, MembershipsPerOrg: 5,
		Depth: 4, Skew: 1.2, InactiveRatio: 0.2, GroupsPerOrg: 3, GroupAssignmentRatio: 0.3})
	ds.MaxDepth = 1000 // re-parenting may deepen trees; depth is the write path's job
	e, err := engine.New(ctx, engine.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}

	// The writes, the dataset at each revision, and a pool of questions
	// per epoch of writes, about the data at its start and what the
	// epoch's writes create.
	first := ds.Revision
	at := map[int64]*model.Dataset{first: enginetest.Clone(ds)}
	schedule := make([][]model.Change, steps)
	m := &enginetest.Mutator{DS: ds, Rand: rand.New(rand.NewPCG(11, 4))}
	for step := range steps {
		for range 1 + m.Rand.IntN(2) {
			schedule[step] = append(schedule[step], m.Step()...)
		}
		at[first+int64(step)+1] = enginetest.Clone(ds)
	}
	tokens := tokenTable{}
	rng := rand.New(rand.NewPCG(11, 3))
	var pools [][]question
	for start := 0; start < steps; start += epoch {
		var created []model.Change
		for _, chs := range schedule[start:min(start+epoch, steps)] {
			created = append(created, chs...)
		}
		pools = append(pools, questionPool(rng, enginetest.NewOracle(at[first+int64(start)]), created, 150, tokens))
	}
	svc := newService(t, authz.Config{Engine: e, Tokens: tokens, DecisionCacheSize: 10_000})

	// The writer and the readers keep pace, within bounds: each write
	// waits for readsPerStep reads (100 ms at most: under -race on a
	// loaded machine 20 ms left too few reads per revision to hit the
	// cache), and readers that far ahead wait for the next write.
	var applied, reads atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for step, chs := range schedule {
			if err := e.Apply(ctx, first+int64(step)+1, chs); err != nil {
				t.Errorf("step %d: %v", step, err)
				return
			}
			applied.Store(int64(step) + 1)
			for wait := time.Now().Add(100 * time.Millisecond); reads.Load() < int64((step+1)*readsPerStep) && time.Now().Before(wait); {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()

	results, lists := make([][]answered, readers), make([][]listed, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 5))
			for !done.Load() {
				step := applied.Load()
				if reads.Load() >= (step+1)*int64(readsPerStep) {
					time.Sleep(20 * time.Microsecond)
					continue
				}
				reads.Add(1)
				pool := pools[min(int(step)/epoch, len(pools)-1)]
				q := pool[int(float64(len(pool))*rng.Float64()*rng.Float64())] // some questions far more often
				var cons authz.Consistency
				if rng.IntN(4) == 0 {
					cons.AtLeastRevision = first + step
				}
				if rng.IntN(6) == 0 {
					l := listed{q: q, parent: rng.IntN(4) == 0, limit: 3}
					p, ans, err := svc.ListResources(ctx, q.sub, l.request(), cons)
					if err != nil {
						t.Errorf("ListResources %+v: %v", l.request(), err)
						return
					}
					if ans.Revision < cons.AtLeastRevision {
						t.Errorf("ListResources %+v at revision %d, asked for at least %d", l.request(), ans.Revision, cons.AtLeastRevision)
					}
					l.p, l.rev = p, ans.Revision
					lists[r] = append(lists[r], l)
					continue
				}
				if rng.IntN(8) > 0 {
					d, ans, err := svc.Check(ctx, q.sub, q.check, cons)
					if err != nil {
						t.Errorf("Check %+v: %v", q, err)
						return
					}
					if ans.Revision < cons.AtLeastRevision {
						t.Errorf("Check %+v at revision %d, asked for at least %d", q, ans.Revision, cons.AtLeastRevision)
					}
					results[r] = append(results[r], answered{q, d, ans.Revision})
					continue
				}
				// A batch of the subject's questions, some of them cached.
				qs := []question{q}
				for _, other := range pool {
					if other.sub == q.sub && other != q && len(qs) < 6 {
						qs = append(qs, other)
					}
				}
				checks := make([]authz.Check, len(qs))
				for i := range qs {
					checks[i] = qs[i].check
				}
				ds, ans, err := svc.CheckBatch(ctx, q.sub, checks, cons)
				if err != nil {
					t.Errorf("CheckBatch %+v: %v", checks, err)
					return
				}
				if ans.Revision < cons.AtLeastRevision {
					t.Errorf("CheckBatch %+v at revision %d, asked for at least %d", checks, ans.Revision, cons.AtLeastRevision)
				}
				for i, d := range ds {
					results[r] = append(results[r], answered{qs[i], d, ans.Revision})
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every answer against the brute force, and, whole (reason
	// included), against an uncached evaluation of the same data.
	byRev, listsAt := map[int64][]answered{}, map[int64][]listed{}
	for _, rs := range results {
		for _, a := range rs {
			byRev[a.rev] = append(byRev[a.rev], a)
		}
	}
	for _, ls := range lists {
		for _, l := range ls {
			listsAt[l.rev] = append(listsAt[l.rev], l)
		}
	}
	answeredAt := map[int64]bool{}
	for rev := range byRev {
		answeredAt[rev] = true
	}
	for rev := range listsAt {
		answeredAt[rev] = true
	}
	revs := slices.Sorted(maps.Keys(answeredAt))
	ref, err := engine.New(ctx, engine.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	uncached := newService(t, authz.Config{Engine: ref, Tokens: tokens})
	var checked, allowed, mismatches, listChecked, listedPages int
	mismatch := func(format string, args ...any) {
		t.Helper()
		if mismatches++; mismatches <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, rev := range revs {
		snap, ok := at[rev]
		if !ok {
			t.Fatalf("answers at revision %d, which was never applied", rev)
		}
		snap.Revision = rev
		if err := ref.LoadDataset(ctx, snap); err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
		w := enginetest.NewOracle(snap)
		evaluated := map[question]authz.Decision{}
		for _, a := range byRev[rev] {
			want := oracleAllows(w, tokens, a.q, denies)
			if a.d.Allowed != want {
				mismatch("revision %d: %+v: allowed=%v, the oracle says %v", rev, a.q, a.d.Allowed, want)
			}
			d, ok := evaluated[a.q]
			if !ok {
				if d, _, err = uncached.Check(ctx, a.q.sub, a.q.check, authz.Consistency{}); err != nil {
					t.Fatal(err)
				}
				evaluated[a.q] = d
			}
			if diff := cmp.Diff(a.d, d); diff != "" {
				mismatch("revision %d: %+v: the answer differs from an uncached evaluation (-got +want):\n%s", rev, a.q, diff)
			}
			checked++
			if want {
				allowed++
			}
		}
		// Pages against an uncached evaluation, whole: the evaluation is
		// checked against the brute force by the engine's oracle tests.
		for _, l := range listsAt[rev] {
			want, _, err := uncached.ListResources(ctx, l.q.sub, l.request(), authz.Consistency{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(l.p, want, cmpopts.EquateEmpty()); diff != "" {
				mismatch("revision %d: list %+v by %+v: the page differs from an uncached evaluation (-got +want):\n%s", rev, l.request(), l.q.sub, diff)
			}
			if len(want.IDs) > 0 {
				listedPages++
			}
			listChecked++
		}
	}
	st := svc.CacheStats()
	t.Logf("%d writes; %d answers checked at %d revisions, %d allowed; %d list pages, %d not empty; cache %d hits, %d misses (lists: %d, %d)",
		steps, checked, len(revs), allowed, listChecked, listedPages, st.Hits, st.Misses, st.ListHits, st.ListMisses)
	if listedPages < listChecked/5 {
		t.Errorf("%d of %d list pages hold ids: the lists are not exercised", listedPages, listChecked)
	}
	if mismatches > 0 {
		t.Errorf("%d answers differ from the oracle", mismatches)
	}
	if allowed < checked/10 || allowed > checked*9/10 {
		t.Errorf("%d of %d answers allowed: the questions do not exercise both answers", allowed, checked)
	}
	// A list's page depends on its whole organization: it misses more.
	if hits, misses := st.Hits-st.ListHits, st.Misses-st.ListMisses; hits < misses || st.ListHits < (st.ListHits+st.ListMisses)/20 {
		t.Errorf("%d cache hits for %d misses, %d for %d of lists: the test does not exercise the cache", hits, misses, st.ListHits, st.ListMisses)
	}
	if len(revs) < steps/2 {
		t.Errorf("answers at only %d revisions of %d: reads and writes did not interleave", len(revs), steps)
	}
}

// oracleAllows is the oracle's answer to q, with extensions that deny
// what denies says (nil: none).
func oracleAllows(w *enginetest.Oracle, tokens tokenTable, q question, denies func(*enginetest.Oracle, string) bool) bool {
	r := q.check.Resource
	ref := enginetest.ResourceRef{ID: r.ID, Type: r.Type, Ext: r.ExternalID, Org: r.OrganizationID}
	var rid string
	var allowed bool
	if q.sub.Token != "" {
		c := tokens[q.sub.Token]
		k := enginetest.TokenClaims{Org: c.OrganizationID, Membership: c.MembershipID, Perms: c.Permissions}
		rid = w.Resolve(ref, c.OrganizationID)
		allowed = w.AllowedToken(k, q.check.Permission, rid)
	} else {
		om := q.sub.MembershipID
		rid = w.Resolve(ref, w.Mem[om].OrganizationID)
		allowed = w.Allowed(om, q.check.Permission, rid)
	}
	return allowed && (denies == nil || !denies(w, rid))
}

// questionPool draws n questions about the dataset w indexes and the
// memberships and resources that changes create, adding the tokens they
// use to tokens.
func questionPool(rng *rand.Rand, w *enginetest.Oracle, changes []model.Change, n int, tokens tokenTable) []question {
	chance := func(percent int) bool { return rng.IntN(100) < percent }
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var newMembers []model.Membership
	var newResources []model.Resource
	for _, ch := range changes {
		switch {
		case ch.Op != model.OpUpsert:
		case ch.Membership != nil && w.Mem[ch.Membership.ID].ID == "":
			newMembers = append(newMembers, *ch.Membership)
		case ch.Resource != nil && w.Res[ch.Resource.ID].ID == "":
			newResources = append(newResources, *ch.Resource)
		}
	}
	orgs := make([]string, len(w.DS.Organizations))
	for i, o := range w.DS.Organizations {
		orgs[i] = o.ID
	}
	var pool []question
	for len(pool) < n {
		// A membership, sometimes one the writes will create, an unknown
		// one, or (tokens only) none.
		om := pick(w.MemIDs)
		org := w.Mem[om].OrganizationID
		switch {
		case chance(10) && len(newMembers) > 0:
			om = newMembers[rng.IntN(len(newMembers))].ID
			org = pick(orgs) // perhaps its organization
		case chance(3):
			om, org = "om_unknown", pick(orgs)
		}
		// A resource, often at or below one of the membership's grants,
		// sometimes one the writes will create.
		res := w.Res[pick(w.OrgRes[org])]
		switch {
		case chance(12) && len(newResources) > 0:
			res = newResources[rng.IntN(len(newResources))]
			if chance(50) {
				org = res.OrganizationID
			}
		case chance(3):
			res = model.Resource{ID: "authz_resource_unknown", Type: "workspace", ExternalID: "unknown", OrganizationID: org}
		case chance(50) && len(w.AnchorsOf[om]) > 0:
			rid := pick(w.AnchorsOf[om])
			for steps := rng.IntN(3); steps > 0 && len(w.Children[rid]) > 0; steps-- {
				rid = pick(w.Children[rid])
			}
			res = w.Res[rid]
		case chance(10):
			res = w.Res[pick(w.ResIDs)]
		}

		// The subject: the membership, or a token of org for it (or for
		// none) with some permissions.
		var sub authz.Subject
		var tokenPerms []string
		if chance(35) {
			c := token.Claims{Subject: "user_" + om, OrganizationID: org, MembershipID: om}
			switch {
			case chance(25):
				c.MembershipID = ""
			case chance(5):
				c.OrganizationID = pick(orgs) // perhaps not the membership's
			}
			for _, p := range w.Perms {
				if chance(20) {
					c.Permissions = append(c.Permissions, p)
				}
			}
			raw := fmt.Sprintf("token-%d", len(tokens))
			tokens[raw] = c
			sub.Token, tokenPerms = raw, c.Permissions
		} else {
			sub.MembershipID = om
		}

		// A permission, often one of a role the membership holds or one
		// of the token's.
		perm := pick(w.Perms)
		if gs := w.Grants[om]; len(gs) > 0 && chance(60) {
			if ps := w.Roles[gs[rng.IntN(len(gs))].Role].Permissions; len(ps) > 0 {
				perm = ps[rng.IntN(len(ps))]
			}
		} else if len(tokenPerms) > 0 && chance(60) {
			perm = pick(tokenPerms)
		}

		// By id or by external id, with or without its organization.
		ref := authz.ResourceRef{ID: res.ID}
		if chance(40) {
			ref = authz.ResourceRef{Type: res.Type, ExternalID: res.ExternalID}
			if chance(50) {
				ref.OrganizationID = res.OrganizationID
			}
		}
		pool = append(pool, question{sub, authz.Check{Permission: perm, Resource: ref}})
	}
	return pool
}
