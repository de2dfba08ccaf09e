package relstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/model"
)

// These methods replace one organization's part of the document, for a
// data source that quarantines an organization, or re-reads one and swaps
// it in, while every other organization keeps being served: the
// equivalents of index.RemoveOrganization, index.PutQuarantine and
// index.MergeOrganization. Like Apply, each needs a write transaction of
// the store, changes the document in place under the write lock and, on
// error, leaves it as it was before the call; the transaction's Abort
// undoes them all. They find an organization's memberships, roles and
// quarantine entries by scanning those tables: O(memberships + roles +
// quarantine entries), plus the organization's own size.

// RemoveOrganization deletes every entry of organization org from the
// document — its root and resources with their external ids, children and
// grants, its memberships with their organization roles, its own roles,
// and its quarantine entries — and returns the ids of the resources and
// memberships it held, as entries or as quarantine entries (resources
// parents first, then quarantined ones; memberships in table order, then
// quarantined ones). An organization the document does not hold is not an
// error.
func (s *Store) RemoveOrganization(ctx context.Context, txn storage.Transaction, org string) (resources, memberships []string, err error) {
	err = s.change(ctx, txn, func(st *state) error {
		resources, memberships = st.removeOrganization(org)
		return nil
	})
	return resources, memberships, err
}

// PutQuarantine records q in the document: the organization as
// quarantined, and each of its resource and membership ids as its. The
// organization's own entries must be gone (RemoveOrganization).
func (s *Store) PutQuarantine(ctx context.Context, txn storage.Transaction, q model.Quarantine) error {
	return s.change(ctx, txn, func(st *state) error {
		st.putQuarantine(q)
		return nil
	})
}

// MergeOrganization writes organization org's part of part, a dataset
// holding that organization (and the data every organization shares, as
// model.Dataset.Isolate returns it), into the document: its root,
// resources, memberships, grants and own roles. The organization's previous
// entries must be gone (RemoveOrganization); the shared data of part
// (environment roles, permissions, revision, other organizations) is not
// written. part is refused as Load refuses a dataset, with the same error;
// an id of part that another organization uses already breaks
// ErrInvariant. An organization part does not hold is not an error.
func (s *Store) MergeOrganization(ctx context.Context, txn storage.Transaction, org string, part *model.Dataset) error {
	if _, err := s.writeTxn(txn); err != nil {
		return err
	}
	sub, err := build(part) // before the lock, like Load
	if err != nil {
		return err
	}
	return s.change(ctx, txn, func(st *state) error { return st.merge(sub, org) })
}

func (st *state) removeOrganization(org string) (resources, memberships []string) {
	id := st.str.lookup(org)
	if id == 0 {
		return nil, nil // a string never interned names nothing
	}
	if orow := st.org(id); orow != 0 {
		if root := st.resource(st.orgs.at(orow, orgRoot)); root != 0 {
			for _, n := range st.subtree(root, nil) {
				resources = append(resources, st.str.str(st.res.at(n, resID)))
			}
			st.deleteResource(root)
		}
		st.dropOrg(orow)
	}
	var mems []uint32
	st.mems.live(memID, func(row uint32) {
		if st.mems.at(row, memOrg) == id {
			mems = append(mems, row)
		}
	})
	for _, row := range mems {
		if st.mems.at(row, memKind) == kindMembership {
			memberships = append(memberships, st.str.str(st.mems.at(row, memID)))
		}
		st.deleteMembership(row) // a group's too, with its members and grants
	}
	prefix := []byte(org + "/")
	var roles []uint32
	st.roles.live(roleKey, func(row uint32) {
		if bytes.HasPrefix(st.str.bytes(st.roles.at(row, roleKey)), prefix) {
			roles = append(roles, row)
		}
	})
	for _, row := range roles {
		st.dropRole(row)
	}
	resources = append(resources, st.dropHeld(&st.heldRes, &st.heldResByID, id)...)
	memberships = append(memberships, st.dropHeld(&st.heldMems, &st.heldMemByID, id)...)
	st.dropHeld(&st.heldOrgs, &st.heldOrgByID, id)
	return resources, memberships
}

// dropHeld removes the entries of t (indexed by x) held by organization
// org (a string number) and returns their ids.
func (st *state) dropHeld(t *table, x *hashIndex, org uint32) []string {
	var rows []uint32
	t.live(heldID, func(row uint32) {
		if t.at(row, heldOrg) == org {
			rows = append(rows, row)
		}
	})
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		ids = append(ids, st.str.str(t.at(row, heldID)))
		st.remove(x, row)
		st.release(t, row)
	}
	return ids
}

func (st *state) putQuarantine(q model.Quarantine) {
	org := st.str.intern(q.Organization)
	st.putHeld(&st.heldOrgs, &st.heldOrgByID, org, org)
	for _, id := range q.Resources {
		st.putHeld(&st.heldRes, &st.heldResByID, st.str.intern(id), org)
	}
	for _, id := range q.Memberships {
		st.putHeld(&st.heldMems, &st.heldMemByID, st.str.intern(id), org)
	}
}

// merge copies organization org of sub, a state built from a dataset that
// holds it, into st: the organization, the subtree of its root, its
// memberships and their grants, and its own roles.
func (st *state) merge(sub *state, org string) error {
	orow := sub.orgNamed(org)
	if orow == 0 {
		return nil
	}
	// str copies a string of sub into st.
	str := func(v uint32) uint32 {
		if v == 0 {
			return 0
		}
		return st.str.intern(sub.str.str(v))
	}
	list := func(l uint32) uint32 {
		keys := sub.lists.get(l)
		out := make([]uint32, len(keys))
		for i, k := range keys {
			out[i] = str(k) // sorted by content in sub, so in st
		}
		return st.lists.intern(out)
	}
	prefix := []byte(org + "/")
	var err error
	sub.roles.live(roleKey, func(row uint32) {
		r := &sub.roles
		if bytes.HasPrefix(sub.str.bytes(r.at(row, roleKey)), prefix) {
			st.putRole(str(r.at(row, roleKey)), str(r.at(row, roleSlug)), str(r.at(row, roleTyp)), list(r.at(row, rolePerms)))
		}
	})
	id, root := str(sub.orgs.at(orow, orgID)), str(sub.orgs.at(orow, orgRoot))
	if st.org(id) != 0 {
		return invariant("organization %s: it is in the document already", org)
	}
	st.set(&st.orgs, st.addOrg(id, root), orgAttrs, str(sub.orgs.at(orow, orgAttrs)))

	resRow := map[uint32]uint32{} // sub's row → st's
	if top := sub.resource(sub.orgs.at(orow, orgRoot)); top != 0 {
		r, r0 := &sub.res, &st.res
		for _, n := range sub.subtree(top, nil) {
			rid := str(r.at(n, resID))
			if st.resource(rid) != 0 {
				return invariant("resource %s: id is used by another organization", st.str.str(rid))
			}
			resRow[n] = st.addResource(rid, str(r.at(n, resOrg)), str(r.at(n, resTyp)), str(r.at(n, resExt)), resRow[r.at(n, resParent)])
			st.set(r0, resRow[n], resAttrs, str(r.at(n, resAttrs)))
		}
	}
	sub.mems.live(memID, func(row uint32) {
		m := &sub.mems
		if err != nil || sub.str.str(m.at(row, memOrg)) != org {
			return
		}
		mid := str(m.at(row, memID))
		if st.principal(mid) != 0 {
			err = invariant("membership %s: id is used by another organization", st.str.str(mid))
			return
		}
		mem := st.addMembership(mid, id)
		st.set(&st.mems, mem, memActive, m.at(row, memActive))
		st.set(&st.mems, mem, memOrgRoles, list(m.at(row, memOrgRoles)))
		st.set(&st.mems, mem, memKind, m.at(row, memKind))
		st.set(&st.mems, mem, memName, str(m.at(row, memName)))
		for gr := m.at(row, memFirstGrant); gr != 0; gr = sub.grants.at(gr, grNextOfMem) {
			res, ok := resRow[sub.grants.at(gr, grRes)]
			if !ok {
				err = fmt.Errorf("relstore: membership %s: a grant on resource %s of another organization", st.str.str(mid),
					sub.str.str(sub.res.at(sub.grants.at(gr, grRes), resID)))
				return
			}
			st.addGrant(res, mem, list(sub.grants.at(gr, grKeys)))
		}
	})
	if err != nil {
		return err
	}
	// Group members, both ends now in st: one organization's only.
	sub.links.live(lnGroup, func(ln uint32) {
		g, m := sub.links.at(ln, lnGroup), sub.links.at(ln, lnMem)
		if sub.str.str(sub.mems.at(g, memOrg)) == org {
			st.addLink(st.principal(str(sub.mems.at(g, memID))), st.principal(str(sub.mems.at(m, memID))))
		}
	})
	return nil
}
