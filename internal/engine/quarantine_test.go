package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
)

// loaded returns a new engine holding ds.
func loaded(t testing.TB, ds *model.Dataset) *engine.Engine {
	t.Helper()
	e := newEngine(t)
	if err := e.LoadDataset(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	return e
}

// orgPart returns what a data source re-reads of one organization: the
// shared data, and the organization's own rows.
func orgPart(ds *model.Dataset, org string) *model.Dataset {
	part := &model.Dataset{Revision: ds.Revision, MaxDepth: ds.MaxDepth, ResourceTypes: ds.ResourceTypes, Permissions: ds.Permissions}
	members := map[string]bool{}
	for _, o := range ds.Organizations {
		if o.ID == org {
			part.Organizations = append(part.Organizations, o)
		}
	}
	for _, r := range ds.Roles {
		if r.OrganizationID == "" || r.OrganizationID == org {
			part.Roles = append(part.Roles, r)
		}
	}
	for _, m := range ds.Memberships {
		if m.OrganizationID == org {
			part.Memberships = append(part.Memberships, m)
			members[m.ID] = true
		}
	}
	for _, r := range ds.Resources {
		if r.OrganizationID == org {
			part.Resources = append(part.Resources, r)
		}
	}
	for _, a := range ds.Assignments {
		if members[a.MembershipID] {
			part.Assignments = append(part.Assignments, a)
		}
	}
	return part
}

// heldOut returns ds without the rows of orgs, quarantined.
func heldOut(ds *model.Dataset, orgs ...string) *model.Dataset {
	return ds.Without([]model.Problem{{Entity: "test", Organizations: orgs}})
}

func sameDocument(t testing.TB, what string, got, want ast.Value) {
	t.Helper()
	if got.Compare(want) != 0 {
		t.Fatalf("%s: documents differ\n%s", what, diffKeys(got, want))
	}
}

func checkReason(t testing.TB, e *engine.Engine, om, perm, rid string) string {
	t.Helper()
	in := ast.MustInterfaceToValue(map[string]any{
		"subject":    map[string]any{"organization_membership_id": om},
		"permission": perm,
		"resource":   map[string]any{"id": rid},
	})
	res, err := e.Decide(context.Background(), engine.Check, in)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := res.Value.(map[string]any)["reason"].(map[string]any)["code"].(string)
	return code
}

func TestQuarantineAndPutOrganization(t *testing.T) {
	ctx := context.Background()
	demo := datafile.Demo()
	e := loaded(t, demo)
	whole := document(t, e)

	gen0 := e.Generations().Current()
	qs, err := e.Quarantine(ctx, []string{"org_acme"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Generations().Current() == gen0 || e.Revision() != demo.Revision {
		t.Errorf("after Quarantine: generation %d (was %d), revision %d; want a new generation of the same revision", e.Generations().Current(), gen0, e.Revision())
	}
	want := heldOut(demo, "org_acme").Quarantined[0]
	slices.Sort(want.Resources)
	slices.Sort(want.Memberships)
	got := qs[0]
	slices.Sort(got.Resources)
	slices.Sort(got.Memberships)
	if diff := cmp.Diff([2][]string{want.Resources, want.Memberships}, [2][]string{got.Resources, got.Memberships}); diff != "" {
		t.Errorf("quarantined ids (-want +got):\n%s", diff)
	}
	sameDocument(t, "quarantined in place vs built quarantined", document(t, e), document(t, loaded(t, heldOut(demo, "org_acme"))))
	if code := checkReason(t, e, "om_bob", "project:edit", "authz_resource_acme_api"); code != "organization_unavailable" {
		t.Errorf("a check in the quarantined organization answers %q", code)
	}
	if code := checkReason(t, e, "om_erin", "project:view", "authz_resource_globex_lab"); code != "role_assignment" {
		t.Errorf("a check in the other organization answers %q", code)
	}

	// A re-read that still breaks a rule keeps it quarantined, with the
	// ids of the re-read.
	bad := orgPart(demo, "org_acme")
	bad.Resources = append(slices.Clone(bad.Resources), model.Resource{ID: "authz_resource_new", OrganizationID: "org_acme", Type: "workspace", ExternalID: "new", ParentID: "authz_resource_nope"})
	isolated, err := bad.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.PutOrganization(ctx, "org_acme", isolated); err != nil {
		t.Fatal(err)
	}
	in := ast.MustInterfaceToValue(map[string]any{"permission": "workspace:view", "resource": map[string]any{"id": "authz_resource_new"}})
	if res, err := e.Decide(ctx, engine.Check, in); err != nil || !contains(res.Value, "organization_unavailable") {
		t.Errorf("a resource added while quarantined: %v, %v; want organization_unavailable", res.Value, err)
	}

	// A valid re-read swaps the organization back in.
	if err := e.PutOrganization(ctx, "org_acme", orgPart(demo, "org_acme")); err != nil {
		t.Fatal(err)
	}
	sameDocument(t, "after the valid re-read", document(t, e), whole)

	// A re-read without the organization (deleted meanwhile) removes it.
	if err := e.PutOrganization(ctx, "org_globex", orgPart(demo, "org_nope")); err != nil {
		t.Fatal(err)
	}
	gone := heldOut(demo, "org_globex")
	gone.Quarantined = nil
	sameDocument(t, "after the organization's deletion", document(t, e), document(t, loaded(t, gone)))
}

func contains(v any, code string) bool {
	r, _ := v.(map[string]any)["reason"].(map[string]any)
	return r["code"] == code
}

// Quarantining each organization of a generated dataset and putting it
// back leaves exactly the document it started from.
func TestQuarantineRoundTrip(t *testing.T) {
	ctx := context.Background()
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 4, Resources: 300, Assignments: 400, MembershipsPerOrg: 8, Depth: 5, InactiveRatio: 0.2})
	e := loaded(t, ds)
	whole := document(t, e)
	for _, o := range ds.Organizations {
		if _, err := e.Quarantine(ctx, []string{o.ID}); err != nil {
			t.Fatal(err)
		}
		sameDocument(t, "quarantined "+o.ID, document(t, e), document(t, loaded(t, heldOut(ds, o.ID))))
		if err := e.PutOrganization(ctx, o.ID, orgPart(ds, o.ID)); err != nil {
			t.Fatal(err)
		}
		sameDocument(t, "put back "+o.ID, document(t, e), whole)
	}
}

func TestApplyRefusesBrokenRules(t *testing.T) {
	ctx := context.Background()
	demo := datafile.Demo()
	demo.MaxDepth = 4 // the demo's deepest resource, an app, is at depth 4
	res := func(id, org, typ, parent string) model.Change {
		return model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: id, OrganizationID: org, Type: typ, ExternalID: id, ParentID: parent}}
	}
	assign := func(om, role, rid string) model.Change {
		return model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_x", MembershipID: om, RoleSlug: role, ResourceID: rid}}
	}
	member := func(org string, roles ...string) model.Change {
		return model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_x", UserID: "u", OrganizationID: org, Status: model.StatusActive, RoleSlugs: roles}}
	}
	tests := []struct {
		name string
		ch   model.Change
		code string
		orgs []string
	}{
		{"cycle", res("authz_resource_acme_eng", "org_acme", "workspace", "authz_resource_acme_api"), model.CodeCycle, []string{"org_acme"}},
		{"self parent", res("authz_resource_acme_web", "org_acme", "project", "authz_resource_acme_web"), model.CodeCycle, []string{"org_acme"}},
		{"too deep", res("authz_resource_deep", "org_acme", "app", "authz_resource_acme_api_gateway"), model.CodeDepthExceeded, []string{"org_acme"}},
		{"a move that puts a descendant too deep", res("authz_resource_acme_api", "org_acme", "project", "authz_resource_acme_web"), model.CodeDepthExceeded, []string{"org_acme"}},
		{"parent in another organization", res("authz_resource_x", "org_acme", "project", "authz_resource_globex_rnd"), model.CodeCrossOrganization, []string{"org_acme", "org_globex"}},
		{"unknown parent", res("authz_resource_x", "org_acme", "project", "authz_resource_nope"), model.CodeUnknownReference, []string{"org_acme"}},
		{"unknown organization", res("authz_resource_x", "org_nope", "workspace", ""), model.CodeUnknownReference, []string{"org_nope"}},
		{"membership of an unknown organization", member("org_nope"), model.CodeUnknownReference, []string{"org_nope"}},
		{"membership with an unknown role", member("org_acme", "nope"), model.CodeUnknownReference, []string{"org_acme"}},
		{"membership with a role not of the organization type", member("org_acme", "workspace-admin"), model.CodeRoleTypeMismatch, []string{"org_acme"}},
		{"assignment of a role of another type", assign("om_bob", "project-editor", "authz_resource_acme_eng"), model.CodeRoleTypeMismatch, []string{"org_acme"}},
		{"assignment across organizations", assign("om_erin", "workspace-admin", "authz_resource_acme_eng"), model.CodeCrossOrganization, []string{"org_acme", "org_globex"}},
		{"assignment on an unknown resource", assign("om_bob", "workspace-admin", "authz_resource_nope"), model.CodeUnknownReference, []string{"org_acme"}},
		{"assignment of an unknown role", assign("om_bob", "nope", "authz_resource_acme_eng"), model.CodeUnknownReference, []string{"org_acme"}},
		{"assignment of an unknown membership", assign("om_nope", "workspace-admin", "authz_resource_acme_eng"), model.CodeUnknownReference, nil},
	}
	e := loaded(t, demo)
	before := document(t, e)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := model.Change{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_new", Name: "New"}}
			err := e.Apply(ctx, 1, []model.Change{ok, tt.ch})
			var rule *model.RuleError
			if !errors.As(err, &rule) {
				t.Fatalf("Apply() error = %v, want a *model.RuleError", err)
			}
			if rule.Problem.Code != tt.code || !slices.Equal(rule.Problem.Organizations, tt.orgs) {
				t.Errorf("Apply() broke %s in %v, want %s in %v: %v", rule.Problem.Code, rule.Problem.Organizations, tt.code, tt.orgs, err)
			}
			sameDocument(t, "after a refused change", document(t, e), before)
			if e.Revision() != 0 {
				t.Errorf("revision = %d after a refused change", e.Revision())
			}
		})
	}
}
