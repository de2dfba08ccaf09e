package relstore

// fieldSet names some fields of a table.
type fieldSet struct {
	t  *table
	fs []int
}

// stringFields are the fields that hold string numbers.
func (st *state) stringFields() []fieldSet {
	return []fieldSet{
		{&st.res, []int{resID, resOrg, resTyp, resExt, resAttrs}},
		{&st.mems, []int{memID, memOrg, memName}},
		{&st.orgs, []int{orgID, orgRoot, orgAttrs}},
		{&st.roles, []int{roleKey, roleSlug, roleTyp}},
		{&st.perms, []int{permSlug, permTyp}},
		{&st.types, []int{typeSlug}},
		{&st.heldOrgs, []int{heldID, heldOrg}},
		{&st.heldRes, []int{heldID, heldOrg}},
		{&st.heldMems, []int{heldID, heldOrg}},
	}
}

// listFields are the fields that hold list numbers.
func (st *state) listFields() []fieldSet {
	return []fieldSet{
		{&st.grants, []int{grKeys}},
		{&st.mems, []int{memOrgRoles}},
		{&st.roles, []int{rolePerms}},
	}
}

// eachField calls fn with a pointer to every field of sets in every row,
// free rows included (their fields are 0).
func eachField(sets []fieldSet, fn func(v *uint32)) {
	for _, s := range sets {
		for row := 1; row < s.t.len(); row++ {
			for _, f := range s.fs {
				fn(&s.t.rows[row*int(s.t.width)+f])
			}
		}
	}
}

// compact reclaims the strings and lists nothing names any more: those of
// deleted entities, replaced grant lists, changes rolled back. It marks
// what the tables name, compacts both tables and renumbers what the rows
// and lists hold. The entity indexes hash keys by content, and rows keep
// their numbers, so they stay valid; the string and list tables rebuild
// their own. It is O(document) and runs under the write lock, when the
// tables have grown by half since the last compaction (compactDue), so
// that its cost is amortized over the changes that grew them.
func (st *state) compact() {
	liveLists := newBitset(len(st.lists.data))
	eachField(st.listFields(), func(v *uint32) { liveLists.add(*v) })
	liveStrs := newBitset(len(st.str.arena))
	eachField(st.stringFields(), func(v *uint32) { liveStrs.add(*v) })
	st.lists.walk(func(v uint32, l []uint32) {
		if liveLists.has(v) {
			for _, s := range l {
				liveStrs.add(s)
			}
		}
	})

	lists := st.lists.compact(liveLists)
	eachField(st.listFields(), func(v *uint32) { *v = lists.of(*v) })
	strs := st.str.compact(liveStrs)
	eachField(st.stringFields(), func(v *uint32) { *v = strs.of(*v) })
	st.lists.rename(&strs)
	st.lists.reindex()
}
