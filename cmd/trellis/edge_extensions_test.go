package main

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// TestEdgesAgreeWithExtensions: with the example extensions loaded
// (policies/examples), on a dataset whose resources and organizations
// carry attributes, the server, trellis edge and stock OPA give the same
// answer to 1,000 random checks, each with a random context (an address
// inside or outside the organization's networks, or none; a time in or
// out of business hours), by tokens with and without the
// subscription-suspended entitlement. Every example must both deny and
// let allows through, so that the agreement is not on one answer only.
func TestEdgesAgreeWithExtensions(t *testing.T) {
	ext, err := policies.Extensions(examples)
	if err != nil {
		t.Fatal(err)
	}
	mods := policies.Modules()
	maps.Copy(mods, ext)
	w := newEdgeWorldWith(t, attributedDataset(), mods)

	suspended := map[string]any{"entitlements": []string{"subscription-suspended"}}
	var contexts []map[string]any
	for _, ip := range []string{"10.20.3.4", "203.0.113.9", ""} { // inside, outside, none
		for _, at := range []string{"2026-12-07T10:00:00Z", "2026-12-07T19:00:00Z"} { // a Monday morning, its evening
			c := map[string]any{"time": at}
			if ip != "" {
				c["ip"] = ip
			}
			contexts = append(contexts, c)
		}
	}
	// Every check has a time: without one business_hours reads each
	// decider's clock, which may cross 09:00 or 18:00 between them.
	checks := w.corpusWith(1000, corpusExtras{claims: []map[string]any{nil, nil, suspended}, contexts: contexts, focused: true})
	start := time.Now()
	n := w.agreeCounting(checks)
	t.Logf("1000 random checks with the example extensions in %v: %d allowed, extension denials %v, identical on the server, trellis edge and stock OPA",
		time.Since(start).Round(time.Millisecond), n.allowed, n.denials)
	if n.allowed < 100 || n.allowed > 900 {
		t.Errorf("%d of 1000 allowed: the corpus should exercise both answers", n.allowed)
	}
	for _, code := range []string{"confidential", "network_not_allowed", "outside_business_hours", "subscription_suspended"} {
		if n.denials[code] < 20 {
			t.Errorf("%d denials %s, want at least 20: the corpus should exercise every example (denials %v)", n.denials[code], code, n.denials)
		}
	}
	// A confidential resource is allowed to those who hold
	// <type>:view-confidential too.
	confidential := map[string]bool{}
	for _, r := range w.ds.Resources {
		if r.Attributes["confidential"] == true {
			confidential[r.ID], confidential[r.Type+"/"+r.ExternalID+"/"+r.OrganizationID] = true, true
		}
	}
	allowedConfidential := 0
	for i, c := range checks {
		res := c["resource"].(map[string]any)
		if n.allowedAt[i] && (confidential[fmt.Sprint(res["id"])] || confidential[fmt.Sprint(res["type"], "/", res["external_id"], "/", res["organization_id"])]) {
			allowedConfidential++
		}
	}
	t.Logf("%d checks on confidential resources allowed", allowedConfidential)
	if allowedConfidential < 5 {
		t.Errorf("%d checks on confidential resources allowed, want at least 5: <type>:view-confidential should let some through", allowedConfidential)
	}
}

// attributedDataset is newEdgeWorld's kind of random dataset made for the
// example extensions: every <type> has <type>:deploy, held by the roles
// that hold <type>:edit (business_hours), and <type>:view-confidential,
// held by those that hold <type>:delete (confidential); one resource in
// four is {"confidential": true}, and every other organization is reached
// only from 10.20.0.0/16 (ip_allowlist).
func attributedDataset() *model.Dataset {
	ds := gen.Generate(gen.Spec{Seed: 12, Organizations: 4, Resources: 400, Assignments: 1000, MembershipsPerOrg: 8, Depth: 4, Skew: 0.8, InactiveRatio: 0.1,
		GroupsPerOrg: 3, GroupAssignmentRatio: 0.3})
	for _, p := range ds.Permissions[:len(ds.Permissions):len(ds.Permissions)] {
		typ, action, _ := strings.Cut(p.Slug, ":")
		if action == "edit" && typ != model.OrganizationType {
			ds.Permissions = append(ds.Permissions,
				model.Permission{Slug: typ + ":deploy", Name: "Deploy " + typ, ResourceType: typ},
				model.Permission{Slug: typ + ":view-confidential", Name: "View confidential " + typ, ResourceType: typ})
		}
	}
	for i, r := range ds.Roles {
		var more []string
		for _, p := range r.Permissions {
			typ, action, _ := strings.Cut(p, ":")
			switch {
			case typ == model.OrganizationType:
			case action == "edit":
				more = append(more, typ+":deploy")
			case action == "delete":
				more = append(more, typ+":view-confidential")
			}
		}
		ds.Roles[i].Permissions = append(r.Permissions[:len(r.Permissions):len(r.Permissions)], more...)
	}
	for i := range ds.Resources {
		if i%4 == 0 {
			ds.Resources[i].Attributes = model.Attributes{"confidential": true}
		}
	}
	for i := range ds.Organizations {
		if i%2 == 0 {
			ds.Organizations[i].Attributes = model.Attributes{"networks": []any{"10.20.0.0/16"}}
		}
	}
	return ds
}
