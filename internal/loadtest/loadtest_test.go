package loadtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
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

// fakeSigner "signs" by naming the membership, so a fake server can answer
// from the oracle.
type fakeSigner struct{}

func (fakeSigner) Sign(c map[string]any) (string, error) {
	return c["organization_membership_id"].(string), nil
}

func smallSpec() gen.Spec {
	return gen.Spec{Seed: 3, Organizations: 3, Resources: 200, Assignments: 200, MembershipsPerOrg: 6, Depth: 4, Skew: 1.1, InactiveRatio: 0.2}
}

func TestMixAndRun(t *testing.T) {
	ds := gen.Generate(smallSpec())
	o := loadtest.NewOracle(ds)
	mix, err := loadtest.BuildMix(ds, o, fakeSigner{}, loadtest.MixConfig{Seed: 1, Size: 500, Tokens: 6, Issuer: "iss"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{loadtest.KindToken, loadtest.KindAssignment, loadtest.KindDeny} {
		n, allowed := mix.Count(kind)
		if n == 0 {
			t.Errorf("no %s checks in the mix", kind)
		}
		if kind == loadtest.KindDeny && allowed != 0 {
			t.Errorf("%d deny checks are allowed", allowed)
		}
	}

	// A server that answers the mix's expectations passes; one that always
	// allows is caught.
	want := map[string]bool{}
	for _, r := range mix.Requests {
		want[r.Token+" "+r.Permission+" "+r.ResourceID] = r.Want
	}
	honest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in struct{ Token, Permission string }
		var rid struct {
			Resource struct{ ID string }
		}
		_ = jsonUnmarshal(body, &in)
		_ = jsonUnmarshal(body, &rid)
		if want[in.Token+" "+in.Permission+" "+rid.Resource.ID] {
			_, _ = io.WriteString(w, `{"allowed":true}`)
		} else {
			_, _ = io.WriteString(w, `{"allowed":false}`)
		}
	}))
	defer honest.Close()
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"allowed":true}`)
	}))
	defer liar.Close()

	cfg := loadtest.Config{Connections: 4, Duration: time.Second, MaxRequests: 300}
	res, err := loadtest.Run(context.Background(), loadtest.Target{Name: "honest", URL: honest.URL, Body: loadtest.TrellisBody, Allowed: loadtest.TrellisAllowed, Verify: true}, mix, cfg)
	if err != nil || res.Wrong != 0 || res.Errors != 0 || res.Requests == 0 {
		t.Errorf("honest server: %+v, %v", res, err)
	}
	res, err = loadtest.Run(context.Background(), loadtest.Target{Name: "liar", URL: liar.URL, Body: loadtest.TrellisBody, Allowed: loadtest.TrellisAllowed, Verify: true}, mix, cfg)
	if !errors.Is(err, loadtest.ErrWrongAnswer) || res.Wrong == 0 {
		t.Errorf("always-allow server: wrong %d, err %v; want ErrWrongAnswer", res.Wrong, err)
	}
	_, err = loadtest.Run(context.Background(), loadtest.Target{Name: "far", URL: "http://192.0.2.1/v1/check", Body: loadtest.TrellisBody, Allowed: loadtest.TrellisAllowed}, mix, cfg)
	if !errors.Is(err, loadtest.ErrNotLoopback) {
		t.Errorf("non-loopback target: err %v, want ErrNotLoopback", err)
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
