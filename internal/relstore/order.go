package relstore

import (
	"bytes"
	"slices"
)

// Tree order. Lists page through resources in the order of a depth-first
// walk of each organization's tree, children by id: a resource's key is
// its path, the ids from the organization root down to it, compared id
// by id (a prefix first). In that order every subtree is one contiguous
// range, so a page of the resources below a few anchors is a seek per
// anchor and a walk of the page, whatever the size of the rest.
//
// Two ordered sets of resource rows hold it: byTree keyed (organization,
// path), and byTypeTree keyed (organization, type, path), where the
// resources of one type below an anchor are one range too. Keys are not
// stored: they are the parent links and ids, read when compared, so a set
// is 4 bytes a resource (a rowSet, rowset.go).

// orderSet is rowSet of resource rows in tree order.
type orderSet struct {
	typed bool // keyed by (organization, type, path); else (organization, path)
	rowSet
}

// treeKey is the key of a position in a set: an organization, a type (of
// a typed set's keys), and a path of ids from the root. With sup set it
// stands just after every key the path is a prefix of: the end of the
// path's subtree.
type treeKey struct {
	org, typ []byte
	path     [][]byte
	sup      bool
}

// pathRows returns the rows from row's organization root down to row,
// in buf.
func (st *state) pathRows(row uint32, buf []uint32) []uint32 {
	buf = buf[:0]
	for r := row; r != 0; r = st.res.at(r, resParent) {
		buf = append(buf, r)
	}
	slices.Reverse(buf)
	return buf
}

// keyOf returns the key of resource row in a set (typed or not).
func (st *state) keyOf(row uint32, typed bool) treeKey {
	k := treeKey{org: st.str.bytes(st.res.at(row, resOrg))}
	if typed {
		k.typ = st.str.bytes(st.res.at(row, resTyp))
	}
	var buf [16]uint32
	for _, r := range st.pathRows(row, buf[:0]) {
		k.path = append(k.path, st.str.bytes(st.res.at(r, resID)))
	}
	return k
}

// compareKey orders row's key in s against k.
func (st *state) compareKey(s *orderSet, row uint32, k *treeKey) int {
	if c := bytes.Compare(st.str.bytes(st.res.at(row, resOrg)), k.org); c != 0 {
		return c
	}
	if s.typed {
		if c := bytes.Compare(st.str.bytes(st.res.at(row, resTyp)), k.typ); c != 0 {
			return c
		}
	}
	var buf [16]uint32
	path := st.pathRows(row, buf[:0])
	for i := 0; i < len(path) && i < len(k.path); i++ {
		if c := bytes.Compare(st.str.bytes(st.res.at(path[i], resID)), k.path[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(path) >= len(k.path) && k.sup:
		return -1
	case len(path) == len(k.path):
		return 0
	case len(path) < len(k.path):
		return -1
	}
	return 1
}

// search returns the position of the first row whose key is ≥ k, or > k
// when after is set.
func (st *state) search(s *orderSet, k *treeKey, after bool) pos {
	return s.search(func(row uint32) bool {
		c := st.compareKey(s, row, k)
		return c < 0 || (after && c == 0)
	})
}

// insertRow adds resource row, whose key must be set and new, to s.
func (st *state) insertRow(s *orderSet, row uint32) {
	k := st.keyOf(row, s.typed)
	st.insertSorted(&s.rowSet, row, func(x uint32) int { return st.compareKey(s, x, &k) })
}

// removeRow drops resource row from s, before its key changes.
func (st *state) removeRow(s *orderSet, row uint32) {
	k := st.keyOf(row, s.typed)
	st.removeSorted(&s.rowSet, row, func(x uint32) int { return st.compareKey(s, x, &k) })
}

// order and unorder add resource row to both sets and take it out; the
// sets are kept only once the state is built (st.ordered).
func (st *state) order(row uint32) {
	if st.ordered {
		st.insertRow(&st.byTree, row)
		st.insertRow(&st.byTypeTree, row)
	}
}

func (st *state) unorder(row uint32) {
	if st.ordered {
		st.removeRow(&st.byTree, row)
		st.removeRow(&st.byTypeTree, row)
	}
}

// buildOrder fills both sets from the trees, in O(resources): a walk of
// each organization's tree in key order, children sorted by id, grouped
// by type for byTypeTree. Organizations come in id order.
func (st *state) buildOrder() {
	var orgRows []uint32
	st.orgs.live(orgID, func(row uint32) { orgRows = append(orgRows, row) })
	slices.SortFunc(orgRows, func(a, b uint32) int { return st.str.compare(st.orgs.at(a, orgID), st.orgs.at(b, orgID)) })
	var all, typed []uint32
	var stack []uint32
	byID := func(a, b uint32) int { return st.str.compare(st.res.at(b, resID), st.res.at(a, resID)) } // reversed: popped in order
	for _, o := range orgRows {
		root := st.resource(st.orgs.at(o, orgRoot))
		if root == 0 {
			continue
		}
		start := len(all)
		stack = append(stack[:0], root)
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			all = append(all, n)
			mark := len(stack)
			for c := st.res.at(n, resFirstChild); c != 0; c = st.res.at(c, resNextSib) {
				stack = append(stack, c)
			}
			slices.SortFunc(stack[mark:], byID)
		}
		org := all[start:]
		typed = append(typed, org...)
		slices.SortStableFunc(typed[start:], func(a, b uint32) int { return st.str.compare(st.res.at(a, resTyp), st.res.at(b, resTyp)) })
	}
	st.byTree = orderSet{rowSet: rowSet{chunked(all)}}
	st.byTypeTree = orderSet{typed: true, rowSet: rowSet{chunked(typed)}}
}

// under reports whether row is anchor or below it.
func (st *state) under(row, anchor uint32) bool {
	for r := row; r != 0; r = st.res.at(r, resParent) {
		if r == anchor {
			return true
		}
	}
	return false
}

// pageQuery asks for a page of the resources below anchors, in tree
// order: the read of treePage/<query as JSON>. It is how a list policy
// pages without materializing a subtree: the policy decides the anchors
// (where the subject holds the permission) and checks every id it gets
// back; the store only orders.
type pageQuery struct {
	// Starts are the anchors: the page holds them and their subtrees.
	Starts []string `json:"starts"`
	// Type, when set, keeps only resources of that type.
	Type string `json:"type"`
	// After is the path (ids from the root) the page starts after (before,
	// when Desc); none: from the start.
	After []string `json:"after"`
	Desc  bool     `json:"desc"`
	Limit int      `json:"limit"`
	// Exclude is an id left out (a listed parent itself).
	Exclude string `json:"exclude"`
}

// maxPageQuery bounds a page query's limit.
const maxPageQuery = 10_000

// treePage returns q's page: {"paths": [...], "starts": [...]}, the
// paths of its resources in order and, for each, the index in it of the
// start it is below.
func (st *state) treePage(q pageQuery) map[string]any {
	type start struct {
		row uint32
		key treeKey
	}
	var starts []start
	for _, id := range q.Starts {
		if row := st.resourceNamed(id); row != 0 {
			starts = append(starts, start{row, st.keyOf(row, false)})
		}
	}
	slices.SortFunc(starts, func(a, b start) int { return compareKeys(&a.key, &b.key) })
	kept := starts[:0]
	for _, s := range starts { // anchors below another are in its range
		if len(kept) == 0 || !hasPrefix(s.key.path, kept[len(kept)-1].key.path) {
			kept = append(kept, s)
		}
	}
	if q.Desc {
		slices.Reverse(kept)
	}
	set := &st.byTree
	if q.Type != "" {
		set = &st.byTypeTree
	}
	after := make([][]byte, len(q.After))
	for i, id := range q.After {
		after[i] = []byte(id)
	}
	out, at := []any{}, []any{}
	page := func() map[string]any { return map[string]any{"paths": out, "starts": at} }
	limit := min(q.Limit, maxPageQuery)
	if limit <= 0 {
		return page()
	}
	for _, s := range kept {
		key := treeKey{org: s.key.org, typ: []byte(q.Type), path: s.key.path}
		var p pos
		rel := 2 // no After: the whole subtree
		if len(after) > 0 {
			rel = comparePath(s.key.path, after)
		}
		switch {
		case !q.Desc && rel == -1, q.Desc && rel == 1:
			continue // the whole subtree is on the other side of After
		case rel == 0: // After is in the subtree
			p = st.search(set, &treeKey{org: key.org, typ: key.typ, path: after}, !q.Desc)
		case q.Desc:
			key.sup = true
			p = st.search(set, &key, false)
		default:
			p = st.search(set, &key, false)
		}
		for {
			var row uint32
			if row, p = set.step(p, q.Desc); row == 0 || !st.under(row, s.row) || (set.typed && !bytes.Equal(st.str.bytes(st.res.at(row, resTyp)), key.typ)) {
				break
			}
			if id := st.str.bytes(st.res.at(row, resID)); string(id) != q.Exclude {
				out, at = append(out, st.pathValue(row)), append(at, len(s.key.path)-1)
				if len(out) >= limit {
					return page()
				}
			}
		}
	}
	return page()
}

// pathValue is row's path, ids from its organization root down, boxed
// in one buffer (strtab.box).
func (st *state) pathValue(row uint32) []any {
	var buf [16]uint32
	ids := st.pathRows(row, buf[:0])
	for i, r := range ids {
		ids[i] = st.res.at(r, resID)
	}
	return st.strs(ids)
}

// comparePath orders the subtree of path against position after: -1 when
// all of it is before after, 1 when all of it is after, 0 when after is
// in it.
func comparePath(path, after [][]byte) int {
	for i := 0; i < len(path) && i < len(after); i++ {
		if c := bytes.Compare(path[i], after[i]); c != 0 {
			return c
		}
	}
	if len(path) <= len(after) {
		return 0
	}
	return 1 // after is above path
}

func compareKeys(a, b *treeKey) int {
	if c := bytes.Compare(a.org, b.org); c != 0 {
		return c
	}
	return slices.CompareFunc(a.path, b.path, bytes.Compare)
}

func hasPrefix(path, prefix [][]byte) bool {
	return len(path) >= len(prefix) && slices.EqualFunc(path[:len(prefix)], prefix, bytes.Equal)
}
