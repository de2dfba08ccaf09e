package authz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
)

// calls runs every method of the service once with a well-formed request.
func calls(s *authz.Service) map[string]func() error {
	ctx := context.Background()
	ref := authz.ResourceRef{ID: "authz_resource_acme_api"}
	c := authz.Check{Permission: "project:edit", Resource: ref}
	return map[string]func() error{
		"Check": func() error { _, _, err := s.Check(ctx, member, c, authz.Consistency{}); return err },
		"CheckBatch": func() error {
			_, _, err := s.CheckBatch(ctx, member, []authz.Check{c, c}, authz.Consistency{})
			return err
		},
		"EffectivePermissions": func() error {
			_, _, err := s.EffectivePermissions(ctx, member, ref, authz.Consistency{})
			return err
		},
		"ListResources": func() error {
			_, _, err := s.ListResources(ctx, member, authz.ListRequest{Permission: "project:edit"}, authz.Consistency{})
			return err
		},
		"ListMemberships": func() error {
			_, _, err := s.ListMemberships(ctx, authz.MembersRequest{Permission: "project:edit", Resource: ref}, authz.Consistency{})
			return err
		},
		"Data": func() error {
			_, _, _, err := s.Data(ctx, "trellis/check", ast.MustInterfaceToValue(map[string]any{"permission": "project:edit"}))
			return err
		},
	}
}

// Before the first load every method answers ErrNotReady and evaluates
// nothing: an empty store would deny everything, which a client could not
// tell from a real deny.
func TestNotLoadedIsNotDeny(t *testing.T) {
	for name, call := range calls(newService(t, authz.Config{Engine: &fakeEngine{unloaded: true, value: allowValue}, DecisionCacheSize: 10})) {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, authz.ErrNotReady) {
				t.Errorf("error = %v, want ErrNotReady", err)
			}
		})
	}
	eng := &fakeEngine{unloaded: true}
	for _, call := range calls(newService(t, authz.Config{Engine: eng})) {
		_ = call()
	}
	if n := eng.evaluations(); n != 0 {
		t.Errorf("%d evaluations before the first load", n)
	}
}

// A policy answer of organization_unavailable, anywhere in the value, is an
// *OrganizationUnavailableError naming the organization, never a decision.
func TestOrganizationUnavailable(t *testing.T) {
	reason := map[string]any{"code": authz.ReasonOrganizationUnavailable, "organization_id": "org_q", "message": "m"}
	decision := map[string]any{"allowed": false, "decided_by": "none", "reason": reason}
	page := map[string]any{"ids": []any{}, "permissions": []any{}, "reason": reason}
	for _, tc := range []struct {
		name  string
		value any
		only  []string
	}{
		{"decision", decision, []string{"Check", "Data"}},
		{"one decision of a batch", []any{allowValue, decision}, []string{"CheckBatch", "Data"}},
		{"page", page, []string{"EffectivePermissions", "ListResources", "ListMemberships", "Data"}},
	} {
		eng := &fakeEngine{value: tc.value}
		all := calls(newService(t, authz.Config{Engine: eng, DecisionCacheSize: 10}))
		for _, name := range tc.only {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var down *authz.OrganizationUnavailableError
				if err := all[name](); !errors.As(err, &down) || down.OrganizationID != "org_q" {
					t.Fatalf("error = %v, want an OrganizationUnavailableError for org_q", err)
				}
				// Not cached: the same check is evaluated again.
				before := eng.evaluations()
				_ = all[name]()
				if eng.evaluations() == before {
					t.Error("the answer was not evaluated again")
				}
			})
		}
	}
}
