package relstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/util"
)

// The values of the document, materialized from a state: each function
// returns a new value in the plain Go shape OPA's in-memory store returns
// for the document index.Build makes (map[string]any, []any, string, bool,
// json.Number), which the caller owns. Lists the document keeps sorted are
// sorted here, at read time.

func (st *state) revisionValue() json.Number {
	return json.Number(strconv.FormatInt(st.revision, 10))
}

func (st *state) maxDepthValue() json.Number {
	return json.Number(strconv.Itoa(st.maxDepth))
}

// heldValue is the organization of a quarantined resource or membership.
func (st *state) heldValue(t *table) func(uint32) string {
	return func(row uint32) string { return st.str.str(t.at(row, heldOrg)) }
}

func held(uint32) bool { return true }

// strs returns the strings of list l, in order; never nil.
func (st *state) strs(l []uint32) []any {
	out := make([]any, len(l))
	st.str.box(out, l)
	return out
}

// sortedStrs returns the strings field f of rows of t, sorted; never nil.
func (st *state) sortedStrs(t *table, f int, rows []uint32) []any {
	ids := make([]uint32, len(rows))
	for i, r := range rows {
		ids[i] = t.at(r, f)
	}
	slices.SortFunc(ids, st.str.compare)
	return st.strs(ids)
}

func (st *state) orgValue(row uint32) map[string]any {
	return map[string]any{"root": st.str.str(st.orgs.at(row, orgRoot))}
}

// resourceValue is [org, type, ext, anc], anc the resource and its
// ancestors, nearest first: the parent links walked up to the root.
func (st *state) resourceValue(row uint32) []any {
	r := &st.res
	var ids [16]uint32 // org, type, ext, then the chain: on the stack at usual depths
	l := append(ids[:0], r.at(row, resOrg), r.at(row, resTyp), r.at(row, resExt))
	for p := row; p != 0; p = r.at(p, resParent) {
		l = append(l, r.at(p, resID))
	}
	vals := make([]any, len(l))
	st.str.box(vals, l)
	return []any{vals[0], vals[1], vals[2], vals[3:len(vals):len(vals)]}
}

// childrenValue is the ids of row's children, sorted; false when it has
// none (the document has no entry then).
func (st *state) childrenValue(row uint32) ([]any, bool) {
	r := &st.res
	if r.at(row, resFirstChild) == 0 {
		return nil, false
	}
	var kids []uint32
	for c := r.at(row, resFirstChild); c != 0; c = r.at(c, resNextSib) {
		kids = append(kids, c)
	}
	return st.sortedStrs(r, resID, kids), true
}

// grantsValue is grants[rid] for resource row: membership → role keys;
// false when there are no grants on it.
func (st *state) grantsValue(row uint32) (map[string]any, bool) {
	g := &st.grants
	first := st.res.at(row, resFirstGrant)
	if first == 0 {
		return nil, false
	}
	out := map[string]any{}
	for gr := first; gr != 0; gr = g.at(gr, grNextOfRes) {
		out[st.str.str(st.mems.at(g.at(gr, grMem), memID))] = st.strs(st.lists.get(g.at(gr, grKeys)))
	}
	return out, true
}

func (st *state) membershipValue(row uint32) map[string]any {
	return map[string]any{
		"org":     st.str.str(st.mems.at(row, memOrg)),
		"active":  st.mems.at(row, memActive) == 1,
		"anchors": st.anchors(row),
	}
}

// anchors is the ids of the resources membership row holds grants on,
// sorted; never nil.
func (st *state) anchors(row uint32) []any {
	g := &st.grants
	var rows []uint32
	for gr := st.mems.at(row, memFirstGrant); gr != 0; gr = g.at(gr, grNextOfMem) {
		rows = append(rows, g.at(gr, grRes))
	}
	return st.sortedStrs(&st.res, resID, rows)
}

func (st *state) orgRolesValue(row uint32) []any {
	return st.strs(st.lists.get(st.mems.at(row, memOrgRoles)))
}

func (st *state) roleValue(row uint32) map[string]any {
	return map[string]any{
		"slug":        st.str.str(st.roles.at(row, roleSlug)),
		"type":        st.str.str(st.roles.at(row, roleTyp)),
		"permissions": st.rolePermissions(row),
	}
}

func (st *state) rolePermissions(row uint32) map[string]any {
	ps := st.lists.get(st.roles.at(row, rolePerms))
	out := make(map[string]any, len(ps))
	for _, p := range ps {
		out[st.str.str(p)] = true
	}
	return out
}

// roleHas reports whether role row holds permission p, without
// materializing its permissions.
func (st *state) roleHas(row uint32, p string) bool {
	for _, s := range st.lists.get(st.roles.at(row, rolePerms)) {
		if string(st.str.bytes(s)) == p {
			return true
		}
	}
	return false
}

func (st *state) permValue(row uint32) map[string]any {
	return map[string]any{"type": st.str.str(st.perms.at(row, permTyp))}
}

// lookupValue is lookup[org] (typ 0) or lookup[org][typ]: type → external
// id → resource id, over the resources of organization row orow. Every
// resource of an organization is in its root's tree (ErrInvariant), so
// that is where they are found. An organization without resources has an
// empty object; a type without resources has none (false).
func (st *state) lookupValue(orow, typ uint32) (map[string]any, bool) {
	r := &st.res
	out := map[string]any{}
	root := st.resource(st.orgs.at(orow, orgRoot))
	if root == 0 {
		return out, typ == 0
	}
	for _, row := range st.subtree(root, nil) {
		if typ != 0 {
			if r.at(row, resTyp) == typ {
				out[st.str.str(r.at(row, resExt))] = st.str.str(r.at(row, resID))
			}
			continue
		}
		t := st.str.str(r.at(row, resTyp))
		exts, _ := out[t].(map[string]any)
		if exts == nil {
			exts = map[string]any{}
			out[t] = exts
		}
		exts[st.str.str(r.at(row, resExt))] = st.str.str(r.at(row, resID))
	}
	return out, typ == 0 || len(out) > 0
}

// rows returns the rows in use of t, whose key is field f, sorted by key
// when sorted is true.
func (st *state) rows(t *table, f int, sorted bool) []uint32 {
	var out []uint32
	t.live(f, func(row uint32) { out = append(out, row) })
	if sorted {
		slices.SortFunc(out, func(a, b uint32) int { return st.str.compare(t.at(a, f), t.at(b, f)) })
	}
	return out
}

// attributesValue decodes the attributes stored as string a (from
// model.Attributes.JSON) as OPA's stores hold JSON: numbers as
// json.Number.
func (st *state) attributesValue(a uint32) (any, error) {
	var v any
	err := util.UnmarshalJSON(st.str.bytes(a), &v)
	return v, err
}

// attributesOf is the value of field f of a row of t for collectSome and
// the exporter: false for none, else the attributes, decoded or (raw) as
// stored.
func (st *state) attributesOf(t *table, f int, raw bool) func(uint32) (any, bool) {
	return func(row uint32) (any, bool) {
		a := t.at(row, f)
		if a == 0 {
			return nil, false
		}
		if raw {
			return json.RawMessage(st.str.bytes(a)), true
		}
		v, err := st.attributesValue(a)
		if err != nil { // written by model.Attributes.JSON: cannot happen
			panic(fmt.Sprintf("relstore: stored attributes do not decode: %v", err))
		}
		return v, true
	}
}

// collection materializes the whole collection name, or returns false
// when the document has no such key.
func (st *state) collection(name string) (any, bool) {
	switch name {
	case keyRevision:
		return st.revisionValue(), true
	case keyOrgs:
		return collect(st, &st.orgs, orgID, st.orgValue), true
	case keyResources:
		return collect(st, &st.res, resID, st.resourceValue), true
	case keyLookup:
		return collect(st, &st.orgs, orgID, func(row uint32) map[string]any { v, _ := st.lookupValue(row, 0); return v }), true
	case keyChildren:
		return collectSome(st, &st.res, resID, st.childrenValue), true
	case keyGrants:
		return collectSome(st, &st.res, resID, st.grantsValue), true
	case keyMemberships:
		return collectSome(st, &st.mems, memID, membersOnly(st, always(st.membershipValue))), true
	case keyOrgRoles:
		return collectSome(st, &st.mems, memID, membersOnly(st, always(st.orgRolesValue))), true
	case keyGroups:
		return collectSome(st, &st.mems, memID, groupsOnly(st, st.groupValue)), true
	case keyMemberGroups:
		return collectSome(st, &st.mems, memID, membersOnly(st, st.memberGroupsValue)), true
	case keyRoles:
		return collect(st, &st.roles, roleKey, st.roleValue), true
	case keyPermissions:
		return collect(st, &st.perms, permSlug, st.permValue), true
	case keyResourceTypes:
		return collect(st, &st.types, typeSlug, func(uint32) bool { return true }), true
	case keyMaxDepth:
		return st.maxDepthValue(), true
	case keyAttributes:
		return collectSome(st, &st.res, resID, st.attributesOf(&st.res, resAttrs, false)), true
	case keyOrgAttributes:
		return collectSome(st, &st.orgs, orgID, st.attributesOf(&st.orgs, orgAttrs, false)), true
	case keyQuarantined:
		return collect(st, &st.heldOrgs, heldID, held), true
	case keyQuarantinedResources:
		return collect(st, &st.heldRes, heldID, st.heldValue(&st.heldRes)), true
	case keyQuarantinedMemberships:
		return collect(st, &st.heldMems, heldID, st.heldValue(&st.heldMems)), true
	}
	return nil, false
}

// collect materializes a collection: the value of each row of t, by its key
// field f.
func collect[V any](st *state, t *table, f int, value func(uint32) V) map[string]any {
	return collectSome(st, t, f, func(row uint32) (V, bool) { return value(row), true })
}

// collectSome is collect for a collection without an entry for every row.
func collectSome[V any](st *state, t *table, f int, value func(uint32) (V, bool)) map[string]any {
	out := map[string]any{}
	t.live(f, func(row uint32) {
		if v, ok := value(row); ok {
			out[st.str.str(t.at(row, f))] = v
		}
	})
	return out
}

// Document keys, as index.Build names them, and the key of the pages in
// tree order (order.go), which only this store serves.
const (
	keyRevision      = "revision"
	keyOrgs          = "orgs"
	keyResources     = "resources"
	keyLookup        = "lookup"
	keyChildren      = "children"
	keyGrants        = "grants"
	keyMemberships   = "memberships"
	keyOrgRoles      = "org_roles"
	keyGroups        = "groups"
	keyMemberGroups  = "member_groups"
	keyRoles         = "roles"
	keyPermissions   = "permissions"
	keyResourceTypes = "resource_types"
	keyMaxDepth      = "max_depth"
	keyTreePage      = "tree_page"
	keyMemberPage    = "member_page"

	keyAttributes    = "attributes"
	keyOrgAttributes = "org_attributes"

	keyQuarantined            = "quarantined"
	keyQuarantinedResources   = "quarantined_resources"
	keyQuarantinedMemberships = "quarantined_memberships"
)

// documentKeys are the keys of the document, sorted as encoding/json
// writes them.
var documentKeys = func() []string {
	ks := []string{keyRevision, keyOrgs, keyResources, keyLookup, keyChildren, keyGrants, keyMemberships, keyOrgRoles, keyGroups, keyMemberGroups, keyRoles, keyPermissions, keyResourceTypes,
		keyMaxDepth, keyAttributes, keyOrgAttributes, keyQuarantined, keyQuarantinedResources, keyQuarantinedMemberships}
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
