package authz_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/token"
)

func TestNew(t *testing.T) {
	if _, err := authz.New(authz.Config{}); err == nil {
		t.Error("New without an engine: no error")
	}
	s := newService(t, authz.Config{Engine: &fakeEngine{}})
	if s.MaxBatch() != 1000 {
		t.Errorf("default MaxBatch = %d, want 1000", s.MaxBatch())
	}
	if s := newService(t, authz.Config{Engine: &fakeEngine{}, MaxBatch: 7}); s.MaxBatch() != 7 {
		t.Errorf("MaxBatch = %d, want 7", s.MaxBatch())
	}
}

var (
	member = authz.Subject{MembershipID: "om_bob"}
	tok    = authz.Subject{Token: "raw.jwt.here"}
	apiRef = authz.ResourceRef{Type: "project", ExternalID: "api", OrganizationID: "org_acme"}
)

// bobInput is the input object bobClaims become.
var bobInput = map[string]any{
	"sub": "user_bob", "org_id": "org_acme", "membership_id": "om_bob", "role": "org-member",
	"roles": []any{"org-member"}, "permissions": []any{"org:view", "workspace:view"},
	"sid": "session_bob", "feature_flags": []any{"beta"}, "entitlements": []any{"audit-logs"},
}

// TestInputShaping checks the policy input each request becomes.
func TestInputShaping(t *testing.T) {
	tokenErr := &token.Error{Code: token.CodeExpired, Message: "the token has expired"}
	tests := []struct {
		name     string
		verifier authz.Verifier
		call     func(*authz.Service) error
		ep       engine.Entrypoint
		want     any
	}{
		{"check with a membership subject", nil, func(s *authz.Service) error {
			_, _, err := s.Check(context.Background(), member, authz.Check{Permission: "project:edit", Resource: apiRef}, authz.Consistency{})
			return err
		}, engine.Check, map[string]any{
			"subject":    map[string]any{"organization_membership_id": "om_bob"},
			"permission": "project:edit",
			"resource":   map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"},
		}},
		{"check with a verified token and a resource id", fakeVerifier{claims: bobClaims}, func(s *authz.Service) error {
			_, _, err := s.Check(context.Background(), tok, authz.Check{Permission: "project:edit", Resource: authz.ResourceRef{ID: "authz_resource_acme_api"}}, authz.Consistency{})
			return err
		}, engine.Check, map[string]any{
			"token":      bobInput,
			"permission": "project:edit",
			"resource":   map[string]any{"id": "authz_resource_acme_api"},
		}},
		{"token without lists", fakeVerifier{claims: token.Claims{OrganizationID: "org_acme"}}, func(s *authz.Service) error {
			_, _, err := s.Check(context.Background(), tok, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{})
			return err
		}, engine.Check, map[string]any{
			"token": map[string]any{"sub": "", "org_id": "org_acme", "membership_id": "", "role": "", "roles": []any{}, "permissions": []any{},
				"sid": "", "feature_flags": []any{}, "entitlements": []any{}},
			"permission": "p",
			"resource":   map[string]any{"id": "r"},
		}},
		{"failed token becomes token_error", fakeVerifier{err: tokenErr}, func(s *authz.Service) error {
			_, _, err := s.Check(context.Background(), tok, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{})
			return err
		}, engine.Check, map[string]any{
			"token_error": map[string]any{"code": "token_expired", "message": "the token has expired"},
			"permission":  "p",
			"resource":    map[string]any{"id": "r"},
		}},
		{"a foreign verifier error becomes token_invalid", fakeVerifier{err: errors.New("boom: key material")}, func(s *authz.Service) error {
			_, _, err := s.Check(context.Background(), tok, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{})
			return err
		}, engine.Check, map[string]any{
			"token_error": map[string]any{"code": "token_invalid", "message": "the token could not be verified"},
			"permission":  "p",
			"resource":    map[string]any{"id": "r"},
		}},
		{"batch", nil, func(s *authz.Service) error {
			_, _, err := s.CheckBatch(context.Background(), member, []authz.Check{
				{Permission: "a", Resource: authz.ResourceRef{ID: "r1"}},
				{Permission: "b", Resource: authz.ResourceRef{Type: "t", ExternalID: "e"}},
			}, authz.Consistency{})
			return err
		}, engine.Batch, map[string]any{
			"subject": map[string]any{"organization_membership_id": "om_bob"},
			"checks": []any{
				map[string]any{"permission": "a", "resource": map[string]any{"id": "r1"}},
				map[string]any{"permission": "b", "resource": map[string]any{"type": "t", "external_id": "e"}},
			},
		}},
		{"effective permissions", nil, func(s *authz.Service) error {
			_, _, err := s.EffectivePermissions(context.Background(), member, apiRef, authz.Consistency{})
			return err
		}, engine.EffectivePermissions, map[string]any{
			"subject":  map[string]any{"organization_membership_id": "om_bob"},
			"resource": map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"},
		}},
		{"list resources with defaults", nil, func(s *authz.Service) error {
			_, _, err := s.ListResources(context.Background(), member, authz.ListRequest{Permission: "project:edit"}, authz.Consistency{})
			return err
		}, engine.ListResources, map[string]any{
			"subject":    map[string]any{"organization_membership_id": "om_bob"},
			"permission": "project:edit",
			"limit":      json(101), // one more, to know whether more follow
		}},
		{"list resources with everything", nil, func(s *authz.Service) error {
			_, _, err := s.ListResources(context.Background(), member, authz.ListRequest{
				Permission: "project:edit", ResourceType: "project", Parent: &authz.ResourceRef{ID: "ws"},
				OrganizationID: "org_acme", After: "root/ws/authz_resource_a", Descending: true, Limit: authz.MaxPageSize,
			}, authz.Consistency{})
			return err
		}, engine.ListResources, map[string]any{
			"subject":         map[string]any{"organization_membership_id": "om_bob"},
			"permission":      "project:edit",
			"resource_type":   "project",
			"parent":          map[string]any{"id": "ws"},
			"organization_id": "org_acme",
			"after":           []any{"root", "ws", "authz_resource_a"},
			"order":           "desc",
			"limit":           json(authz.MaxPageSize + 1),
		}},
		{"list memberships", nil, func(s *authz.Service) error {
			_, _, err := s.ListMemberships(context.Background(), authz.MembersRequest{Permission: "project:edit", Resource: apiRef, Direct: true, After: "om_a", Descending: true, Limit: 5}, authz.Consistency{})
			return err
		}, engine.ListMemberships, map[string]any{
			"permission": "project:edit",
			"resource":   map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"},
			"direct":     true,
			"after":      "om_a",
			"order":      "desc",
			"limit":      json(6), // one more, to know whether more follow
		}},
		{"data API: a token string is verified and replaced", fakeVerifier{claims: bobClaims}, func(s *authz.Service) error {
			_, _, _, err := s.Data(context.Background(), "trellis/check", ast.MustParseTerm(`{"token": "raw", "permission": "p", "x": [1]}`).Value)
			return err
		}, "data/trellis/check", map[string]any{"token": bobInput, "permission": "p", "x": []any{json(1)}}},
		{"data API: a failed token becomes token_error", fakeVerifier{err: tokenErr}, func(s *authz.Service) error {
			_, _, _, err := s.Data(context.Background(), "trellis/check", ast.MustParseTerm(`{"token": "raw", "permission": "p"}`).Value)
			return err
		}, "data/trellis/check", map[string]any{"token_error": map[string]any{"code": "token_expired", "message": "the token has expired"}, "permission": "p"}},
		{"data API: input without a token passes through", nil, func(s *authz.Service) error {
			_, _, _, err := s.Data(context.Background(), "a/b", ast.MustParseTerm(`{"subject": {"organization_membership_id": "om_x"}}`).Value)
			return err
		}, "data/a/b", map[string]any{"subject": map[string]any{"organization_membership_id": "om_x"}}},
		{"data API: no input", nil, func(s *authz.Service) error {
			_, _, _, err := s.Data(context.Background(), "a", nil)
			return err
		}, "data/a", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{value: allowValue, revision: 4}
			if strings.HasPrefix(tc.name, "list") || strings.HasPrefix(tc.name, "effective") {
				f.value = map[string]any{}
			}
			if tc.ep == engine.Batch {
				f.value = []any{allowValue, allowValue}
			}
			s := newService(t, authz.Config{Engine: f, Tokens: tc.verifier})
			if err := tc.call(s); err != nil {
				t.Fatal(err)
			}
			if got := f.eps[len(f.eps)-1]; got != tc.ep {
				t.Errorf("entrypoint %q, want %q", got, tc.ep)
			}
			if d := diff(f.lastInput(t), tc.want); d != "" {
				t.Errorf("input (-got +want):\n%s", d)
			}
		})
	}
}

// json returns n as ast.JSON renders numbers.
func json(n int) any {
	v, err := ast.JSON(ast.Number(fmt.Sprint(n)))
	if err != nil {
		panic(err)
	}
	return v
}

// TestValidation checks that bad requests are rejected, naming the field,
// before anything is evaluated.
func TestValidation(t *testing.T) {
	ctx := context.Background()
	ok := authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}
	check := func(sub authz.Subject, c authz.Check, cons authz.Consistency) func(*authz.Service) error {
		return func(s *authz.Service) error { _, _, err := s.Check(ctx, sub, c, cons); return err }
	}
	batch := func(n int, bad int) func(*authz.Service) error {
		return func(s *authz.Service) error {
			cs := make([]authz.Check, n)
			for i := range cs {
				cs[i] = ok
			}
			if bad >= 0 {
				cs[bad].Resource = authz.ResourceRef{Type: "t"}
			}
			_, _, err := s.CheckBatch(ctx, member, cs, authz.Consistency{})
			return err
		}
	}
	list := func(req authz.ListRequest) func(*authz.Service) error {
		return func(s *authz.Service) error {
			_, _, err := s.ListResources(ctx, member, req, authz.Consistency{})
			return err
		}
	}
	members := func(req authz.MembersRequest) func(*authz.Service) error {
		return func(s *authz.Service) error {
			_, _, err := s.ListMemberships(ctx, req, authz.Consistency{})
			return err
		}
	}
	data := func(input string) func(*authz.Service) error {
		return func(s *authz.Service) error {
			_, _, _, err := s.Data(ctx, "trellis/check", ast.MustParseTerm(input).Value)
			return err
		}
	}

	tests := []struct {
		name   string
		tokens bool // configure a token verifier
		call   func(*authz.Service) error
		field  string
	}{
		{"token and subject", true, check(authz.Subject{Token: "t", MembershipID: "om"}, ok, authz.Consistency{}), "subject"},
		{"no subject", true, check(authz.Subject{}, ok, authz.Consistency{}), "subject"},
		{"token with the token layer off", false, check(tok, ok, authz.Consistency{}), "token"},
		{"no permission", true, check(member, authz.Check{Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{}), "permission"},
		{"no resource", true, check(member, authz.Check{Permission: "p"}, authz.Consistency{}), "resource"},
		{"resource id and type", true, check(member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r", Type: "t"}}, authz.Consistency{}), "resource"},
		{"resource id and external id", true, check(member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r", ExternalID: "e"}}, authz.Consistency{}), "resource"},
		{"resource type without external id", true, check(member, authz.Check{Permission: "p", Resource: authz.ResourceRef{Type: "t"}}, authz.Consistency{}), "resource"},
		{"resource external id without type", true, check(member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ExternalID: "e"}}, authz.Consistency{}), "resource"},
		{"resource with only an organization", true, check(member, authz.Check{Permission: "p", Resource: authz.ResourceRef{OrganizationID: "org"}}, authz.Consistency{}), "resource"},
		{"both consistencies", true, check(member, ok, authz.Consistency{AtLeastRevision: 1, FullyConsistent: true}), "consistency"},
		{"negative revision", true, check(member, ok, authz.Consistency{AtLeastRevision: -1}), "consistency.at_least_revision"},
		{"empty batch", true, batch(0, -1), "checks"},
		{"batch over the limit", true, batch(4, -1), "checks"},
		{"bad check in a batch", true, batch(3, 1), "checks[1].resource"},
		{"list without permission", true, list(authz.ListRequest{}), "permission"},
		{"list with a bad parent", true, list(authz.ListRequest{Permission: "p", Parent: &authz.ResourceRef{}}), "parent"},
		{"list with a negative limit", true, list(authz.ListRequest{Permission: "p", Limit: -1}), "limit"},
		{"list over the page limit", true, list(authz.ListRequest{Permission: "p", Limit: authz.MaxPageSize + 1}), "limit"},
		{"members without permission", true, members(authz.MembersRequest{Resource: apiRef}), "permission"},
		{"members without resource", true, members(authz.MembersRequest{Permission: "p"}), "resource"},
		{"members by external id without organization", true, members(authz.MembersRequest{Permission: "p", Resource: authz.ResourceRef{Type: "t", ExternalID: "e"}}), "resource.organization_id"},
		{"members over the page limit", true, members(authz.MembersRequest{Permission: "p", Resource: apiRef, Limit: authz.MaxPageSize + 1}), "limit"},
		{"effective permissions without resource", true, func(s *authz.Service) error {
			_, _, err := s.EffectivePermissions(ctx, member, authz.ResourceRef{}, authz.Consistency{})
			return err
		}, "resource"},
		{"data API: claims object as token", true, data(`{"token": {"org_id": "org_acme", "permissions": ["p"]}}`), "input.token"},
		{"data API: token as a number", true, data(`{"token": 1}`), "input.token"},
		{"data API: caller sets token_error", true, data(`{"token_error": {"code": "x"}}`), "input.token_error"},
		{"data API: token and subject", true, data(`{"token": "t", "subject": {"organization_membership_id": "om"}}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{value: allowValue}
			cfg := authz.Config{Engine: f, MaxBatch: 3}
			if tc.tokens {
				cfg.Tokens = fakeVerifier{claims: bobClaims}
			}
			err := tc.call(newService(t, cfg))
			if tc.field == "" {
				// Not rejected here: the policy sees both and decides.
				return
			}
			var bad *authz.InvalidError
			if !errors.As(err, &bad) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			if bad.Field != tc.field || bad.Message == "" {
				t.Errorf("got field %q message %q, want field %q", bad.Field, bad.Message, tc.field)
			}
			if !strings.HasPrefix(bad.Error(), tc.field+": ") {
				t.Errorf("Error() = %q, want it to start with the field", bad.Error())
			}
			if n := f.evaluations(); n != 0 {
				t.Errorf("%d evaluations of an invalid request", n)
			}
		})
	}
}

// TestTokenFailureDenies runs the real policies: a token that fails
// verification is a deny carrying the verifier's code, never an error.
func TestTokenFailureDenies(t *testing.T) {
	e := demoEngine(t)
	ctx := context.Background()
	api := authz.Check{Permission: "workspace:view", Resource: authz.ResourceRef{Type: "workspace", ExternalID: "acme-eng", OrganizationID: "org_acme"}}
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"expired", &token.Error{Code: token.CodeExpired, Message: "expired"}, token.CodeExpired},
		{"bad signature", &token.Error{Code: token.CodeBadSignature, Message: "bad signature"}, token.CodeBadSignature},
		{"unknown key", &token.Error{Code: token.CodeUnknownKey, Message: "unknown key"}, token.CodeUnknownKey},
		{"keys unavailable", &token.Error{Code: token.CodeKeysUnavailable, Message: "cannot fetch keys"}, token.CodeKeysUnavailable},
		{"wrapped token error", fmt.Errorf("verify: %w", &token.Error{Code: token.CodeIssuer, Message: "wrong issuer"}), token.CodeIssuer},
		{"foreign error", errors.New("something else"), "token_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, authz.Config{Engine: e, Tokens: fakeVerifier{claims: bobClaims, err: tc.err}})
			d, ans, err := s.Check(ctx, tok, api, authz.Consistency{})
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if d.Allowed || d.DecidedBy != "none" || d.Reason["code"] != tc.code {
				t.Errorf("check: got %+v, want a deny with code %s", d, tc.code)
			}
			if ans.DecisionID == "" {
				t.Error("no decision id")
			}
			ds, _, err := s.CheckBatch(ctx, tok, []authz.Check{api, api}, authz.Consistency{})
			if err != nil {
				t.Fatalf("batch: %v", err)
			}
			for i, d := range ds {
				if d.Allowed || d.Reason["code"] != tc.code {
					t.Errorf("batch[%d]: got %+v, want a deny with code %s", i, d, tc.code)
				}
			}
			p, _, err := s.EffectivePermissions(ctx, tok, api.Resource, authz.Consistency{})
			if err != nil {
				t.Fatalf("effective permissions: %v", err)
			}
			if len(p.Permissions) != 0 {
				t.Errorf("effective permissions with a failed token: %v", p.Permissions)
			}
		})
	}
}

// TestMalformedResultNeverAllows feeds policy results of the wrong shape:
// each must be an error, never a decision, let alone an allow.
func TestMalformedResultNeverAllows(t *testing.T) {
	ctx := context.Background()
	c := authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}
	tests := []struct {
		name  string
		value any
		err   error
		batch int // 0: single check; n: a batch of n checks
		ok    bool
	}{
		{"well-formed allow", allowValue, nil, 0, true},
		{"well-formed batch", []any{allowValue, allowValue}, nil, 2, true},
		{"nil", nil, nil, 0, false},
		{"bare true", true, nil, 0, false},
		{"string", "allowed", nil, 0, false},
		{"missing allowed", map[string]any{"decided_by": "token"}, nil, 0, false},
		{"allowed as a string", map[string]any{"allowed": "true"}, nil, 0, false},
		{"allowed as a number", map[string]any{"allowed": 1}, nil, 0, false},
		{"allowed null", map[string]any{"allowed": nil}, nil, 0, false},
		{"a list for a single check", []any{allowValue}, nil, 0, false},
		{"undefined", nil, engine.ErrUndefined, 0, false},
		{"evaluation error with a value", allowValue, errors.New("eval failed"), 0, false},
		{"batch: object instead of list", allowValue, nil, 1, false},
		{"batch: too few results", []any{allowValue}, nil, 2, false},
		{"batch: too many results", []any{allowValue, allowValue, allowValue}, nil, 2, false},
		{"batch: empty result", []any{}, nil, 1, false},
		{"batch: one malformed result", []any{allowValue, map[string]any{"allowed": "true"}}, nil, 2, false},
		{"batch: evaluation error", []any{allowValue}, errors.New("eval failed"), 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, authz.Config{Engine: &fakeEngine{value: tc.value, err: tc.err}})
			var (
				allowed bool
				err     error
			)
			if tc.batch == 0 {
				var d authz.Decision
				d, _, err = s.Check(ctx, member, c, authz.Consistency{})
				allowed = d.Allowed
			} else {
				cs := make([]authz.Check, tc.batch)
				for i := range cs {
					cs[i] = c
				}
				var ds []authz.Decision
				ds, _, err = s.CheckBatch(ctx, member, cs, authz.Consistency{})
				if err == nil { // with an error the decisions are not to be read
					for _, d := range ds {
						allowed = allowed || d.Allowed
					}
				}
			}
			switch {
			case tc.ok && err != nil:
				t.Errorf("well-formed result: %v", err)
			case tc.ok && !allowed:
				t.Error("well-formed allow read as a deny")
			case !tc.ok && err == nil:
				t.Errorf("malformed result %#v read as a decision (allowed=%v)", tc.value, allowed)
			case !tc.ok && allowed:
				t.Errorf("malformed result %#v read as an allow", tc.value)
			}
		})
	}
}

func TestConsistency(t *testing.T) {
	ctx := context.Background()
	headErr := errors.New("connection refused")
	tests := []struct {
		name      string
		cons      authz.Consistency
		head      func(context.Context) (int64, error)
		waitErr   error
		waits     []int64
		errIs     error // errors.Is target
		wantStale *authz.StaleError
	}{
		{"none", authz.Consistency{}, nil, nil, nil, nil, nil},
		{"at least a revision", authz.Consistency{AtLeastRevision: 9}, nil, nil, []int64{9}, nil, nil},
		{"fully consistent reads the head", authz.Consistency{FullyConsistent: true},
			func(context.Context) (int64, error) { return 12, nil }, nil, []int64{12}, nil, nil},
		{"fully consistent without a head waits for the applied revision", authz.Consistency{FullyConsistent: true}, nil, nil, []int64{4}, nil, nil},
		{"fully consistent at head 0", authz.Consistency{FullyConsistent: true},
			func(context.Context) (int64, error) { return 0, nil }, nil, nil, nil, nil},
		{"unreadable head is unavailable", authz.Consistency{FullyConsistent: true},
			func(context.Context) (int64, error) { return 0, headErr }, nil, nil, authz.ErrUnavailable, nil},
		{"revision not applied in time", authz.Consistency{AtLeastRevision: 9}, nil, engine.ErrStale, []int64{9}, nil,
			&authz.StaleError{Wanted: 9, Applied: 4}},
		{"head not reached in time", authz.Consistency{FullyConsistent: true},
			func(context.Context) (int64, error) { return 30, nil }, engine.ErrStale, []int64{30}, nil, &authz.StaleError{Wanted: 30, Applied: 4}},
		{"canceled while waiting", authz.Consistency{AtLeastRevision: 9}, nil, context.Canceled, []int64{9}, context.Canceled, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{value: allowValue, revision: 4, waitErr: tc.waitErr}
			s := newService(t, authz.Config{Engine: f, Head: tc.head, MaxWait: 250 * time.Millisecond})
			_, ans, err := s.Check(ctx, member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, tc.cons)
			if d := diff(f.waits, tc.waits); d != "" {
				t.Errorf("WaitFor revisions (-got +want):\n%s", d)
			}
			if len(f.waits) > 0 && f.timeout != 250*time.Millisecond {
				t.Errorf("WaitFor timeout %v, want MaxWait", f.timeout)
			}
			fail := tc.errIs != nil || tc.wantStale != nil
			switch {
			case !fail && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case !fail:
				if ans.Revision != 4 {
					t.Errorf("answer revision %d, want 4", ans.Revision)
				}
				return
			case err == nil:
				t.Fatal("no error")
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("got %v, want errors.Is %v", err, tc.errIs)
			}
			if errors.Is(tc.errIs, authz.ErrUnavailable) && !errors.Is(err, headErr) {
				t.Errorf("the head's error is not wrapped: %v", err)
			}
			if tc.wantStale != nil {
				var stale *authz.StaleError
				if !errors.As(err, &stale) {
					t.Fatalf("got %v, want a *StaleError", err)
				}
				if *stale != *tc.wantStale {
					t.Errorf("got %+v, want %+v", *stale, *tc.wantStale)
				}
				if !strings.Contains(stale.Error(), "9") && !strings.Contains(stale.Error(), "30") {
					t.Errorf("message %q names no revision", stale.Error())
				}
			}
			if f.evaluations() != 0 {
				t.Error("evaluated although the consistency was not met")
			}
		})
	}
}

func TestDataAnswers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		value   any
		err     error
		wantOK  bool
		wantErr bool
	}{
		{"defined", map[string]any{"allowed": false}, nil, true, false},
		{"defined false", false, nil, true, false},
		{"undefined", nil, engine.ErrUndefined, false, false},
		{"wrapped undefined", nil, fmt.Errorf("x: %w", engine.ErrUndefined), false, false},
		{"error", nil, errors.New("bad path"), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{value: tc.value, err: tc.err, revision: 6}
			s := newService(t, authz.Config{Engine: f})
			got, ok, ans, err := s.Data(ctx, "trellis/check", ast.NewObject())
			if (err != nil) != tc.wantErr || ok != tc.wantOK {
				t.Fatalf("got ok=%v err=%v, want ok=%v error=%v", ok, err, tc.wantOK, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if ans.Revision != 6 || ans.DecisionID == "" {
				t.Errorf("answer %+v, want revision 6 and a decision id", ans)
			}
			if ok {
				if d := diff(got, tc.value); d != "" {
					t.Errorf("result (-got +want):\n%s", d)
				}
			} else if got != nil {
				t.Errorf("undefined result carries %v", got)
			}
		})
	}
}

func TestAnswersCarryRevisionAndID(t *testing.T) {
	f := &fakeEngine{value: allowValue, revision: 17}
	s := newService(t, authz.Config{Engine: f})
	seen := map[string]bool{}
	for range 50 {
		_, ans, err := s.Check(context.Background(), member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{})
		if err != nil {
			t.Fatal(err)
		}
		if ans.Revision != 17 {
			t.Errorf("revision %d, want 17", ans.Revision)
		}
		if _, err := hex.DecodeString(ans.DecisionID); err != nil || len(ans.DecisionID) != 32 || seen[ans.DecisionID] {
			t.Fatalf("decision id %q: not 32 fresh hex digits", ans.DecisionID)
		}
		seen[ans.DecisionID] = true
	}
}

func TestDecodedResults(t *testing.T) {
	ctx := context.Background()
	t.Run("decision", func(t *testing.T) {
		s := newService(t, authz.Config{Engine: &fakeEngine{value: map[string]any{
			"allowed": true, "decided_by": "assignment", "reason": map[string]any{"code": "role_assignment", "role": "r"}, "extra": 1,
		}}})
		d, _, err := s.Check(ctx, member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, authz.Consistency{})
		if err != nil {
			t.Fatal(err)
		}
		want := authz.Decision{Allowed: true, DecidedBy: "assignment", Reason: map[string]any{"code": "role_assignment", "role": "r"}}
		if d := diff(d, want); d != "" {
			t.Errorf("decision (-got +want):\n%s", d)
		}
	})
	t.Run("page", func(t *testing.T) {
		// The policy returns limit + 1: the page is the first limit, and
		// more follow.
		s := newService(t, authz.Config{Engine: &fakeEngine{value: map[string]any{
			"ids": []any{"a", "b"}, "paths": []any{[]any{"r", "a"}, []any{"r", "b"}}, "has_more": false,
		}}})
		p, _, err := s.ListResources(ctx, member, authz.ListRequest{Permission: "p", Limit: 1}, authz.Consistency{})
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(p, authz.Page{IDs: []string{"a"}, Positions: []string{"r/a"}, HasMore: true}); d != "" {
			t.Errorf("page (-got +want):\n%s", d)
		}
	})
	t.Run("page of the wrong shape", func(t *testing.T) {
		s := newService(t, authz.Config{Engine: &fakeEngine{value: map[string]any{"ids": "a"}}})
		if _, _, err := s.ListResources(ctx, member, authz.ListRequest{Permission: "p"}, authz.Consistency{}); err == nil {
			t.Error("ids as a string: no error")
		}
	})
	t.Run("permissions", func(t *testing.T) {
		s := newService(t, authz.Config{Engine: &fakeEngine{value: map[string]any{"permissions": []any{"p:view"}}}})
		p, _, err := s.EffectivePermissions(ctx, member, authz.ResourceRef{ID: "r"}, authz.Consistency{})
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(p.Permissions, []string{"p:view"}); d != "" {
			t.Errorf("permissions (-got +want):\n%s", d)
		}
	})
}

// TestFullyConsistentByDefault: with Config.FullyConsistent, a decision
// that asks for no consistency waits for the head; one that names a
// revision waits for that revision only.
func TestFullyConsistentByDefault(t *testing.T) {
	head := func(context.Context) (int64, error) { return 12, nil }
	for _, tc := range []struct {
		name  string
		cons  authz.Consistency
		waits []int64
	}{
		{"none asked", authz.Consistency{}, []int64{12}},
		{"a revision asked", authz.Consistency{AtLeastRevision: 9}, []int64{9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{value: allowValue, revision: 4}
			s := newService(t, authz.Config{Engine: f, Head: head, FullyConsistent: true})
			if _, _, err := s.Check(context.Background(), member, authz.Check{Permission: "p", Resource: authz.ResourceRef{ID: "r"}}, tc.cons); err != nil {
				t.Fatal(err)
			}
			if d := diff(f.waits, tc.waits); d != "" {
				t.Errorf("WaitFor revisions (-got +want):\n%s", d)
			}
		})
	}
}
