package relstore

import (
	"bytes"
	"cmp"
	"container/heap"
	"slices"
)

// Members in id order. list-memberships pages through the members with a
// permission on a resource by id; a page must not cost the members that
// are not on it. Two ordered sets make that possible:
//
//   - byGrantee: every grant record, keyed (resource row, kind of the
//     principal, role keys, principal id), role keys compared as lists of
//     strings. The grants on one resource to memberships with one list of
//     roles are one range in id order, and a resource holds few distinct
//     lists, so the grants that carry a permission are a few ranges,
//     whatever the number of those that do not.
//   - byMember: every link record, keyed (group row, member id): a group's
//     members in id order.
//
// A page of the members of a resource is then a merge, by id, of one
// stream per (anchor, list of roles with the permission) and one per group
// granted such a list on an anchor: a seek per stream and a step per
// member on the page. As for tree order, keys are not stored: they are
// read from the records when compared.

// compareGrants orders grant records a and b in byGrantee.
func (st *state) compareGrants(a, b uint32) int {
	g := &st.grants
	if c := st.compareGrantRange(a, g.at(b, grRes), st.mems.at(g.at(b, grMem), memKind), g.at(b, grKeys)); c != 0 {
		return c
	}
	return st.str.compare(st.mems.at(g.at(a, grMem), memID), st.mems.at(g.at(b, grMem), memID))
}

// compareGrantRange orders grant record gr's range against (res, kind,
// keys); keys 0 stands before every list of (res, kind).
func (st *state) compareGrantRange(gr, res, kind, keys uint32) int {
	g := &st.grants
	if c := cmp.Compare(g.at(gr, grRes), res); c != 0 {
		return c
	}
	if c := cmp.Compare(st.mems.at(g.at(gr, grMem), memKind), kind); c != 0 {
		return c
	}
	if keys == 0 {
		return 1
	}
	return slices.CompareFunc(st.lists.get(g.at(gr, grKeys)), st.lists.get(keys), st.str.compare)
}

func (st *state) compareLinks(a, b uint32) int {
	l := &st.links
	if c := cmp.Compare(l.at(a, lnGroup), l.at(b, lnGroup)); c != 0 {
		return c
	}
	return st.str.compare(st.mems.at(l.at(a, lnMem), memID), st.mems.at(l.at(b, lnMem), memID))
}

// orderGrant and unorderGrant add grant record row to byGrantee and take
// it out (before its keys change); orderLink and unorderLink the same for
// link records and byMember. The sets are kept once the state is built.
func (st *state) orderGrant(row uint32) {
	if st.ordered {
		st.insertSorted(&st.byGrantee, row, func(x uint32) int { return st.compareGrants(x, row) })
	}
}

func (st *state) unorderGrant(row uint32) {
	if st.ordered {
		st.removeSorted(&st.byGrantee, row, func(x uint32) int { return st.compareGrants(x, row) })
	}
}

func (st *state) orderLink(row uint32) {
	if st.ordered {
		st.insertSorted(&st.byMember, row, func(x uint32) int { return st.compareLinks(x, row) })
	}
}

func (st *state) unorderLink(row uint32) {
	if st.ordered {
		st.removeSorted(&st.byMember, row, func(x uint32) int { return st.compareLinks(x, row) })
	}
}

// setGrantKeys gives grant record row the role keys list keys, moving it
// in byGrantee.
func (st *state) setGrantKeys(row, keys uint32) {
	st.unorderGrant(row)
	st.set(&st.grants, row, grKeys, keys)
	st.orderGrant(row)
}

// buildMemberOrder fills byGrantee and byMember in a pass over the
// resources and the groups, in row order, sorting each one's records.
func (st *state) buildMemberOrder() {
	grants := make([]uint32, 0, st.grants.len())
	st.res.live(resID, func(res uint32) {
		start := len(grants)
		for gr := st.res.at(res, resFirstGrant); gr != 0; gr = st.grants.at(gr, grNextOfRes) {
			grants = append(grants, gr)
		}
		slices.SortFunc(grants[start:], st.compareGrants)
	})
	links := make([]uint32, 0, st.links.len())
	st.mems.live(memID, func(row uint32) {
		if st.mems.at(row, memKind) != kindGroup {
			return
		}
		start := len(links)
		st.linked(row, func(ln, _ uint32) { links = append(links, ln) })
		slices.SortFunc(links[start:], st.compareLinks)
	})
	st.byGrantee = rowSet{chunked(grants)}
	st.byMember = rowSet{chunked(links)}
}

// memberQuery asks for a page of the memberships that may hold a
// permission on a resource, in id order: the read of member_page/<query
// as JSON>. As with pageQuery, the policy checks every id it gets back;
// the store only finds and orders the candidates.
type memberQuery struct {
	Resource string `json:"resource"` // an id
	// Direct keeps the grants on the resource itself; else on it and its
	// ancestors.
	Direct     bool   `json:"direct"`
	Permission string `json:"permission"`
	// After is the id the page starts after (before, when Desc); "": from
	// the start.
	After string `json:"after"`
	Desc  bool   `json:"desc"`
	Limit int    `json:"limit"`
}

// memberPage returns q's page: the active memberships of the resource's
// organization granted, themselves or through a group, a role with the
// permission on the resource or (unless Direct) an ancestor, as
// {"ids": [...], "principals": [...], "anchors": [...]}: for each
// membership, where one such grant is, the principal it is to (the
// membership, or the group) and the resource it is on.
func (st *state) memberPage(q memberQuery) map[string]any {
	res := st.resourceNamed(q.Resource)
	limit := min(q.Limit, maxPageQuery)
	var ids, whos, anchors []uint32
	if res != 0 && limit > 0 {
		m := memberMerge{st: st, desc: q.Desc}
		after := []byte(q.After)
		for a := res; a != 0; a = st.res.at(a, resParent) {
			st.anchorStreams(&m, a, q.Permission, after)
			if q.Direct {
				break
			}
		}
		org := st.res.at(res, resOrg)
		heap.Init(&m)
		for m.Len() > 0 && len(ids) < limit {
			s := m.streams[0]
			if id := st.mems.at(s.cur, memID); st.mems.at(s.cur, memOrg) == org && (len(ids) == 0 || ids[len(ids)-1] != id) {
				who := s.cur
				if s.group != 0 {
					who = s.group
				}
				ids, whos = append(ids, id), append(whos, st.mems.at(who, memID))
				anchors = append(anchors, st.res.at(s.anchor, resID))
			}
			if s.next() {
				heap.Fix(&m, 0)
			} else {
				heap.Pop(&m)
			}
		}
	}
	return map[string]any{"ids": st.strs(ids), "principals": st.strs(whos), "anchors": st.strs(anchors)}
}

// anchorStreams adds to m the streams of the grants on resource a that
// carry perm: one per list of roles granted to memberships, one per group.
func (st *state) anchorStreams(m *memberMerge, a uint32, perm string, after []byte) {
	g := &st.grants
	principal := func(gr uint32) uint32 { return g.at(gr, grMem) }
	set := &st.byGrantee
	p := set.search(func(x uint32) bool { return st.compareGrantRange(x, a, kindMembership, 0) < 0 })
	for {
		gr, _ := set.at(p)
		if gr == 0 || g.at(gr, grRes) != a || st.mems.at(g.at(gr, grMem), memKind) != kindMembership {
			break
		}
		keys := g.at(gr, grKeys)
		inRange := func(x uint32) bool {
			return g.at(x, grRes) == a && g.at(x, grKeys) == keys && st.mems.at(g.at(x, grMem), memKind) == kindMembership
		}
		if st.listHas(keys, perm) {
			m.add(set, st.seekID(set, func(x uint32) int { return st.compareGrantRange(x, a, kindMembership, keys) }, principal, after, m.desc), inRange, principal, a, 0)
		}
		p = set.search(func(x uint32) bool { return st.compareGrantRange(x, a, kindMembership, keys) <= 0 })
	}
	for {
		var gr uint32
		if gr, p = set.step(p, false); gr == 0 || g.at(gr, grRes) != a {
			break
		}
		if !st.listHas(g.at(gr, grKeys), perm) {
			continue
		}
		group := g.at(gr, grMem)
		l := &st.links
		member := func(ln uint32) uint32 { return l.at(ln, lnMem) }
		byGroup := func(x uint32) int { return cmp.Compare(l.at(x, lnGroup), group) }
		m.add(&st.byMember, st.seekID(&st.byMember, byGroup, member, after, m.desc), func(x uint32) bool { return l.at(x, lnGroup) == group }, member, a, group)
	}
}

// seekID returns where a stream of a range of set starts: the range is
// the rows x with inRange(x) == 0 (below it < 0), in id order of mem(x);
// the stream starts after id after (before it when desc).
func (st *state) seekID(set *rowSet, inRange func(x uint32) int, mem func(x uint32) uint32, after []byte, desc bool) pos {
	return set.search(func(x uint32) bool {
		c := inRange(x)
		if c != 0 || len(after) == 0 {
			return c < 0 || (c == 0 && desc)
		}
		id := st.str.bytes(st.mems.at(mem(x), memID))
		if desc {
			return bytes.Compare(id, after) < 0
		}
		return bytes.Compare(id, after) <= 0
	})
}

// listHas reports whether a role of role keys list keys holds perm.
func (st *state) listHas(keys uint32, perm string) bool {
	for _, k := range st.lists.get(keys) {
		if row := st.role(k); row != 0 && st.roleHas(row, perm) {
			return true
		}
	}
	return false
}

// memberStream walks one range of an ordered set, yielding the active
// memberships its records name, in id order (reversed when desc): the
// grants on anchor to memberships with one list of roles, or the members
// of a group granted on anchor.
type memberStream struct {
	st      *state
	set     *rowSet
	p       pos
	desc    bool
	inRange func(row uint32) bool
	mem     func(row uint32) uint32
	cur     uint32 // the current membership row
	anchor  uint32 // the resource row the grants are on
	group   uint32 // the group row; 0 for grants to the memberships
}

// next moves to the stream's next active membership, false at its end.
func (s *memberStream) next() bool {
	for {
		var row uint32
		row, s.p = s.set.step(s.p, s.desc)
		if row == 0 || !s.inRange(row) {
			return false
		}
		if m := s.mem(row); s.st.mems.at(m, memActive) == 1 {
			s.cur = m
			return true
		}
	}
}

// memberMerge is a heap of streams by their current id.
type memberMerge struct {
	st      *state
	desc    bool
	streams []*memberStream
}

func (m *memberMerge) add(set *rowSet, p pos, inRange func(uint32) bool, mem func(uint32) uint32, anchor, group uint32) {
	s := &memberStream{st: m.st, set: set, p: p, desc: m.desc, inRange: inRange, mem: mem, anchor: anchor, group: group}
	if s.next() {
		m.streams = append(m.streams, s)
	}
}

func (m *memberMerge) Len() int { return len(m.streams) }
func (m *memberMerge) Less(i, j int) bool {
	c := m.st.str.compare(m.st.mems.at(m.streams[i].cur, memID), m.st.mems.at(m.streams[j].cur, memID))
	if m.desc {
		return c > 0
	}
	return c < 0
}
func (m *memberMerge) Swap(i, j int) { m.streams[i], m.streams[j] = m.streams[j], m.streams[i] }
func (m *memberMerge) Push(x any)    { m.streams = append(m.streams, x.(*memberStream)) }
func (m *memberMerge) Pop() any {
	s := m.streams[len(m.streams)-1]
	m.streams = m.streams[:len(m.streams)-1]
	return s
}
