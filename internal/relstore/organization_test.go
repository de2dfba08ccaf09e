package relstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// partOf is the dataset of organization org alone with ds's shared data,
// as a PostgreSQL re-read of one organization returns it.
func partOf(ds *model.Dataset, org string) *model.Dataset {
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
	for _, g := range ds.Groups {
		if g.OrganizationID == org {
			part.Groups = append(part.Groups, g)
			members[g.ID] = true
		}
	}
	for _, gm := range ds.GroupMembers {
		if members[gm.GroupID] {
			part.GroupMembers = append(part.GroupMembers, gm)
		}
	}
	for _, a := range ds.Assignments {
		if members[a.Principal()] {
			part.Assignments = append(part.Assignments, a)
		}
	}
	return part
}

// refWrite runs fn on the reference's document in one write transaction.
func (r *reference) write(fn func(index.Store) error) error {
	ctx := context.Background()
	return storage.Txn(ctx, r.store, storage.WriteParams, func(txn storage.Transaction) error {
		return fn(index.TxnStore{Ctx: ctx, Store: r.store, Txn: txn})
	})
}

func write(s *relstore.Store, fn func(context.Context, storage.Transaction) error) error {
	ctx := context.Background()
	return storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error { return fn(ctx, txn) })
}

// TestOrganizationsMatchIndex: quarantining every organization in turn
// (RemoveOrganization + PutQuarantine), then putting it back from its part
// of the dataset (RemoveOrganization + MergeOrganization), leaves the same
// document, read for read, as index's functions leave in the reference;
// and the ids each removal returns are the same.
func TestOrganizationsMatchIndex(t *testing.T) {
	for name, ds := range conformanceDatasets(true) {
		t.Run(name, func(t *testing.T) {
			s, ref := loaded(t, ds, relstore.Options{}), newReference(t, ds)
			orgs := make([]string, 0, len(ds.Organizations)+len(ds.Quarantined))
			for _, o := range ds.Organizations {
				orgs = append(orgs, o.ID)
			}
			for _, q := range ds.Quarantined {
				orgs = append(orgs, q.Organization)
			}
			for _, org := range orgs {
				var got, want model.Quarantine
				err := write(s, func(ctx context.Context, txn storage.Transaction) error {
					res, mems, err := s.RemoveOrganization(ctx, txn, org)
					got = model.Quarantine{Organization: org, Resources: res, Memberships: mems}
					if err == nil {
						err = s.PutQuarantine(ctx, txn, got)
					}
					return err
				})
				if err != nil {
					t.Fatalf("quarantine %s: %v", org, err)
				}
				err = ref.write(func(st index.Store) error {
					res, mems, err := index.RemoveOrganization(st, org)
					want = model.Quarantine{Organization: org, Resources: res, Memberships: mems}
					if err == nil {
						err = index.PutQuarantine(st, want)
					}
					return err
				})
				if err != nil {
					t.Fatalf("reference quarantine %s: %v", org, err)
				}
				for _, q := range []*model.Quarantine{&got, &want} {
					slices.Sort(q.Resources)
					slices.Sort(q.Memberships)
				}
				if diff := cmp.Diff(got, want); diff != "" {
					t.Errorf("quarantine %s (-got +want):\n%s", org, diff)
				}
				sameReads(t, s, ref)
			}
			sameExport(t, s, ref)
			for _, org := range orgs {
				part := partOf(ds, org)
				err := write(s, func(ctx context.Context, txn storage.Transaction) error {
					if _, _, err := s.RemoveOrganization(ctx, txn, org); err != nil {
						return err
					}
					return s.MergeOrganization(ctx, txn, org, part)
				})
				if err != nil {
					t.Fatalf("put %s: %v", org, err)
				}
				sub, err := index.Build(part)
				if err != nil {
					t.Fatal(err)
				}
				err = ref.write(func(st index.Store) error {
					if _, _, err := index.RemoveOrganization(st, org); err != nil {
						return err
					}
					return index.MergeOrganization(st, org, sub)
				})
				if err != nil {
					t.Fatalf("reference put %s: %v", org, err)
				}
				sameReads(t, s, ref)
			}
			sameExport(t, s, ref)
			s.Compact()
			sameReads(t, s, ref)
		})
	}
}

// sameExport compares the whole documents: what no probe of the
// reference's keys would find, an entry left behind, shows here.
func sameExport(tb testing.TB, s *relstore.Store, ref *reference) {
	tb.Helper()
	if diff := cmp.Diff(exported(tb, s), jsonDocument(tb, ref.document(tb))); diff != "" {
		tb.Errorf("export (-got +want):\n%s", diff)
	}
}

// TestMergeOrganizationRefusals: a part Load would refuse, or one whose ids
// another organization holds, is refused, and the document (with the
// removal made earlier in the transaction) stays as it was.
func TestMergeOrganizationRefusals(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*model.Dataset)
		invariant bool
	}{
		{"unknown parent", func(ds *model.Dataset) { ds.Resources[1].ParentID = "r_nope" }, false},
		{"unknown assigned role", func(ds *model.Dataset) { ds.Assignments[0].RoleSlug = "nope" }, false},
		{"resource id of another organization", func(ds *model.Dataset) { ds.Resources[1].ID = "r_wsb" }, true},
		{"membership id of another organization", func(ds *model.Dataset) {
			ds.Memberships[1].ID = "om_3" // om_2, with ra_1
			ds.Assignments[0].MembershipID = "om_3"
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := small()
			part := partOf(ds, "org_a")
			tc.mutate(part)
			s := loaded(t, ds, relstore.Options{})
			var removed bool
			err := write(s, func(ctx context.Context, txn storage.Transaction) error {
				if _, _, err := s.RemoveOrganization(ctx, txn, "org_a"); err != nil {
					return err
				}
				removed = true
				return s.MergeOrganization(ctx, txn, "org_a", part)
			})
			if err == nil || !removed {
				t.Fatalf("MergeOrganization: %v, want an error after the removal", err)
			}
			if got := errors.Is(err, relstore.ErrInvariant); got != tc.invariant {
				t.Errorf("MergeOrganization: %v; ErrInvariant %v, want %v", err, got, tc.invariant)
			}
			ref := newReference(t, ds)
			sameReads(t, s, ref)
			sameExport(t, s, ref)
		})
	}
}
