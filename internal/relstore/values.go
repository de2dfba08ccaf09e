package relstore

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// The values of the document, materialized from a state: each function
// returns a new value in the plain Go shape OPA's in-memory store returns
// for the document index.Build makes (map[string]any, []any, string, bool,
// json.Number), which the caller owns. Lists the document keeps sorted are
// sorted here, at read time.

func (st *state) revisionValue() json.Number {
	return json.Number(strconv.FormatInt(st.revision, 10))
}

// strs returns the strings of list l, in order; never nil.
func (st *state) strs(l []uint32) []any {
	out := make([]any, len(l))
	st.str.box(out, l)
	return out
}

// sortedStrs returns the strings of rows' column col, sorted; never nil.
func (st *state) sortedStrs(col []uint32, rows []uint32) []any {
	ids := make([]uint32, len(rows))
	for i, r := range rows {
		ids[i] = col[r]
	}
	slices.SortFunc(ids, st.str.compare)
	return st.strs(ids)
}

func (st *state) orgValue(row uint32) map[string]any {
	return map[string]any{"root": st.str.str(st.orgs.root[row])}
}

// resourceValue is [org, type, ext, anc], anc the resource and its
// ancestors, nearest first: the parent links walked up to the root.
func (st *state) resourceValue(row uint32) []any {
	r := &st.res
	var ids [16]uint32 // org, type, ext, then the chain: on the stack at usual depths
	l := append(ids[:0], r.org[row], r.typ[row], r.ext[row])
	for p := row; p != 0; p = r.parent[p] {
		l = append(l, r.id[p])
	}
	vals := make([]any, len(l))
	st.str.box(vals, l)
	return []any{vals[0], vals[1], vals[2], vals[3:len(vals):len(vals)]}
}

// childrenValue is the ids of row's children, sorted; false when it has
// none (the document has no entry then).
func (st *state) childrenValue(row uint32) ([]any, bool) {
	r := &st.res
	if r.firstChild[row] == 0 {
		return nil, false
	}
	var kids []uint32
	for c := r.firstChild[row]; c != 0; c = r.nextSib[c] {
		kids = append(kids, c)
	}
	return st.sortedStrs(r.id, kids), true
}

// descendantsValue is the ids of every resource below row, sorted.
func (st *state) descendantsValue(row uint32) []any {
	sub := st.subtree(row, nil)
	return st.sortedStrs(st.res.id, sub[1:])
}

// grantsValue is grants[rid] for resource row: membership → role keys;
// false when there are no grants on it.
func (st *state) grantsValue(row uint32) (map[string]any, bool) {
	g := &st.grants
	if st.res.firstGrant[row] == 0 {
		return nil, false
	}
	out := map[string]any{}
	for gr := st.res.firstGrant[row]; gr != 0; gr = g.nextOfRes[gr] {
		out[st.str.str(st.mems.id[g.mem[gr]])] = st.strs(st.lists.get(g.keys[gr]))
	}
	return out, true
}

func (st *state) membershipValue(row uint32) map[string]any {
	return map[string]any{
		"org":     st.str.str(st.mems.org[row]),
		"active":  st.mems.active[row] == 1,
		"anchors": st.anchors(row),
	}
}

// anchors is the ids of the resources membership row holds grants on,
// sorted; never nil.
func (st *state) anchors(row uint32) []any {
	g := &st.grants
	var rows []uint32
	for gr := st.mems.firstGrant[row]; gr != 0; gr = g.nextOfMem[gr] {
		rows = append(rows, g.res[gr])
	}
	return st.sortedStrs(st.res.id, rows)
}

func (st *state) orgRolesValue(row uint32) []any {
	return st.strs(st.lists.get(st.mems.orgRoles[row]))
}

func (st *state) roleValue(row uint32) map[string]any {
	r := &st.roles
	return map[string]any{
		"slug":        st.str.str(r.slug[row]),
		"type":        st.str.str(r.typ[row]),
		"permissions": st.rolePermissions(row),
	}
}

func (st *state) rolePermissions(row uint32) map[string]any {
	ps := st.lists.get(st.roles.perms[row])
	out := make(map[string]any, len(ps))
	for _, p := range ps {
		out[st.str.str(p)] = true
	}
	return out
}

// roleHas reports whether role row holds permission p, without
// materializing its permissions.
func (st *state) roleHas(row uint32, p string) bool {
	for _, s := range st.lists.get(st.roles.perms[row]) {
		if string(st.str.bytes(s)) == p {
			return true
		}
	}
	return false
}

func (st *state) permValue(row uint32) map[string]any {
	return map[string]any{"type": st.str.str(st.perms.typ[row])}
}

// lookupValue is lookup[org] (typ 0) or lookup[org][typ]: type → external
// id → resource id, over the resources of organization row orow. Every
// resource of an organization is in its root's tree (ErrInvariant), so
// that is where they are found. An organization without resources has an
// empty object; a type without resources has none (false).
func (st *state) lookupValue(orow, typ uint32) (map[string]any, bool) {
	r := &st.res
	out := map[string]any{}
	root := st.resource(st.orgs.root[orow])
	if root == 0 {
		return out, typ == 0
	}
	for _, row := range st.subtree(root, nil) {
		if typ != 0 {
			if r.typ[row] == typ {
				out[st.str.str(r.ext[row])] = st.str.str(r.id[row])
			}
			continue
		}
		t := st.str.str(r.typ[row])
		exts, _ := out[t].(map[string]any)
		if exts == nil {
			exts = map[string]any{}
			out[t] = exts
		}
		exts[st.str.str(r.ext[row])] = st.str.str(r.id[row])
	}
	return out, typ == 0 || len(out) > 0
}

// rows returns the live rows of a table whose key column is col (0 for a
// free row), sorted by that key when sorted is true.
func (st *state) rows(col []uint32, sorted bool) []uint32 {
	out := make([]uint32, 0, len(col))
	for row, k := range col {
		if row != 0 && k != 0 {
			out = append(out, uint32(row))
		}
	}
	if sorted {
		slices.SortFunc(out, func(a, b uint32) int { return st.str.compare(col[a], col[b]) })
	}
	return out
}

// collection materializes the whole collection name, or returns false
// when the document has no such key.
func (st *state) collection(name string) (any, bool) {
	switch name {
	case keyRevision:
		return st.revisionValue(), true
	case keyOrgs:
		return collect(st, st.orgs.id, st.orgValue), true
	case keyResources:
		return collect(st, st.res.id, func(row uint32) any { return st.resourceValue(row) }), true
	case keyLookup:
		return collect(st, st.orgs.id, func(row uint32) any { v, _ := st.lookupValue(row, 0); return v }), true
	case keyChildren:
		return st.collectSome(st.res.id, func(row uint32) (any, bool) { return st.childrenValue(row) }), true
	case keyGrants:
		return st.collectSome(st.res.id, func(row uint32) (any, bool) { return st.grantsValue(row) }), true
	case keyMemberships:
		return collect(st, st.mems.id, st.membershipValue), true
	case keyOrgRoles:
		return collect(st, st.mems.id, func(row uint32) any { return st.orgRolesValue(row) }), true
	case keyRoles:
		return collect(st, st.roles.key, st.roleValue), true
	case keyPermissions:
		return collect(st, st.perms.slug, st.permValue), true
	}
	return nil, false
}

func collect[V any](st *state, col []uint32, value func(uint32) V) map[string]any {
	out := make(map[string]any, len(col))
	for _, row := range st.rows(col, false) {
		out[st.str.str(col[row])] = value(row)
	}
	return out
}

func (st *state) collectSome(col []uint32, value func(uint32) (any, bool)) map[string]any {
	out := map[string]any{}
	for _, row := range st.rows(col, false) {
		if v, ok := value(row); ok {
			out[st.str.str(col[row])] = v
		}
	}
	return out
}

// Document keys, as index.Build names them, and the key of the
// descendants of a resource, which only this store serves.
const (
	keyRevision    = "revision"
	keyOrgs        = "orgs"
	keyResources   = "resources"
	keyLookup      = "lookup"
	keyChildren    = "children"
	keyGrants      = "grants"
	keyMemberships = "memberships"
	keyOrgRoles    = "org_roles"
	keyRoles       = "roles"
	keyPermissions = "permissions"
	keyDescendants = "descendants"
)

// documentKeys are the keys of the document, sorted as encoding/json
// writes them.
var documentKeys = func() []string {
	ks := []string{keyRevision, keyOrgs, keyResources, keyLookup, keyChildren, keyGrants, keyMemberships, keyOrgRoles, keyRoles, keyPermissions}
	slices.SortFunc(ks, strings.Compare)
	return ks
}()

// document materializes the whole document.
func (st *state) document() map[string]any {
	out := make(map[string]any, len(documentKeys))
	for _, k := range documentKeys {
		out[k], _ = st.collection(k)
	}
	return out
}
