package authz_test

// End-to-end, in-process benchmarks of the service layer on the "M" tier of
// package gen (seed 1: ~1,000,000 resources, depth 5), run by `make bench`:
// request → token verification (through the verifier's cache) → policy
// input → engine → decoded decision. internal/engine's benchmarks measure the
// engine alone on the same data.
//
// The dataset, the loaded engine and the token verifier are built lazily,
// once per process, by the first benchmark that needs them: `go test ./...`
// without -bench never builds them.
//
// BenchmarkService runs the OPA floor first (the same one-rule prepared query
// as internal/engine's) and reports the checks as multiples of it (unit
// "x-floor"). The ratio is only meaningful when the floor ran earlier in the
// same process: run the whole of BenchmarkService. When a -bench pattern
// skips the floor, the ratio is not reported.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

const (
	benchPerm     = "document:view"
	benchLeafType = "document"
	benchIssuer   = "https://auth.bench.test"
)

// benchEnv is the service under benchmark and what to ask it, shared by
// every benchmark of the process.
var benchEnv struct {
	once sync.Once
	e    *engine.Engine
	svc  *authz.Service
	// cached is svc's twin with a decision cache: the same engine and
	// verifier.
	cached *authz.Service
	// missing is svc's twin with a decision cache of one answer, which
	// two alternating checks always miss: the cache's cost on a miss.
	missing *authz.Service
	fx      benchFixture
	raw     string // a signed token of fx.org whose permissions include benchPerm
	err     error
}

// benchFixture is a depth-5 leaf whose only grant path for fx.membership
// is a role on its workspace.
type benchFixture struct {
	org, membership, workspace, leaf string
}

func benchService(tb testing.TB) (*authz.Service, benchFixture, string) {
	tb.Helper()
	benchEnv.once.Do(func() {
		benchEnv.err = setUpBenchService(context.Background())
	})
	if benchEnv.err != nil {
		tb.Fatal(benchEnv.err)
	}
	return benchEnv.svc, benchEnv.fx, benchEnv.raw
}

func setUpBenchService(ctx context.Context) error {
	spec, ok := gen.Spec{Seed: 1}.Tier("M")
	if !ok {
		return fmt.Errorf(`gen: tier "M" is missing`)
	}
	ds := gen.Generate(spec)
	fx, ok := findBenchFixture(ds)
	if !ok {
		return fmt.Errorf("no depth-5 leaf granted through its workspace in the generated data")
	}
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		return err
	}
	if err := e.LoadDataset(ctx, ds); err != nil {
		return err
	}

	signer, err := token.NewSigner(token.RS256, "bench-key")
	if err != nil {
		return err
	}
	// The verifier reads the key set once here; it would re-read the file
	// only for an unknown kid or after 15 minutes, and keeps its keys when
	// that fails, so the file need not outlive New.
	dir, err := os.MkdirTemp("", "trellis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, signer.JWKS(), 0o600); err != nil {
		return err
	}
	verifier, err := token.New(ctx, token.Config{JWKSFile: jwks, Issuer: benchIssuer})
	if err != nil {
		return err
	}
	now := time.Now()
	raw, err := signer.Sign(map[string]any{
		"iss":                        benchIssuer,
		"sub":                        "user_bench",
		"sid":                        "session_bench",
		"org_id":                     fx.org,
		"organization_membership_id": fx.membership,
		"role":                       "org-member",
		"roles":                      []string{"org-member"},
		"permissions":                []string{"organization:view", "workspace:view", "project:view", "folder:view", benchPerm},
		"iat":                        now.Unix(),
		"exp":                        now.Add(24 * time.Hour).Unix(),
	})
	if err != nil {
		return err
	}
	svc, err := authz.New(authz.Config{Engine: e, Tokens: verifier})
	if err != nil {
		return err
	}
	cached, err := authz.New(authz.Config{Engine: e, Tokens: verifier, DecisionCacheSize: 1000})
	if err != nil {
		return err
	}
	missing, err := authz.New(authz.Config{Engine: e, Tokens: verifier, DecisionCacheSize: 1})
	if err != nil {
		return err
	}
	benchEnv.e, benchEnv.svc, benchEnv.cached, benchEnv.missing, benchEnv.fx, benchEnv.raw = e, svc, cached, missing, fx, raw
	return nil
}

// benchFloorNs is the ns/op of the last BenchmarkService/floor run in this
// process; zero until it has run.
var benchFloorNs float64

// BenchmarkService measures Service.Check end to end in process.
func BenchmarkService(b *testing.B) {
	svc, fx, raw := benchService(b)

	b.Run("floor", func(b *testing.B) { benchFloorNs = enginetest.BenchFloor(b) })

	check := authz.Check{Permission: benchPerm, Resource: authz.ResourceRef{ID: fx.leaf}}
	b.Run("check_token", func(b *testing.B) {
		// A real RS256 token: the first Check verifies its signature, every
		// timed one is a hit of the verifier's cache.
		benchCheck(b, svc, authz.Subject{Token: raw}, check, "token", "")
	})
	b.Run("check_assignment_depth5", func(b *testing.B) {
		// A membership subject (an API-key caller): no token to verify.
		benchCheck(b, svc, authz.Subject{MembershipID: fx.membership}, check, "assignment", fx.workspace)
	})
	b.Run("check_assignment_depth5_cache_miss", func(b *testing.B) {
		// The same membership checks the leaf and its workspace in turn
		// through a cache of one answer: every Check misses, so it pays
		// for the stamp (a store read of the owners) and the put on top
		// of the evaluation check_assignment_depth5 times without a cache.
		ctx := context.Background()
		sub := authz.Subject{MembershipID: fx.membership}
		checks := [2]authz.Check{check, {Permission: benchPerm, Resource: authz.ResourceRef{ID: fx.workspace}}}
		for _, c := range checks {
			if d, _, err := benchEnv.missing.Check(ctx, sub, c, authz.Consistency{}); err != nil || !d.Allowed {
				b.Fatalf("check %+v: %+v, %v; want an allow", c, d, err)
			}
		}
		before := benchEnv.missing.CacheStats()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if _, _, err := benchEnv.missing.Check(ctx, sub, checks[n%2], authz.Consistency{}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if st := benchEnv.missing.CacheStats(); st.Hits != before.Hits {
			b.Fatalf("decision cache: %+v after %+v, want no hit", st, before)
		}
		if benchFloorNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/benchFloorNs, "x-floor")
		}
	})
	var cachedNs float64
	b.Run("check_token_cached", func(b *testing.B) {
		// The same token check through the decision cache: the first
		// Check fills it, every timed one verifies the token (a hit of the
		// verifier's cache) and is a hit of the decision cache.
		cachedNs = benchCheck(b, benchEnv.cached, authz.Subject{Token: raw}, check, "token", "")
		b.ReportMetric(cachedNs/1e3, "us/check")
		if st := benchEnv.cached.CacheStats(); st.Misses != 1 {
			b.Fatalf("decision cache: %+v, want one miss", st)
		}
	})
	b.Run("check_token_cached_extension", func(b *testing.B) {
		// check_token_cached with a context-free extension loaded (it
		// reads the token's entitlements): answers stay cached, keyed on
		// every claim (x-cached: of check_token_cached just before).
		ctx := context.Background()
		mods := enginetest.Extended("bench", `deny contains {"code": "suspended", "message": "suspended"} if "subscription-suspended" in input.token.entitlements`)
		if err := benchEnv.e.SetModules(ctx, mods); err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := benchEnv.e.SetModules(ctx, policies.Modules()); err != nil {
				b.Error(err)
			}
		}()
		before := benchEnv.cached.CacheStats()
		ns := benchCheck(b, benchEnv.cached, authz.Subject{Token: raw}, check, "token", "")
		b.ReportMetric(ns/1e3, "us/check")
		if cachedNs > 0 {
			b.ReportMetric(ns/cachedNs, "x-cached")
		}
		if st := benchEnv.cached.CacheStats(); st.Misses != before.Misses+1 {
			b.Fatalf("decision cache: %+v after %+v, want one miss", st, before)
		}
	})
}

// benchCheck checks that sub gets an allow decided by decidedBy (through a
// grant on grantOn, when set), then times Service.Check and returns its
// ns/op.
func benchCheck(b *testing.B, svc *authz.Service, sub authz.Subject, c authz.Check, decidedBy, grantOn string) float64 {
	b.Helper()
	ctx := context.Background()
	d, _, err := svc.Check(ctx, sub, c, authz.Consistency{})
	if err != nil {
		b.Fatal(err)
	}
	grant, _ := d.Reason["resource"].(map[string]any)
	if !d.Allowed || d.DecidedBy != decidedBy || (grantOn != "" && grant["id"] != grantOn) {
		b.Fatalf("check %+v: got %+v, want an allow by %s (on %q)", c, d, decidedBy, grantOn)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := svc.Check(ctx, sub, c, authz.Consistency{}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(n)
	if benchFloorNs > 0 {
		b.ReportMetric(ns/benchFloorNs, "x-floor")
	}
	return ns
}

// findBenchFixture returns, for the first assignment in data order of a role
// granting benchPerm on a workspace to an active membership whose
// organization roles do not grant it, a depth-5 leaf under that workspace on
// whose path the membership holds no other grant.
func findBenchFixture(ds *model.Dataset) (benchFixture, bool) {
	byID := make(map[string]*model.Resource, len(ds.Resources))
	for i := range ds.Resources {
		byID[ds.Resources[i].ID] = &ds.Resources[i]
	}
	grantsPerm := map[string]bool{}
	for _, r := range ds.Roles {
		for _, p := range r.Permissions {
			grantsPerm[r.Key()] = grantsPerm[r.Key()] || p == benchPerm
		}
	}
	roleHas := func(org, slug string) bool { return grantsPerm[model.RoleKey(org, slug)] || grantsPerm[slug] }
	members := make(map[string]*model.Membership, len(ds.Memberships))
	for i := range ds.Memberships {
		members[ds.Memberships[i].ID] = &ds.Memberships[i]
	}
	held := map[[2]string]bool{} // (membership, resource) with a role granting benchPerm
	for _, a := range ds.Assignments {
		if roleHas(members[a.MembershipID].OrganizationID, a.RoleSlug) {
			held[[2]string{a.MembershipID, a.ResourceID}] = true
		}
	}
	// The workspace above each depth-5 leaf, and the leaf's path below it.
	type path struct{ leaf, ws string }
	var leaves []path
	for _, r := range ds.Resources {
		if r.Type != benchLeafType {
			continue
		}
		chain := []string{r.ID}
		for p := r.ParentID; p != ""; p = byID[p].ParentID {
			chain = append(chain, p)
		}
		if len(chain) == 4 {
			leaves = append(leaves, path{r.ID, chain[3]})
		}
	}
	under := map[string][]string{}
	for _, l := range leaves {
		under[l.ws] = append(under[l.ws], l.leaf)
	}

assignments:
	for _, a := range ds.Assignments {
		m := members[a.MembershipID]
		if m.Status != model.StatusActive || byID[a.ResourceID].Type != "workspace" || !roleHas(m.OrganizationID, a.RoleSlug) {
			continue
		}
		for _, slug := range m.RoleSlugs {
			if roleHas(m.OrganizationID, slug) {
				continue assignments
			}
		}
		for _, leaf := range under[a.ResourceID] {
			unheld := true
			for p := leaf; p != a.ResourceID; p = byID[p].ParentID {
				unheld = unheld && !held[[2]string{m.ID, p}]
			}
			if unheld {
				return benchFixture{org: m.OrganizationID, membership: m.ID, workspace: a.ResourceID, leaf: leaf}, true
			}
		}
	}
	return benchFixture{}, false
}
