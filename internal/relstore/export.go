package relstore

import (
	"bufio"
	"encoding/json"
	"io"
)

// export writes the whole document as JSON, equal to index.Build's document
// for the same data, keys sorted, one entry at a time: only one entry's
// value is in memory at once (and, per collection, its sorted row numbers).
func (st *state) export(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	e := exporter{w: bw}
	e.raw("{")
	for i, name := range documentKeys {
		if i > 0 {
			e.raw(",")
		}
		e.value(name)
		e.raw(":")
		switch name {
		case keyRevision:
			e.raw(string(st.revisionValue()))
		case keyOrgs:
			e.entries(st, &st.orgs, orgID, func(row uint32) (any, bool) { return st.orgValue(row), true })
		case keyResources:
			e.entries(st, &st.res, resID, func(row uint32) (any, bool) { return st.resourceValue(row), true })
		case keyLookup:
			e.entries(st, &st.orgs, orgID, func(row uint32) (any, bool) { v, _ := st.lookupValue(row, 0); return v, true })
		case keyChildren:
			e.entries(st, &st.res, resID, func(row uint32) (any, bool) { return st.childrenValue(row) })
		case keyGrants:
			e.entries(st, &st.res, resID, func(row uint32) (any, bool) { return st.grantsValue(row) })
		case keyMemberships:
			e.entries(st, &st.mems, memID, anyValue(membersOnly(st, always(st.membershipValue))))
		case keyOrgRoles:
			e.entries(st, &st.mems, memID, anyValue(membersOnly(st, always(st.orgRolesValue))))
		case keyGroups:
			e.entries(st, &st.mems, memID, anyValue(groupsOnly(st, st.groupValue)))
		case keyMemberGroups:
			e.entries(st, &st.mems, memID, anyValue(membersOnly(st, st.memberGroupsValue)))
		case keyRoles:
			e.entries(st, &st.roles, roleKey, func(row uint32) (any, bool) { return st.roleValue(row), true })
		case keyPermissions:
			e.entries(st, &st.perms, permSlug, func(row uint32) (any, bool) { return st.permValue(row), true })
		case keyResourceTypes:
			e.entries(st, &st.types, typeSlug, func(uint32) (any, bool) { return true, true })
		case keyMaxDepth:
			e.raw(string(st.maxDepthValue()))
		case keyAttributes:
			e.entries(st, &st.res, resID, st.attributesOf(&st.res, resAttrs, true))
		case keyOrgAttributes:
			e.entries(st, &st.orgs, orgID, st.attributesOf(&st.orgs, orgAttrs, true))
		case keyQuarantined:
			e.entries(st, &st.heldOrgs, heldID, func(uint32) (any, bool) { return true, true })
		case keyQuarantinedResources:
			e.entries(st, &st.heldRes, heldID, func(row uint32) (any, bool) { return st.heldValue(&st.heldRes)(row), true })
		case keyQuarantinedMemberships:
			e.entries(st, &st.heldMems, heldID, func(row uint32) (any, bool) { return st.heldValue(&st.heldMems)(row), true })
		}
	}
	e.raw("}")
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

// exporter writes JSON, keeping the first error.
type exporter struct {
	w   *bufio.Writer
	err error
}

func (e *exporter) raw(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

// value writes v as encoding/json does (map keys sorted).
func (e *exporter) value(v any) {
	if e.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return
	}
	_, e.err = e.w.Write(b)
}

// entries writes an object of the rows of t, by their key field f,
// sorted by key, skipping rows value has no entry for.
func (e *exporter) entries(st *state, t *table, f int, value func(uint32) (any, bool)) {
	e.raw("{")
	first := true
	for _, row := range st.rows(t, f, true) {
		v, ok := value(row)
		if !ok {
			continue
		}
		if !first {
			e.raw(",")
		}
		first = false
		e.value(st.str.str(t.at(row, f)))
		e.raw(":")
		e.value(v)
	}
	e.raw("}")
}
