package relstore

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/trellis-authz/trellis/internal/model"
)

// build returns the state of ds's document, straight from the dataset. It
// refuses what index.Build refuses, with the same error text (an unknown
// parent, a tree deeper than ds.Depth() or cyclic, a role that does not
// resolve, an assignment of an unknown membership or on an unknown
// resource), and what breaks ErrInvariant.
func build(ds *model.Dataset) (*state, error) {
	st := newState(sizesOf(ds))
	st.revision = ds.Revision
	st.maxDepth = ds.Depth()
	for _, p := range ds.Permissions {
		st.putPerm(st.str.intern(p.Slug), st.str.intern(p.ResourceType))
	}
	for _, t := range ds.ResourceTypes {
		st.putType(t.Slug)
	}
	for _, r := range ds.Roles {
		st.putRoleOf(r) // a later role of the same key replaces an earlier one, as in index.Build
	}
	if err := st.buildResources(ds); err != nil {
		return nil, err
	}
	if err := st.buildGroups(ds); err != nil {
		return nil, err
	}
	if err := st.buildGrants(ds); err != nil {
		return nil, err
	}
	if err := st.buildGroupMembers(ds); err != nil {
		return nil, err
	}
	for _, q := range ds.Quarantined {
		st.putQuarantine(q)
	}
	// The two orders read the tables and write only themselves.
	var wg sync.WaitGroup
	wg.Go(st.buildOrder)
	st.buildMemberOrder()
	wg.Wait()
	st.ordered = true
	st.str.arenaAtCompact = len(st.str.arena)
	st.lists.dataAtCompact = len(st.lists.data)
	return st, nil
}

// sizesOf counts what ds needs, so that every table is allocated once.
func sizesOf(ds *model.Dataset) sizes {
	n := sizes{
		resources: len(ds.Resources) + len(ds.Organizations),
		orgs:      len(ds.Organizations),
		mems:      len(ds.Memberships) + len(ds.Groups),
		links:     len(ds.GroupMembers),
		grants:    len(ds.Assignments) + len(ds.Memberships),
		roles:     len(ds.Roles),
		perms:     len(ds.Permissions),
		types:     len(ds.ResourceTypes),
		lists:     len(ds.Roles) + len(ds.Organizations) + 16,
		heldOrgs:  len(ds.Quarantined),
	}

	add := func(s string) {
		n.strings++
		n.stringBytes += uvarintLen(len(s)) + len(s)
	}
	for _, o := range ds.Organizations {
		add(o.ID)
		add(o.RootID())
	}
	for _, r := range ds.Resources {
		add(r.ID)
		add(r.ExternalID)
	}
	for _, m := range ds.Memberships {
		add(m.ID)
	}
	for _, g := range ds.Groups {
		add(g.ID)
		add(g.Name)
	}
	for _, r := range ds.Roles {
		add(r.Key())
		add(r.Slug)
	}
	for _, p := range ds.Permissions {
		add(p.Slug)
	}
	for _, q := range ds.Quarantined {
		n.heldRes += len(q.Resources)
		n.heldMems += len(q.Memberships)
		add(q.Organization)
		for _, id := range q.Resources {
			add(id)
		}
		for _, id := range q.Memberships {
			add(id)
		}
	}
	n.strings += len(ds.ResourceTypes) + 1
	return n
}

func (st *state) buildResources(ds *model.Dataset) error {
	r := &st.res
	orgType := st.str.intern(model.OrganizationType)
	for _, o := range ds.Organizations {
		id, root := st.str.intern(o.ID), st.str.intern(o.RootID())
		if st.org(id) != 0 {
			return invariant("organization %s: id is used more than once", o.ID)
		}
		if st.resource(root) != 0 {
			return invariant("organization %s: root resource id %s is used more than once", o.ID, o.RootID())
		}
		st.set(&st.orgs, st.addOrg(id, root), orgAttrs, st.attributes(o.Attributes))
		st.addResource(root, id, orgType, id, 0)
	}
	// Each key is hashed once, when its strings are interned: the indexes
	// by id and by external id hash the same content. A string new to the
	// table names no resource yet, so it needs no lookup.
	rows := make([]uint32, len(ds.Resources))
	var org, typ strKey // the last resource's: resources come in runs of one organization
	for i, res := range ds.Resources {
		id, idHash, freshID := st.str.internHash(res.ID)
		org.intern(&st.str, res.OrganizationID)
		typ.intern(&st.str, res.Type)
		ext, extStrHash, freshExt := st.str.internHash(res.ExternalID)
		if !freshID && st.resource(id) != 0 {
			return invariant("resource %s: id is used more than once", res.ID)
		}
		h := extHash(org.hash, typ.hash, extStrHash)
		if holder := st.holderOf(freshExt, org.v, typ.v, ext, h); holder != 0 {
			return invariant("resource %s: external id %q of type %q is resource %s's in organization %s",
				res.ID, res.ExternalID, res.Type, st.str.str(r.at(holder, resID)), res.OrganizationID)
		}
		rows[i] = st.addResourceHashed(id, org.v, typ.v, ext, 0, idHash, h)
		st.set(r, rows[i], resAttrs, st.attributes(res.Attributes))
	}
	// Parents first, checked for depth and cycles before any child list is
	// linked, so that a cycle is reported rather than followed.
	for i, res := range ds.Resources {
		parent := st.parentOf(res)
		if parent == 0 {
			return fmt.Errorf("resource %s: unknown parent %q", res.ID, res.ParentID)
		}
		if r.at(parent, resOrg) != r.at(rows[i], resOrg) { // never so for a root: it is its organization's
			return invariant("resource %s: parent %s is in organization %s, not %s", res.ID, res.ParentID, st.str.str(r.at(parent, resOrg)), res.OrganizationID)
		}
		st.set(r, rows[i], resParent, parent)
	}
	if err := st.checkDepth(rows, ds.Depth()); err != nil {
		return err
	}
	for _, row := range rows {
		st.link(r.at(row, resParent), row)
	}
	return nil
}

// parentOf is the row of res's parent: its ParentID's, or when it has
// none its organization's root; 0 when there is no such resource.
func (st *state) parentOf(res model.Resource) uint32 {
	if res.ParentID != "" {
		return st.resourceNamed(res.ParentID)
	}
	if orow := st.orgNamed(res.OrganizationID); orow != 0 {
		return st.resource(st.orgs.at(orow, orgRoot))
	}
	return 0
}

// holderOf is the resource holding external id key (org, typ, ext) of
// extHash h, or 0, which it is when ext is a string new to the table.
func (st *state) holderOf(freshExt bool, org, typ, ext uint32, h uint64) uint32 {
	if freshExt {
		return 0
	}
	return st.resourceByExtHash(org, typ, ext, h)
}

// strKey is a string interned, with its hash, kept for the next string
// that may well be the same.
type strKey struct {
	s    string
	v    uint32
	hash uint64
}

func (k *strKey) intern(t *strtab, s string) {
	if k.v == 0 || s != k.s {
		k.v, k.hash, _ = t.internHash(s)
		k.s = s
	}
}

// checkDepth reports a resource deeper than maxDepth levels (the root is
// 1) or on a cycle of parent links, with index.Build's words. Each resource
// is walked once: depths are remembered.
func (st *state) checkDepth(rows []uint32, maxDepth int) error {
	r := &st.res
	depth := make([]int32, r.len()) // 0: not known yet
	var path []uint32
	for _, n := range rows {
		path = append(path[:0], n)
		cur := n
		for r.at(cur, resParent) != 0 && depth[cur] == 0 {
			if len(path) > maxDepth {
				return fmt.Errorf("resource %s: tree deeper than %d levels or cyclic", st.str.str(r.at(n, resID)), maxDepth)
			}
			cur = r.at(cur, resParent)
			path = append(path, cur)
		}
		last := path[len(path)-1]
		if depth[last] == 0 {
			depth[last] = 1 // an organization root
		}
		for i := len(path) - 2; i >= 0; i-- {
			if depth[path[i]] = depth[path[i+1]] + 1; int(depth[path[i]]) > maxDepth {
				return fmt.Errorf("resource %s: tree deeper than %d levels", st.str.str(r.at(path[i], resID)), maxDepth)
			}
		}
	}
	return nil
}

// minPart is the fewest assignments worth a goroutine of their own.
const minPart = 1 << 14

// assignmentGrant is assignment a's grant: its resource, principal (of
// organization memberOrg[row]) and role key rows. It only reads st.
func (st *state) assignmentGrant(a model.Assignment, memberOrg []string) (grant, error) {
	mem, kind := st.membershipNamed(a.MembershipID), "membership"
	if a.MembershipID == "" {
		mem, kind = st.groupNamed(a.GroupID), "group"
	}
	if mem == 0 {
		return grant{}, fmt.Errorf("assignment %s: unknown %s %q", a.ID, kind, a.Principal())
	}
	res := st.resourceNamed(a.ResourceID)
	if res == 0 {
		return grant{}, fmt.Errorf("assignment %s: unknown resource %q", a.ID, a.ResourceID)
	}
	k, err := st.roleKey(memberOrg[mem], a.RoleSlug)
	if err != nil {
		return grant{}, fmt.Errorf("assignment %s: %w", a.ID, err)
	}
	return grant{res, mem, k}, nil
}

// grant is a grant of the build: resource, principal and role key rows.
type grant struct{ res, mem, key uint32 }

// buildGrants makes the grant records: each membership's organization
// roles on its organization's root, and every assignment.
func (st *state) buildGrants(ds *model.Dataset) error {
	all := make([]grant, 0, len(ds.Assignments)+len(ds.Memberships))
	memberOrg := make([]string, len(ds.Memberships)+1) // by membership row
	var keys []uint32
	for _, m := range ds.Memberships {
		id := st.str.intern(m.ID)
		if st.principal(id) != 0 {
			return invariant("membership %s: id is used more than once", m.ID)
		}
		keys = keys[:0]
		for _, slug := range m.RoleSlugs {
			k, err := st.roleKey(m.OrganizationID, slug)
			if err != nil {
				return fmt.Errorf("membership %s: %w", m.ID, err)
			}
			keys = append(keys, k)
		}
		slices.SortFunc(keys, st.str.compare)
		org := st.str.intern(m.OrganizationID)
		row := st.addMembership(id, org)
		if int(row) >= len(memberOrg) {
			memberOrg = append(memberOrg, make([]string, int(row)+1-len(memberOrg))...)
		}
		memberOrg[row] = m.OrganizationID
		st.set(&st.mems, row, memActive, boolNum(m.Status == model.StatusActive))
		st.set(&st.mems, row, memOrgRoles, st.lists.intern(keys))
		if len(keys) == 0 {
			continue
		}
		var root uint32
		if orow := st.org(org); orow != 0 {
			root = st.resource(st.orgs.at(orow, orgRoot))
		}
		if root == 0 {
			return invariant("membership %s: unknown organization %q", m.ID, m.OrganizationID)
		}
		for _, k := range keys {
			all = append(all, grant{root, row, k})
		}
	}
	for _, g := range ds.Groups {
		row := st.groupNamed(g.ID)
		if int(row) >= len(memberOrg) {
			memberOrg = append(memberOrg, make([]string, int(row)+1-len(memberOrg))...)
		}
		memberOrg[row] = g.OrganizationID
	}
	// The assignments' lookups only read the tables, so they run in
	// parallel: a part of the list a goroutine, the first failing
	// assignment's error reported.
	as := ds.Assignments
	resolved := make([]grant, len(as))
	parts := min(runtime.GOMAXPROCS(0), max(1, len(as)/minPart))
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			for i := p * len(as) / parts; i < (p+1)*len(as)/parts; i++ {
				var err error
				if resolved[i], err = st.assignmentGrant(as[i], memberOrg); err != nil {
					errs[p] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // in list order
		if err != nil {
			return err
		}
	}
	all = append(all, resolved...)
	// Sorted, the grants of one (resource, membership) are adjacent with
	// their keys in order: one record each.
	slices.SortFunc(all, func(x, y grant) int {
		if c := cmp.Compare(x.res, y.res); c != 0 {
			return c
		}
		if c := cmp.Compare(x.mem, y.mem); c != 0 {
			return c
		}
		return st.str.compare(x.key, y.key)
	})
	for i := 0; i < len(all); {
		j := i
		keys = keys[:0]
		for ; j < len(all) && all[j].res == all[i].res && all[j].mem == all[i].mem; j++ {
			keys = append(keys, all[j].key)
		}
		st.addGrant(all[i].res, all[i].mem, st.lists.intern(keys))
		i = j
	}
	return nil
}
