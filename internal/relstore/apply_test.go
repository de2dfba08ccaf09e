package relstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// TestApplyMatchesPatch applies random batches of changes of every kind
// (cascades in shuffled order, batches that fail, batches aborted after
// they applied) to the compact store and, with index.Patch, to the
// in-memory reference, and compares every read after every revision.
func TestApplyMatchesPatch(t *testing.T) {
	seeds, steps := uint64(4), 120
	if testing.Short() {
		seeds, steps = 2, 60
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ds := gen.Generate(gen.Spec{Seed: int64(seed), Organizations: 4, Resources: 150, Assignments: 200,
				MembershipsPerOrg: 6, Depth: 5, InactiveRatio: 0.2})
			ds.MaxDepth = 7 // re-parents and new resources deepen trees: some are refused
			s, ref := loaded(t, ds, relstore.Options{}), newReference(t, ds)
			m := &mutator{ds: ds, rnd: rand.New(rand.NewPCG(seed, 7))}
			for step := range steps {
				before := clone(m.ds)
				var batch []model.Change
				failing := false
				for range 1 + m.pick(3) {
					chs, fails := m.step()
					batch = append(batch, chs...)
					failing = failing || fails
				}
				rev := int64(step + 1)
				if m.pick(10) == 0 && !failing {
					abortAfterApply(t, s, rev, batch)
				}
				gotErr, wantErr := apply(s, rev, batch), ref.apply(rev, batch)
				if msg := sameError(gotErr, wantErr); msg != "" {
					t.Fatalf("step %d: %s", step, msg)
				}
				if errors.Is(gotErr, relstore.ErrInvariant) {
					t.Fatalf("step %d: the mutator broke an invariant: %v", step, gotErr)
				}
				if gotErr != nil {
					var rerr *model.RuleError
					if !failing && (!errors.As(gotErr, &rerr) || rerr.Problem.Code != model.CodeDepthExceeded) {
						t.Fatalf("step %d: a batch meant to apply failed: %v", step, gotErr)
					}
					m.ds = before
				} else {
					m.ds.Revision = rev
				}
				sameReads(t, s, ref)
				if step%7 == 0 {
					s.Compact()
					sameReads(t, s, ref)
				}
				if t.Failed() {
					t.Fatalf("step %d: batch %v", step, batch)
				}
			}
			if diff := cmp.Diff(exported(t, s), jsonDocument(t, ref.document(t))); diff != "" {
				t.Errorf("export after the changes (-got +want):\n%s", diff)
			}
			// The patched document is also what a fresh load of the data gives.
			sameReads(t, loaded(t, m.ds, relstore.Options{}), ref)
		})
	}
}

// abortAfterApply applies a batch in a transaction it then aborts: the
// store must be as it was. A batch refused for breaking a rule (a tree
// too deep) is aborted as it is.
func abortAfterApply(tb testing.TB, s *relstore.Store, rev int64, batch []model.Change) {
	tb.Helper()
	ctx := context.Background()
	txn, err := s.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		tb.Fatal(err)
	}
	var rerr *model.RuleError
	if err := s.Apply(ctx, txn, rev, batch); err != nil && !errors.As(err, &rerr) {
		tb.Fatalf("apply before abort: %v", err)
	}
	s.Abort(ctx, txn)
}

// sameError compares the error of Apply with index.Patch's: both nil, or
// both failing, ErrIncomplete alike, and a *model.RuleError of Patch
// matched by an equal one (the same text, problem and organizations).
func sameError(gotErr, wantErr error) string {
	if (gotErr == nil) != (wantErr == nil) || errors.Is(gotErr, index.ErrIncomplete) != errors.Is(wantErr, index.ErrIncomplete) {
		return fmt.Sprintf("Apply: %v; index.Patch: %v", gotErr, wantErr)
	}
	var want *model.RuleError
	if !errors.As(wantErr, &want) {
		return ""
	}
	var got *model.RuleError
	if !errors.As(gotErr, &got) {
		return fmt.Sprintf("Apply: %v, not a *model.RuleError; index.Patch: %v", gotErr, wantErr)
	}
	if diff := cmp.Diff(got, want); diff != "" || gotErr.Error() != wantErr.Error() {
		return fmt.Sprintf("Apply: %v; index.Patch: %v; rule error (-got +want):\n%s", gotErr, wantErr, diff)
	}
	return ""
}

// TestApplyErrors: each change index.Patch refuses is refused, naming the
// change, and leaves nothing of its batch applied.
func TestApplyErrors(t *testing.T) {
	ok := model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_new", OrganizationID: "org_a", Type: "workspace", ExternalID: "new"}}
	tests := []struct {
		name       string
		change     model.Change
		incomplete bool
	}{
		{"unknown parent", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "project", ExternalID: "x", ParentID: "r_nope"}}, false},
		{"resource of an unknown organization", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_x", OrganizationID: "org_nope", Type: "workspace", ExternalID: "x"}}, false},
		{"membership of an unknown organization", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_x", OrganizationID: "org_nope"}}, false},
		{"membership with an unknown role", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_x", OrganizationID: "org_a", RoleSlugs: []string{"nope"}}}, false},
		{"assignment of an unknown membership", model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_x", MembershipID: "om_nope", RoleSlug: "admin", ResourceID: "r_ws1"}}, false},
		{"assignment of an unknown role", model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_x", MembershipID: "om_1", RoleSlug: "nope", ResourceID: "r_ws1"}}, false},
		{"assignment delete with only its id", model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_1"}}, true},
		{"no entity", model.Change{Op: model.OpUpsert}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ref := loaded(t, small(), relstore.Options{}), newReference(t, small())
			batch := []model.Change{ok, tc.change}
			gotErr, wantErr := apply(s, 43, batch), ref.apply(43, batch)
			if wantErr == nil {
				t.Fatal("index.Patch accepts the change: the case tests nothing")
			}
			if gotErr == nil {
				t.Fatal("Apply accepted the change")
			}
			if msg := sameError(gotErr, wantErr); msg != "" {
				t.Error(msg)
			}
			if errors.Is(gotErr, index.ErrIncomplete) != tc.incomplete {
				t.Errorf("Apply: %v; ErrIncomplete wanted: %v", gotErr, tc.incomplete)
			}
			if want := "change 2 of 2: "; len(gotErr.Error()) < len(want) || gotErr.Error()[:len(want)] != want {
				t.Errorf("Apply: %q does not name the change", gotErr)
			}
			sameReads(t, s, ref)
		})
	}
}

// TestApplyInvariants: changes that index.Patch would take but that break
// an invariant the database enforces are refused with ErrInvariant, and
// leave the document as it was.
func TestApplyInvariants(t *testing.T) {
	tests := []struct {
		name   string
		change model.Change
	}{
		{"external id of another resource", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "project", ExternalID: "p1", ParentID: "r_ws1"}}},
		{"organization of a resource", model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_wsb", OrganizationID: "org_a", Type: "workspace", ExternalID: "wb"}}},
		{"organization of a membership", model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_1", OrganizationID: "org_b"}}},
		{"root id of an existing resource", model.Change{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_x", RootResourceID: "r_ws1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ref := loaded(t, small(), relstore.Options{}), newReference(t, small())
			if err := apply(s, 43, []model.Change{tc.change}); !errors.Is(err, relstore.ErrInvariant) {
				t.Fatalf("Apply: %v, want ErrInvariant", err)
			}
			sameReads(t, s, ref)
		})
	}
}

// TestApplyRuleErrors: each change index.Patch refuses for breaking a rule
// is refused with an equal *model.RuleError (where it overlaps
// ErrInvariant too), and nothing of its batch is applied.
func TestApplyRuleErrors(t *testing.T) {
	res := func(id, typ, parent string) model.Change {
		return model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: id, OrganizationID: "org_a", Type: typ, ExternalID: id, ParentID: parent}}
	}
	mem := func(org string, roles ...string) model.Change {
		return model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_x", OrganizationID: org, Status: model.StatusActive, RoleSlugs: roles}}
	}
	assign := func(om, role, rid string) model.Change {
		return model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_x", MembershipID: om, RoleSlug: role, ResourceID: rid}}
	}
	newWS := res("r_w2", "workspace", "")
	tests := []struct {
		name    string
		changes []model.Change
		code    string
	}{
		{"resource of an unknown organization", []model.Change{{Op: model.OpUpsert, Resource: &model.Resource{ID: "r_x", OrganizationID: "org_nope", Type: "workspace", ExternalID: "x"}}}, model.CodeUnknownReference},
		{"unknown parent", []model.Change{res("r_x", "project", "r_nope")}, model.CodeUnknownReference},
		{"parent in another organization", []model.Change{res("r_x", "workspace", "root_b")}, model.CodeCrossOrganization},
		{"re-parent into the own subtree", []model.Change{res("r_ws1", "workspace", "r_p1")}, model.CodeCycle},
		{"own parent", []model.Change{res("r_ws1", "workspace", "r_ws1")}, model.CodeCycle},
		{"re-parent of a root", []model.Change{{Op: model.OpUpsert, Resource: &model.Resource{ID: "root_b", OrganizationID: "org_b", Type: "organization", ExternalID: "org_b"}}}, model.CodeCycle},
		{"new resource too deep", []model.Change{res("r_x", "project", "r_p1")}, model.CodeDepthExceeded},
		{"move that pushes a descendant too deep", []model.Change{newWS, res("r_ws1", "workspace", "r_w2")}, model.CodeDepthExceeded},
		{"membership of an unknown organization", []model.Change{mem("org_nope")}, model.CodeUnknownReference},
		{"membership with an unknown role", []model.Change{mem("org_a", "admin", "nope")}, model.CodeUnknownReference},
		{"membership with a role not of the organization type", []model.Change{mem("org_a", "ws-admin")}, model.CodeRoleTypeMismatch},
		{"assignment of an unknown membership", []model.Change{assign("om_nope", "admin", "r_ws1")}, model.CodeUnknownReference},
		{"assignment on an unknown resource", []model.Change{assign("om_1", "admin", "r_nope")}, model.CodeUnknownReference},
		{"assignment across organizations", []model.Change{assign("om_1", "ws-admin", "r_wsb")}, model.CodeCrossOrganization},
		{"assignment of an unknown role", []model.Change{assign("om_1", "nope", "r_ws1")}, model.CodeUnknownReference},
		{"assignment of a role of another type", []model.Change{assign("om_1", "admin", "r_ws1")}, model.CodeRoleTypeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := small()
			ds.MaxDepth = 3 // org_a's projects are at depth 3
			s, ref := loaded(t, ds, relstore.Options{}), newReference(t, ds)
			batch := append([]model.Change{res("r_new", "workspace", "")}, tc.changes...)
			gotErr, wantErr := apply(s, 43, batch), ref.apply(43, batch)
			var want *model.RuleError
			if !errors.As(wantErr, &want) || want.Problem.Code != tc.code {
				t.Fatalf("index.Patch: %v, want a rule error %s: the case tests nothing", wantErr, tc.code)
			}
			if msg := sameError(gotErr, wantErr); msg != "" {
				t.Error(msg)
			}
			sameReads(t, s, ref)
		})
	}
}

// TestApplyDeletesWithoutCascade: index.Patch deletes what is below a
// deleted resource or organization even when the feed does not say so.
func TestApplyDeletesWithoutCascade(t *testing.T) {
	for _, ch := range []model.Change{
		{Op: model.OpDelete, Resource: &model.Resource{ID: "r_ws1"}},
		{Op: model.OpDelete, Organization: &model.Organization{ID: "org_a"}},
		{Op: model.OpDelete, Resource: &model.Resource{ID: "authz_resource_root_org_a"}},
		{Op: model.OpDelete, Membership: &model.Membership{ID: "om_1"}},
		{Op: model.OpDelete, Role: &model.Role{Slug: "admin"}},
		{Op: model.OpDelete, Permission: &model.Permission{Slug: "org:view"}},
	} {
		s, ref := loaded(t, small(), relstore.Options{}), newReference(t, small())
		if err := apply(s, 43, []model.Change{ch}); err != nil {
			t.Fatal(err)
		}
		if err := ref.apply(43, []model.Change{ch}); err != nil {
			t.Fatal(err)
		}
		sameReads(t, s, ref)
		// What follows a delete: the organization's roles again, in an
		// organization that may have lost its root.
		again := model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: "om_2", OrganizationID: "org_a", Status: model.StatusActive}}
		if gotErr, wantErr := apply(s, 44, []model.Change{again}), ref.apply(44, []model.Change{again}); (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("after %v: Apply: %v; index.Patch: %v", ch, gotErr, wantErr)
		}
		sameReads(t, s, ref)
	}
}
