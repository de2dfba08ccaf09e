package authz_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/policies"
)

// wideEnv is a service on tier M+wide (gen.Spec.Wide: tier M and one
// organization of 100,010 resources), built once per process.
var wideEnv struct {
	once sync.Once
	svc  *authz.Service
	err  error
}

func wideService(b *testing.B) *authz.Service {
	b.Helper()
	wideEnv.once.Do(func() {
		ctx := context.Background()
		spec, _ := gen.Spec{Seed: 1}.Tier("M+wide")
		e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
		if err == nil {
			err = e.LoadDataset(ctx, gen.Generate(spec))
		}
		if err == nil {
			wideEnv.svc, err = authz.New(authz.Config{Engine: e})
		}
		wideEnv.err = err
	})
	if wideEnv.err != nil {
		b.Fatal(wideEnv.err)
	}
	return wideEnv.svc
}

// BenchmarkWideList lists the wide organization's resources a page of 100
// at a time, for its three memberships: one that sees all 100,010, one
// that sees a workspace (10,001), one with 50 scattered project grants
// (500). Each op is one page, the pages taken in turn from first to last
// (cursors from an earlier walk), so every page counts; it reports the
// p50 and p95 of a page ("p50-ms", "p95-ms") and the pages walked. walk_all
// walks all 100,010 by pages of 100: one op is the whole walk.
func BenchmarkWideList(b *testing.B) {
	ctx := context.Background()
	svc := wideService(b)
	req := func(after string) authz.ListRequest {
		return authz.ListRequest{Permission: "document:view", After: after, Limit: 100}
	}
	walk := func(b *testing.B, om string) []string { // the After of every page
		afters := []string{""}
		for {
			p, _, err := svc.ListResources(ctx, authz.Subject{MembershipID: om}, req(afters[len(afters)-1]), authz.Consistency{})
			if err != nil {
				b.Fatal(err)
			}
			if !p.HasMore {
				return afters
			}
			afters = append(afters, p.Positions[len(p.Positions)-1])
		}
	}
	for _, m := range []struct{ name, om string }{
		{"organization_grant", gen.WideOrgMember},
		{"workspace_grant", gen.WideWorkspaceMember},
		{"scattered_grants", gen.WideScatteredMember},
	} {
		b.Run(m.name, func(b *testing.B) {
			afters := walk(b, m.om)
			var times []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				p, _, err := svc.ListResources(ctx, authz.Subject{MembershipID: m.om}, req(afters[len(times)%len(afters)]), authz.Consistency{})
				times = append(times, time.Since(start))
				if err != nil || (len(p.IDs) != 100 && p.HasMore) {
					b.Fatalf("page: %v, %d ids", err, len(p.IDs))
				}
			}
			reportPercentiles(b, times)
			b.ReportMetric(float64(len(afters)), "pages")
		})
	}
	b.Run("walk_all", func(b *testing.B) {
		for b.Loop() {
			if n := len(walk(b, gen.WideOrgMember)); n != 1001 {
				b.Fatalf("%d pages, want 1001", n)
			}
		}
	})
}

// BenchmarkWideMembers lists the memberships that can view a document
// below the workspace where 10,000 memberships hold a role (gen.Spec.Wide),
// a page of 100, in both orders. Each op is one page, the pages taken in
// turn from first to last, as BenchmarkWideList's; it reports the p50 and
// p95 of a page and the pages walked.
func BenchmarkWideMembers(b *testing.B) {
	ctx := context.Background()
	svc := wideService(b)
	page := func(after string, desc bool) (authz.Page, error) {
		p, _, err := svc.ListMemberships(ctx, authz.MembersRequest{Permission: "document:view",
			Resource: authz.ResourceRef{ID: gen.WideCrowdedResource}, After: after, Descending: desc, Limit: 100}, authz.Consistency{})
		return p, err
	}
	for _, order := range []struct {
		name string
		desc bool
	}{{"asc", false}, {"desc", true}} {
		b.Run(order.name, func(b *testing.B) {
			afters := []string{""}
			for {
				p, err := page(afters[len(afters)-1], order.desc)
				if err != nil {
					b.Fatal(err)
				}
				if !p.HasMore {
					break
				}
				afters = append(afters, p.Positions[len(p.Positions)-1])
			}
			if len(afters) < 100 {
				b.Fatalf("%d pages: fewer than 10,000 members", len(afters))
			}
			var times []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				p, err := page(afters[len(times)%len(afters)], order.desc)
				times = append(times, time.Since(start))
				if err != nil || (len(p.IDs) != 100 && p.HasMore) {
					b.Fatalf("page: %v, %d ids", err, len(p.IDs))
				}
			}
			reportPercentiles(b, times)
			b.ReportMetric(float64(len(afters)), "pages")
		})
	}
}

// reportPercentiles reports the p50 and p95 of times ("p50-ms", "p95-ms").
func reportPercentiles(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1e6, "p50-ms")
	b.ReportMetric(float64(times[len(times)*95/100].Nanoseconds())/1e6, "p95-ms")
}
