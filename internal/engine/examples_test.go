package engine_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// examplesDataset is the demo data with what the worked examples read:
// project:web confidential, globex's networks, and org-admin holding
// project:view-confidential.
func examplesDataset(t *testing.T) *model.Dataset {
	ds := datafile.Demo()
	ds.Permissions = append(ds.Permissions, model.Permission{Slug: "project:view-confidential", ResourceType: "project"})
	for i, r := range ds.Roles {
		if r.Slug == "org-admin" {
			ds.Roles[i].Permissions = append(slices.Clone(r.Permissions), "project:view-confidential")
		}
	}
	for i, r := range ds.Resources {
		if r.ID == "authz_resource_acme_web" {
			ds.Resources[i].Attributes = model.Attributes{"confidential": true}
		}
	}
	for i, o := range ds.Organizations {
		if o.ID == "org_globex" {
			ds.Organizations[i].Attributes = model.Attributes{"networks": []any{"10.20.0.0/16"}}
		}
	}
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestWorkedExamples: the three extensions of policies/examples on the
// served engine, and attribute changes applied incrementally.
func TestWorkedExamples(t *testing.T) {
	ctx := context.Background()
	mods, err := policies.Extensions("../../policies/examples")
	if err != nil {
		t.Fatal(err)
	}
	all := policies.Modules()
	maps.Copy(all, mods)
	e, err := engine.New(ctx, engine.Options{Modules: all})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(ctx, examplesDataset(t)); err != nil {
		t.Fatal(err)
	}
	type check struct {
		name, om, perm, rid, context string
		want                         string // "allow" or the denial's code
	}
	run := func(t *testing.T, cases []check) {
		t.Helper()
		for _, c := range cases {
			in := ast.MustParseTerm(fmt.Sprintf(`{"subject": {"organization_membership_id": %q}, "permission": %q, "resource": {"id": %q}, "context": %s}`,
				c.om, c.perm, c.rid, c.context)).Value
			r, err := e.Decide(ctx, engine.Check, in)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			d := r.Value.(map[string]any)
			got := "allow"
			if d["allowed"] != true {
				got = fmt.Sprint(d["reason"].(map[string]any)["code"])
			}
			if got != c.want {
				t.Errorf("%s: %s, want %s (%v)", c.name, got, c.want, d)
			}
		}
	}
	const (
		gateway = "authz_resource_acme_api_gateway"
		web     = "authz_resource_acme_web"
		lab     = "authz_resource_globex_lab"
	)
	run(t, []check{
		{"a deploy on a Monday morning", "om_bob", "app:deploy", gateway, `{"time": "2026-12-07T10:00:00Z"}`, "allow"},
		{"a deploy in the evening", "om_bob", "app:deploy", gateway, `{"time": "2026-12-07T19:00:00Z"}`, "outside_business_hours"},
		{"a view in the evening", "om_bob", "app:view", gateway, `{"time": "2026-12-07T19:00:00Z"}`, "allow"},
		{"globex from its network", "om_frank", "project:view", lab, `{"ip": "10.20.1.1"}`, "allow"},
		{"globex from elsewhere", "om_frank", "project:view", lab, `{"ip": "203.0.113.9"}`, "network_not_allowed"},
		{"globex without an address", "om_erin", "project:view", lab, `{}`, "network_not_allowed"},
		{"acme has no networks", "om_bob", "project:view", gateway, `{}`, "allow"},
		{"a confidential project, its editor", "om_carol", "project:view", web, `{}`, "confidential"},
		{"a confidential project, a workspace admin", "om_bob", "project:edit", web, `{}`, "confidential"},
		{"a confidential project, an org-admin", "om_alice", "project:view", web, `{}`, "allow"},
		{"not confidential", "om_bob", "project:edit", "authz_resource_acme_api", `{}`, "allow"},
	})

	// Attributes change like any data: web no longer confidential, acme
	// reached from its network only.
	web2 := model.Resource{ID: web, OrganizationID: "org_acme", Type: "project", ExternalID: "web", ParentID: "authz_resource_acme_eng"}
	acme := model.Organization{ID: "org_acme", Name: "Acme Corp", Attributes: model.Attributes{"networks": []any{"192.0.2.0/24"}}}
	if err := e.Apply(ctx, 2, []model.Change{{Op: model.OpUpsert, Resource: &web2}, {Op: model.OpUpsert, Organization: &acme}}); err != nil {
		t.Fatal(err)
	}
	run(t, []check{
		{"web after its attributes are cleared", "om_carol", "project:view", web, `{"ip": "192.0.2.7"}`, "allow"},
		{"acme from elsewhere, after its networks are set", "om_bob", "project:view", gateway, `{"ip": "203.0.113.9"}`, "network_not_allowed"},
	})
}
