package relstore

// compact reclaims the strings and lists nothing names any more: those of
// deleted entities, replaced grant lists, changes rolled back. It marks
// what the tables name, then compacts both tables; every live string and
// list keeps its number, so no table needs rewriting. It is O(document)
// and runs under the write lock, when the tables have grown by half since
// the last compaction (compactDue), so its cost is amortized over the
// changes that grew them.
func (st *state) compact() {
	liveStr := make([]bool, len(st.str.offs))
	liveList := make([]bool, len(st.lists.offs))
	mark := func(live []bool, cols ...[]uint32) {
		for _, col := range cols {
			for _, v := range col {
				live[v] = true
			}
		}
	}
	r, o, m, ro, p := &st.res, &st.orgs, &st.mems, &st.roles, &st.perms
	mark(liveStr, r.id, r.org, r.typ, r.ext, o.id, o.root, m.id, m.org, ro.key, ro.slug, ro.typ, p.slug, p.typ)
	mark(liveList, st.grants.keys, m.orgRoles, ro.perms)
	for v, live := range liveList {
		if live && v != 0 {
			mark(liveStr, st.lists.get(uint32(v)))
		}
	}
	st.lists.compact(liveList)
	st.str.compact(liveStr)
}
