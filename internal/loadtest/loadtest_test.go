package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/loadtest"
	"github.com/trellis-authz/trellis/internal/model"
)

// tiny is a hand-made dataset: org_a root → ws (workspace) → proj (project),
// org_b root → other (workspace).
func tiny() *model.Dataset {
	return &model.Dataset{
		Organizations: []model.Organization{{ID: "org_a"}, {ID: "org_b"}},
		ResourceTypes: []model.ResourceType{
			{Slug: "workspace", ParentTypes: []string{"organization"}},
			{Slug: "project", ParentTypes: []string{"workspace"}},
		},
		Permissions: []model.Permission{
			{Slug: "org:view", ResourceType: "organization"},
			{Slug: "workspace:view", ResourceType: "workspace"},
			{Slug: "project:edit", ResourceType: "project"},
		},
		Roles: []model.Role{
			{Slug: "member", ResourceType: "organization", Permissions: []string{"org:view"}},
			{Slug: "ws-admin", ResourceType: "workspace", Permissions: []string{"workspace:view", "project:edit"}},
			// One organization-role slug names a different role in each
			// organization.
			{Slug: "ws-custom", ResourceType: "workspace", OrganizationID: "org_a", Permissions: []string{"workspace:view", "project:edit"}},
			{Slug: "ws-custom", ResourceType: "workspace", OrganizationID: "org_b", Permissions: []string{"workspace:view"}},
		},
		Memberships: []model.Membership{
			{ID: "om_a", UserID: "u1", OrganizationID: "org_a", Status: model.StatusActive, RoleSlugs: []string{"member"}},
			{ID: "om_off", UserID: "u2", OrganizationID: "org_a", Status: model.StatusInactive, RoleSlugs: []string{"member"}},
			{ID: "om_b", UserID: "u3", OrganizationID: "org_b", Status: model.StatusActive},
		},
		Resources: []model.Resource{
			{ID: "ws", OrganizationID: "org_a", Type: "workspace", ExternalID: "ws"},
			{ID: "proj", OrganizationID: "org_a", Type: "project", ExternalID: "proj", ParentID: "ws"},
			{ID: "other", OrganizationID: "org_b", Type: "workspace", ExternalID: "other"},
		},
		Assignments: []model.Assignment{
			{ID: "a1", MembershipID: "om_a", RoleSlug: "ws-admin", ResourceID: "ws"},
			{ID: "a2", MembershipID: "om_off", RoleSlug: "ws-admin", ResourceID: "ws"},
			{ID: "a3", MembershipID: "om_b", RoleSlug: "ws-custom", ResourceID: "other"},
		},
	}
}

func TestOracle(t *testing.T) {
	ds := tiny()
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
	o := loadtest.NewOracle(ds)
	a := loadtest.Claims{OrgID: "org_a", MembershipID: "om_a"}
	rootA := model.RootResourceID("org_a")
	tests := []struct {
		name   string
		claims loadtest.Claims
		perm   string
		rid    string
		want   bool
	}{
		{"assignment on the resource", a, "workspace:view", "ws", true},
		{"assignment on the parent", a, "project:edit", "proj", true},
		{"organization role on the root", a, "org:view", rootA, true},
		{"organization role reaches descendants", a, "org:view", "proj", true},
		{"assignment does not reach the parent", a, "project:edit", rootA, false},
		{"no role grants it", a, "workspace:view", rootA, false},
		{"other organization", a, "workspace:view", "other", false},
		{"unknown resource", a, "workspace:view", "nope", false},
		{"unknown permission", a, "nope:nope", "ws", false},
		{"inactive membership", loadtest.Claims{OrgID: "org_a", MembershipID: "om_off"}, "project:edit", "proj", false},
		{"token org differs from membership org", loadtest.Claims{OrgID: "org_b", MembershipID: "om_a"}, "project:edit", "proj", false},
		{"unknown membership", loadtest.Claims{OrgID: "org_a", MembershipID: "om_x"}, "project:edit", "proj", false},
		{"token rule", loadtest.Claims{OrgID: "org_a", Permissions: []string{"project:edit"}}, "project:edit", "ws", true},
		{"token rule needs the resource's org", loadtest.Claims{OrgID: "org_b", Permissions: []string{"project:edit"}}, "project:edit", "ws", false},
		{"token rule needs a known permission", loadtest.Claims{OrgID: "org_a", Permissions: []string{"x:y"}}, "x:y", "ws", false},
		{"organization role resolves in the membership's organization", loadtest.Claims{OrgID: "org_b", MembershipID: "om_b"}, "project:edit", "other", false},
		{"organization role grants its own permissions", loadtest.Claims{OrgID: "org_b", MembershipID: "om_b"}, "workspace:view", "other", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := o.Allowed(tt.claims, tt.perm, tt.rid); got != tt.want {
				t.Errorf("Allowed(%+v, %s, %s) = %t, want %t", tt.claims, tt.perm, tt.rid, got, tt.want)
			}
		})
	}
}

func TestOracleList(t *testing.T) {
	ds := tiny()
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
	o := loadtest.NewOracle(ds)
	a := loadtest.Claims{OrgID: "org_a", MembershipID: "om_a"}
	rootA := model.RootResourceID("org_a") // "authz_resource_root_org_a" sorts before "proj" and "ws"
	tests := []struct {
		name     string
		claims   loadtest.Claims
		perm     string
		limit    int
		want     []string
		wantMore bool
	}{
		{"organization role: the whole organization, root included", a, "org:view", 100, []string{rootA, "ws", "proj"}, false},
		// No type filter: the anchor is listed with its whole subtree
		// whatever the permission's resource type, as
		// policies/trellis/discovery.rego does.
		{"assignment: its subtree, in tree order", a, "workspace:view", 100, []string{"ws", "proj"}, false},
		{"first page of one", a, "project:edit", 1, []string{"ws"}, true},
		{"page exactly full", a, "project:edit", 2, []string{"ws", "proj"}, false},
		{"no grant carries it", a, "nope:nope", 100, nil, false},
		{"inactive membership", loadtest.Claims{OrgID: "org_a", MembershipID: "om_off"}, "project:edit", 100, nil, false},
		{"token rule: every resource", loadtest.Claims{OrgID: "org_a", Permissions: []string{"workspace:view"}}, "workspace:view", 100, []string{rootA, "ws", "proj"}, false},
		{"token organization differs from membership's", loadtest.Claims{OrgID: "org_b", MembershipID: "om_a"}, "project:edit", 100, nil, false},
		{"organization role resolves in the membership's organization", loadtest.Claims{OrgID: "org_b", MembershipID: "om_b"}, "project:edit", 100, nil, false},
		{"other organization", loadtest.Claims{OrgID: "org_b", MembershipID: "om_b"}, "workspace:view", 100, []string{"other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := o.List(tt.claims, tt.perm, tt.limit)
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" || more != tt.wantMore {
				t.Errorf("List(%+v, %s, %d): more %t, want %t; ids (-want +got):\n%s", tt.claims, tt.perm, tt.limit, more, tt.wantMore, diff)
			}
		})
	}
}

// TestOracleListMatchesAllowed checks List against Allowed over every
// resource, for every membership and permission of a generated dataset.
func TestOracleListMatchesAllowed(t *testing.T) {
	ds := gen.Generate(smallSpec())
	o := loadtest.NewOracle(ds)
	byOrg := map[string][]string{}
	for _, org := range ds.Organizations {
		byOrg[org.ID] = append(byOrg[org.ID], org.RootID())
	}
	for _, r := range ds.Resources {
		byOrg[r.OrganizationID] = append(byOrg[r.OrganizationID], r.ID)
	}
	tree := enginetest.NewOracle(ds) // its Path is the tree order's key
	for _, m := range ds.Memberships {
		c, _ := o.Claims(m.ID)
		// Without the token's permissions, only the data rule lists.
		for _, claims := range []loadtest.Claims{c, {OrgID: c.OrgID, MembershipID: c.MembershipID}} {
			for _, p := range ds.Permissions {
				var want []string
				for _, rid := range byOrg[c.OrgID] {
					if o.Allowed(claims, p.Slug, rid) {
						want = append(want, rid)
					}
				}
				slices.SortFunc(want, func(a, b string) int { return slices.Compare(tree.Path(a), tree.Path(b)) })
				got, more := o.List(claims, p.Slug, 1<<20)
				if diff := cmp.Diff(want, got, cmpEmpty); diff != "" || more {
					t.Fatalf("membership %s (token permissions %v), %s: more %t; List differs from Allowed (-allowed +listed):\n%s", m.ID, claims.Permissions, p.Slug, more, diff)
				}
				if len(want) > 3 {
					page, more := o.List(claims, p.Slug, 3)
					if !slices.Equal(page, want[:3]) || !more {
						t.Fatalf("membership %s, %s: first page of 3 is %v (more %t), want %v and more", m.ID, p.Slug, page, more, want[:3])
					}
				}
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample", ms(7), 0.999, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p90 of 1..100", hundred, 0.9, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 0.99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the max", hundred, 0.999, 100 * time.Millisecond},
		{"p100", hundred, 1, 100 * time.Millisecond},
		{"tiny q is the min", hundred, 0.0001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadtest.Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(q=%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	got := loadtest.Summarize(ms(5, 1, 4, 2, 3))
	want := loadtest.Percentiles{P50: 3 * time.Millisecond, P90: 5 * time.Millisecond, P99: 5 * time.Millisecond, P999: 5 * time.Millisecond, Max: 5 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
}

// fakeSigner "signs" by naming the membership and the jti, so a fake
// server can tell the tokens apart without verifying them.
type fakeSigner struct{}

func (fakeSigner) Sign(c map[string]any) (string, error) {
	jti, _ := c["jti"].(string)
	return c["organization_membership_id"].(string) + "." + jti, nil
}

func smallSpec() gen.Spec {
	return gen.Spec{Seed: 3, Organizations: 3, Resources: 200, Assignments: 200, MembershipsPerOrg: 6, Depth: 4, Skew: 1.1, InactiveRatio: 0.2}
}

// smallMix returns a mix over smallSpec with the default shares.
func smallMix(t testing.TB, size int) (*model.Dataset, *loadtest.Oracle, *loadtest.Mix) {
	t.Helper()
	ds := gen.Generate(smallSpec())
	o := loadtest.NewOracle(ds)
	mix, err := loadtest.BuildMix(ds, o, fakeSigner{}, loadtest.MixConfig{Seed: 1, Size: size, Tokens: 6, Issuer: "iss", BatchSize: 10, ListLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	return ds, o, mix
}

func TestMixShares(t *testing.T) {
	_, o, mix := smallMix(t, 4000)
	if got := len(mix.Requests); got != 4000 {
		t.Fatalf("mix has %d requests, want 4000", got)
	}
	total := 0
	for _, k := range loadtest.Kinds {
		total += loadtest.DefaultShares.Of(k)
	}
	for _, kind := range loadtest.Kinds {
		c := mix.Count(kind)
		want := float64(len(mix.Requests)) * float64(loadtest.DefaultShares.Of(kind)) / float64(total)
		// Requests a subject cannot ask are redrawn, which moves the
		// shares a little.
		if got := float64(c.Requests); got < 0.7*want || got > 1.3*want {
			t.Errorf("%s: %d requests, want about %.0f", kind, c.Requests, want)
		}
		if kind == loadtest.KindDeny && c.Allowed != 0 {
			t.Errorf("%d deny checks are allowed", c.Allowed)
		}
	}
	if c := mix.Count(loadtest.KindList); c.IDs == 0 || c.Empty == c.Requests {
		t.Errorf("list requests expect no ids at all: %+v", c)
	}

	tokens := map[string]string{} // token → kind that uses it
	for i, r := range mix.Requests {
		switch r.Kind {
		case loadtest.KindBatch:
			if len(r.Checks) != 10 {
				t.Errorf("request %d: batch of %d checks, want 10", i, len(r.Checks))
			}
		case loadtest.KindList:
			if r.List == nil || r.Checks != nil {
				t.Fatalf("request %d: list request %+v", i, r)
			}
			claims := claimsOf(t, o, r.Token)
			ids, more := o.List(claims, r.List.Permission, 20)
			if !slices.Equal(ids, r.List.Want) || more != r.List.WantMore {
				t.Errorf("request %d: list expects %v (more %t), the oracle lists %v (more %t)", i, r.List.Want, r.List.WantMore, ids, more)
			}
		default:
			if len(r.Checks) != 1 || r.List != nil {
				t.Errorf("request %d: %s request with %d checks", i, r.Kind, len(r.Checks))
			}
		}
		if r.Kind == loadtest.KindFresh {
			if _, seen := tokens[r.Token]; seen {
				t.Errorf("request %d: fresh token %q is used twice", i, r.Token)
			}
		} else if kind, seen := tokens[r.Token]; seen && kind == loadtest.KindFresh {
			t.Errorf("request %d: %s request reuses the fresh token %q", i, r.Kind, r.Token)
		}
		tokens[r.Token] = r.Kind
	}
	if n := mix.Count(loadtest.KindFresh).Requests; mix.FreshTokens != n {
		t.Errorf("FreshTokens = %d, want one per fresh request (%d)", mix.FreshTokens, n)
	}

	// A zero share leaves its kind out; a negative one is an error.
	ds := gen.Generate(smallSpec())
	only, err := loadtest.BuildMix(ds, o, fakeSigner{}, loadtest.MixConfig{Seed: 1, Size: 200, Issuer: "iss", Shares: loadtest.Shares{Assignment: 1, List: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range loadtest.Kinds {
		n := only.Count(kind).Requests
		if (kind == loadtest.KindAssignment || kind == loadtest.KindList) != (n > 0) {
			t.Errorf("shares assignment=1,list=1: %d %s requests", n, kind)
		}
	}
	if _, err := loadtest.BuildMix(ds, o, fakeSigner{}, loadtest.MixConfig{Issuer: "iss", Shares: loadtest.Shares{Token: 1, Deny: -1}}); err == nil {
		t.Error("a negative share: no error")
	}
}

// claimsOf returns the claims of a fakeSigner token.
func claimsOf(t testing.TB, o *loadtest.Oracle, raw string) loadtest.Claims {
	t.Helper()
	id, _, _ := strings.Cut(raw, ".")
	c, ok := o.Claims(id)
	if !ok {
		t.Fatalf("token %q names no membership", raw)
	}
	return c
}

func TestSharesString(t *testing.T) {
	got := loadtest.DefaultShares.String()
	want := "token=25,token-fresh=5,assignment=40,deny=20,batch=5,list=5"
	if got != want {
		t.Errorf("DefaultShares.String() = %q, want %q", got, want)
	}
	var s loadtest.Shares
	if err := s.Set("nope", 1); err == nil {
		t.Error("Set of an unknown kind: no error")
	}
	if err := s.Set(loadtest.KindBatch, -1); err == nil {
		t.Error("Set of a negative share: no error")
	}
}

func TestVerify(t *testing.T) {
	batch := loadtest.Request{Kind: loadtest.KindBatch, Checks: []loadtest.Check{
		{Permission: "p", ResourceID: "r1", Want: true},
		{Permission: "p", ResourceID: "r2", Want: false},
		{Permission: "p", ResourceID: "r3", Want: true},
	}}
	list := loadtest.Request{Kind: loadtest.KindList, List: &loadtest.List{Permission: "p", Limit: 2, Want: []string{"a", "b"}, WantMore: true}}
	empty := loadtest.Request{Kind: loadtest.KindList, List: &loadtest.List{Permission: "p", Limit: 2}}
	tests := []struct {
		name    string
		req     loadtest.Request
		ans     loadtest.Answer
		wantErr string // "" for no error
	}{
		{"batch right", batch, loadtest.Answer{Allowed: []bool{true, false, true}}, ""},
		{"batch with one wrong element", batch, loadtest.Answer{Allowed: []bool{true, false, false}}, "check 3 of 3, p on r3: got allowed=false, want true"},
		{"batch too short", batch, loadtest.Answer{Allowed: []bool{true, false}}, "got 2 decisions for 3 checks"},
		{"list right", list, loadtest.Answer{IDs: []string{"a", "b"}, More: true}, ""},
		{"list with another id", list, loadtest.Answer{IDs: []string{"a", "c"}, More: true}, "list p: got 2 ids"},
		{"list in another order", list, loadtest.Answer{IDs: []string{"b", "a"}, More: true}, "list p: got 2 ids"},
		{"list without a next page", list, loadtest.Answer{IDs: []string{"a", "b"}}, "got more=false, want true"},
		{"empty list, nil and empty alike", empty, loadtest.Answer{IDs: []string{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Verify(tt.ans)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Verify: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Verify: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	check := loadtest.Request{Kind: loadtest.KindToken, Checks: []loadtest.Check{{Permission: "p", ResourceID: "r"}}}
	batch := loadtest.Request{Kind: loadtest.KindBatch, Checks: make([]loadtest.Check, 2)}
	list := loadtest.Request{Kind: loadtest.KindList, List: &loadtest.List{Permission: "p", Limit: 2}}
	tests := []struct {
		name    string
		api     loadtest.API
		req     loadtest.Request
		body    string
		want    loadtest.Answer
		wantErr bool
	}{
		{"trellis check", loadtest.TrellisAPI{}, check, `{"allowed":true,"decided_by":"token"}`, loadtest.Answer{Allowed: []bool{true}}, false},
		{"trellis check without allowed", loadtest.TrellisAPI{}, check, `{"code":"x"}`, loadtest.Answer{}, true},
		{"trellis batch", loadtest.TrellisAPI{}, batch, `{"results":[{"allowed":true},{"allowed":false}],"revision":1}`, loadtest.Answer{Allowed: []bool{true, false}}, false},
		{"trellis batch element without allowed", loadtest.TrellisAPI{}, batch, `{"results":[{"allowed":true},{}]}`, loadtest.Answer{}, true},
		{"trellis list", loadtest.TrellisAPI{}, list, `{"resource_ids":["a","b"],"next_cursor":"b","revision":1}`, loadtest.Answer{IDs: []string{"a", "b"}, More: true}, false},
		{"trellis empty list", loadtest.TrellisAPI{}, list, `{"revision":1}`, loadtest.Answer{}, false},
		{"trellis failed list", loadtest.TrellisAPI{}, list, `{"reason":{"code":"unknown_permission"}}`, loadtest.Answer{}, true},
		{"opa check", loadtest.OPAAPI{}, check, `{"result":{"allowed":false}}`, loadtest.Answer{Allowed: []bool{false}}, false},
		{"opa undefined", loadtest.OPAAPI{}, check, `{}`, loadtest.Answer{}, true},
		{"opa batch", loadtest.OPAAPI{}, batch, `{"result":[{"allowed":false},{"allowed":true}]}`, loadtest.Answer{Allowed: []bool{false, true}}, false},
		{"opa list", loadtest.OPAAPI{}, list, `{"result":{"ids":["a"],"has_more":false}}`, loadtest.Answer{IDs: []string{"a"}}, false},
		{"opa failed list", loadtest.OPAAPI{}, list, `{"result":{"ids":[],"reason":{"code":"token_expired"}}}`, loadtest.Answer{}, true},
		{"opa-minimal allow", loadtest.MinimalAPI{}, check, `{"result":true}`, loadtest.Answer{Allowed: []bool{true}}, false},
		{"opa-minimal deny", loadtest.MinimalAPI{}, check, `{"result":false}`, loadtest.Answer{Allowed: []bool{false}}, false},
		{"opa-minimal undefined", loadtest.MinimalAPI{}, check, `{}`, loadtest.Answer{}, true},
		{"opa-minimal not a boolean", loadtest.MinimalAPI{}, check, `{"result":{"allowed":true}}`, loadtest.Answer{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.api.Decode(tt.req, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decode: %v, want error %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" && !tt.wantErr {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	batch := loadtest.Request{Kind: loadtest.KindBatch, Token: "t", Checks: []loadtest.Check{{Permission: "p", ResourceID: "r1"}, {Permission: "q", ResourceID: "r2"}}}
	list := loadtest.Request{Kind: loadtest.KindList, Token: "t", List: &loadtest.List{Permission: "p", Limit: 100}}
	check := loadtest.Request{Kind: loadtest.KindFresh, Token: "t", Checks: []loadtest.Check{{Permission: "p", ResourceID: "r"}}}
	tests := []struct {
		name       string
		api        loadtest.API
		req        loadtest.Request
		path, body string
	}{
		{"trellis check", loadtest.TrellisAPI{}, check, "/v1/check", `{"token":"t","permission":"p","resource":{"id":"r"}}`},
		{"trellis batch", loadtest.TrellisAPI{}, batch, "/v1/check/batch", `{"token":"t","checks":[{"permission":"p","resource":{"id":"r1"}},{"permission":"q","resource":{"id":"r2"}}]}`},
		{"trellis list", loadtest.TrellisAPI{}, list, "/v1/list-resources", `{"token":"t","permission":"p","limit":100}`},
		{"opa check", loadtest.OPAAPI{}, check, "/v1/data/trellis/edge/check", `{"input":{"token":"t","permission":"p","resource":{"id":"r"}}}`},
		{"opa batch", loadtest.OPAAPI{}, batch, "/v1/data/trellis/edge/batch", `{"input":{"token":"t","checks":[{"permission":"p","resource":{"id":"r1"}},{"permission":"q","resource":{"id":"r2"}}]}}`},
		{"opa list", loadtest.OPAAPI{}, list, "/v1/data/trellis/edge/list_resources", `{"input":{"token":"t","permission":"p","limit":100}}`},
		{"opa-minimal check", loadtest.MinimalAPI{}, check, "/v1/data/baseline/allow", `{"input":{"token":"t","permission":"p","resource":"r"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, body, err := tt.api.Encode(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if path != tt.path || string(body) != tt.body {
				t.Errorf("Encode = %s %s, want %s %s", path, body, tt.path, tt.body)
			}
		})
	}
	if _, _, err := (loadtest.TrellisAPI{}).Encode(loadtest.Request{Kind: loadtest.KindToken}); err == nil {
		t.Error("Encode of a request with no question: no error")
	}
	for _, r := range []loadtest.Request{batch, list, {Kind: loadtest.KindToken}} {
		if _, _, err := (loadtest.MinimalAPI{}).Encode(r); err == nil {
			t.Errorf("opa-minimal Encode of a %s request with %d checks: no error", r.Kind, len(r.Checks))
		}
	}
}

// answers is a fake Trellis that answers each request of a mix as the
// oracle expects, looked up by its body; corrupt may change an answer.
func answers(t testing.TB, mix *loadtest.Mix, corrupt func(loadtest.Request, *loadtest.Answer)) http.Handler {
	t.Helper()
	byBody := map[string]loadtest.Request{}
	for _, r := range mix.Requests {
		_, body, err := loadtest.TrellisAPI{}.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		byBody[string(body)] = r
	}
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		body, _ := io.ReadAll(hr.Body)
		r, ok := byBody[string(body)]
		if !ok {
			http.Error(w, "unknown request", http.StatusBadRequest)
			return
		}
		var a loadtest.Answer
		if r.List != nil {
			a.IDs, a.More = r.List.Want, r.List.WantMore
		}
		for _, q := range r.Checks {
			a.Allowed = append(a.Allowed, q.Want)
		}
		if corrupt != nil {
			corrupt(r, &a)
		}
		var out any
		switch {
		case r.List != nil:
			next := ""
			if a.More {
				next = a.IDs[len(a.IDs)-1]
			}
			out = map[string]any{"resource_ids": a.IDs, "next_cursor": next}
		case r.Kind == loadtest.KindBatch:
			var rs []map[string]bool
			for _, ok := range a.Allowed {
				rs = append(rs, map[string]bool{"allowed": ok})
			}
			out = map[string]any{"results": rs}
		default:
			out = map[string]bool{"allowed": a.Allowed[0]}
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

func TestRun(t *testing.T) {
	_, _, mix := smallMix(t, 500)
	flipOneOfBatch := func(r loadtest.Request, a *loadtest.Answer) {
		if r.Kind == loadtest.KindBatch {
			a.Allowed[len(a.Allowed)/2] = !a.Allowed[len(a.Allowed)/2]
		}
	}
	dropFromList := func(r loadtest.Request, a *loadtest.Answer) {
		if r.List != nil && len(a.IDs) > 1 {
			a.IDs = a.IDs[1:]
		}
	}
	alwaysAllow := func(r loadtest.Request, a *loadtest.Answer) {
		for i := range a.Allowed {
			a.Allowed[i] = true
		}
	}
	tests := []struct {
		name    string
		corrupt func(loadtest.Request, *loadtest.Answer)
		// wrong is part of the first wrong answer's description; "" for
		// an honest server.
		wrong string
	}{
		{"honest", nil, ""},
		{"one wrong element per batch", flipOneOfBatch, "batch: check "},
		{"list missing its first id", dropFromList, "list: list "},
		{"always allow", alwaysAllow, "want false"},
	}
	cfg := loadtest.Config{Connections: 4, Duration: 5 * time.Second, MaxRequests: 1200}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(answers(t, mix, tt.corrupt))
			defer srv.Close()
			res, err := loadtest.Run(context.Background(), loadtest.Target{Name: tt.name, Base: srv.URL, API: loadtest.TrellisAPI{}, Verify: true}, mix, cfg)
			if res.Errors != 0 || res.Requests == 0 {
				t.Fatalf("%d requests, %d errors, first: %s", res.Requests, res.Errors, res.FirstError)
			}
			if tt.wrong == "" {
				if err != nil || res.Wrong != 0 {
					t.Errorf("honest server: %d wrong, err %v", res.Wrong, err)
				}
			} else {
				if !errors.Is(err, loadtest.ErrWrongAnswer) || res.Wrong == 0 {
					t.Errorf("wrong %d, err %v; want ErrWrongAnswer", res.Wrong, err)
				}
				if !strings.Contains(res.FirstWrong, tt.wrong) {
					t.Errorf("first wrong answer %q, want it to contain %q", res.FirstWrong, tt.wrong)
				}
			}
			var byKind int64
			for _, k := range res.Kinds {
				byKind += k.Requests
			}
			if byKind != res.Requests {
				t.Errorf("kinds add up to %d requests, want %d", byKind, res.Requests)
			}
		})
	}

	_, err := loadtest.Run(context.Background(), loadtest.Target{Name: "far", Base: "http://192.0.2.1", API: loadtest.TrellisAPI{}}, mix, cfg)
	if !errors.Is(err, loadtest.ErrNotLoopback) {
		t.Errorf("non-loopback target: err %v, want ErrNotLoopback", err)
	}
}

// TestRunTimeline checks the second-by-second latency of an open loop:
// requests count in the second they were scheduled in, so a run of 1,000
// at 400/s spans three seconds of 400, 400 and 200.
func TestRunTimeline(t *testing.T) {
	_, _, mix := smallMix(t, 500)
	srv := httptest.NewServer(answers(t, mix, nil))
	defer srv.Close()
	cfg := loadtest.Config{Connections: 4, Duration: 10 * time.Second, Rate: 400, MaxRequests: 1000}
	res, err := loadtest.Run(context.Background(), loadtest.Target{Name: "open", Base: srv.URL, API: loadtest.TrellisAPI{}, Verify: true}, mix, cfg)
	if err != nil || res.Errors != 0 {
		t.Fatalf("run: %v, %d errors", err, res.Errors)
	}
	var counts []int64
	for _, s := range res.Timeline {
		counts = append(counts, s.Requests)
		if s.P50 > s.P99 || s.P99 > res.Latency.Max {
			t.Errorf("second %+v: p50 above p99, or p99 above the run's max %v", s, res.Latency.Max)
		}
	}
	want := []int64{400, 400, 200}
	if len(counts) != len(want) {
		t.Fatalf("timeline counts %v, want about %v", counts, want)
	}
	for i := range want {
		if d := counts[i] - want[i]; d < -5 || d > 5 {
			t.Errorf("timeline counts %v, want about %v", counts, want)
		}
	}
}

func TestWriteTimelineSVG(t *testing.T) {
	results := []loadtest.Result{
		{Target: "trellis <a>", Latency: loadtest.Percentiles{P99: 7 * time.Millisecond}, Timeline: []loadtest.Second{
			{Requests: 10, P50: time.Millisecond, P99: 3 * time.Millisecond}, {}, {Requests: 5, P50: time.Millisecond, P99: 7 * time.Millisecond}}},
		{Target: "ceiling", Timeline: []loadtest.Second{{Requests: 10, P99: time.Millisecond}}},
	}
	var buf bytes.Buffer
	if err := loadtest.WriteTimelineSVG(&buf, "p99 & time", results); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Lines []struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Texts []string `xml:"text"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if len(doc.Lines) != 2 || len(strings.Fields(doc.Lines[0].Points)) != 2 || len(strings.Fields(doc.Lines[1].Points)) != 1 {
		t.Fatalf("polylines %+v, want two, of 2 points (the empty second left out) and 1", doc.Lines)
	}
	// The axis tops out at 10 ms, the nice ceiling of the largest p99.
	if !slices.Contains(doc.Texts, "10 ms") || !slices.Contains(doc.Texts, "trellis <a> (p99 7.00 ms)") {
		t.Errorf("texts %q lack the 10 ms axis label or the escaped legend", doc.Texts)
	}
}

func TestRunFreshTokens(t *testing.T) {
	_, _, mix := smallMix(t, 500)
	fresh := map[string]bool{} // bodies of the fresh-token requests
	for _, r := range mix.Requests {
		if r.Kind == loadtest.KindFresh {
			_, body, _ := loadtest.TrellisAPI{}.Encode(r)
			fresh[string(body)] = true
		}
	}
	n := int64(len(fresh))
	if n == 0 {
		t.Fatal("no fresh-token requests in the mix")
	}
	var got atomic.Int64 // fresh-token requests the server received
	h := answers(t, mix, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fresh[string(body)] {
			got.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// One connection sends exactly MaxRequests requests: whole passes
	// through the mix. Only the first measured pass sends new tokens, and
	// the warmup sends no fresh-token request at all.
	tests := []struct {
		name   string
		warmup time.Duration
		passes int64
	}{
		{"no warmup, two passes", 0, 2},
		{"warmup of several passes, then one", 300 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got.Store(0)
			cfg := loadtest.Config{Connections: 1, Warmup: tt.warmup, Duration: 10 * time.Second, MaxRequests: tt.passes * int64(len(mix.Requests))}
			res, err := loadtest.Run(context.Background(), loadtest.Target{Name: "fresh", Base: srv.URL, API: loadtest.TrellisAPI{}, Verify: true}, mix, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.FreshSent != tt.passes*n || res.FreshFirst != n {
				t.Errorf("fresh sent %d, first %d; want %d and %d", res.FreshSent, res.FreshFirst, tt.passes*n, n)
			}
			if got.Load() != tt.passes*n {
				t.Errorf("the server got %d fresh-token requests, want %d", got.Load(), tt.passes*n)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		samples []int64
		want    loadtest.RSSSpread
	}{
		{"none", nil, loadtest.RSSSpread{}},
		{"one", []int64{100 * mib}, loadtest.RSSSpread{Samples: 1, Min: 100 * mib, Max: 100 * mib, Mean: 100 * mib}},
		{"symmetric ±10 %", []int64{90 * mib, 100 * mib, 110 * mib}, loadtest.RSSSpread{Samples: 3, Min: 90 * mib, Max: 110 * mib, Mean: 100 * mib, Deviation: 10}},
		// The mean is 100: the low outlier is 40 % below it, further
		// than the highs are above it.
		{"one low outlier", []int64{60, 110, 110, 120}, loadtest.RSSSpread{Samples: 4, Min: 60, Max: 120, Mean: 100, Deviation: 40}},
		{"growing", []int64{80, 100, 120}, loadtest.RSSSpread{Samples: 3, Min: 80, Max: 120, Mean: 100, Deviation: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadtest.Spread(tt.samples)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("Spread(%v) (-want +got):\n%s", tt.samples, diff)
			}
		})
	}
}

func TestTables(t *testing.T) {
	results := []loadtest.Result{
		{Target: "trellis", Verified: true, Elapsed: time.Second, Requests: 1000, FreshSent: 50, FreshFirst: 20,
			Kinds:  []loadtest.KindResult{{Kind: loadtest.KindToken, Requests: 950}, {Kind: loadtest.KindFresh, Requests: 50}},
			Server: &loadtest.ProcUsage{RSSSpread: loadtest.Spread([]int64{90 << 20, 110 << 20})}},
		{Target: "trellis @ 50 %", Rate: 500, Elapsed: time.Second, Requests: 500},
		{Target: "stock opa", Elapsed: time.Second, Requests: 250},
	}
	table := loadtest.Table(results)
	for _, want := range []string{"| trellis | 1000 |", "| 0 | 0 | 90 MiB / 110 MiB | 10.0 % |", "| 1.00× |\n", "| — |\n", "| 0 | n/a | — | — |", "| 4.00× |\n"} {
		if !strings.Contains(table, want) {
			t.Errorf("Table lacks %q:\n%s", want, table)
		}
	}
	kinds := loadtest.KindTable(results)
	for _, want := range []string{"| system | token | token-fresh |", "| trellis | 950 · p99 0.00 ms | 50 (20 new) · p99 0.00 ms |", "| stock opa | — | — |"} {
		if !strings.Contains(kinds, want) {
			t.Errorf("KindTable lacks %q:\n%s", want, kinds)
		}
	}
}

func TestWriteDataFileRoundTrip(t *testing.T) {
	ds := gen.Generate(smallSpec())
	var buf bytes.Buffer
	if err := loadtest.WriteDataFile(&buf, ds); err != nil {
		t.Fatal(err)
	}
	got, err := datafile.Parse(buf.Bytes(), "json")
	if err != nil {
		t.Fatalf("datafile.Parse: %v", err)
	}
	got.Revision = ds.Revision
	if diff := cmp.Diff(ds, got, cmpEmpty); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
