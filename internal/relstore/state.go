package relstore

import "github.com/trellis-authz/trellis/internal/model"

// state is one data document in compact form. Every entity kind is a
// table: rows of a fixed number of uint32 fields, all in one slice (so an
// entity is one memory access away, not one per field), row 0 never used
// so that 0 means "none", a free list of rows deletes released, and a hash
// index from the entity's key to its row. Strings are numbers into str,
// lists of strings numbers into lists. Nothing in a state holds a Go
// pointer per entity: the garbage collector sees a few dozen slices.
//
// Every change goes through the methods of this file, each of which logs
// how to undo itself while a write transaction is open (undo non-nil): an
// aborted transaction runs the log backwards and leaves the state as it
// found it, down to which rows are free.
type state struct {
	revision int64
	str      strtab
	lists    listtab

	// res holds every resource, organization roots included. Children are
	// a doubly linked list (resFirstChild, resNextSib, resPrevSib) and so
	// are the grants on a resource (resFirstGrant, then grNextOfRes), so
	// that adding or removing one costs O(1). Ancestors are not stored:
	// they are the parent links, walked at read time.
	res table
	// grants holds one record per (resource, membership) with at least
	// one grant: the role keys, sorted, once per source (an assignment, an
	// organization role). Each record is in its resource's list and in
	// its membership's.
	grants table
	// mems holds each membership with its organization roles (a list of
	// role keys, sorted) and the head of its grants (then grNextOfMem).
	// Groups are rows of mems too (memKind kindGroup): a group is a
	// principal grants name like a membership, so grants[rid][g] is the
	// same record as grants[rid][om]. Reads of memberships and org_roles
	// skip group rows; ids of the two kinds have different prefixes.
	mems table
	// links holds one record per (group, membership) member pair, in the
	// group's list (lnNextOfGroup) and in the membership's (lnNextOfMem),
	// so that adding or removing a member costs O(1) however big the
	// group.
	links table
	// orgs maps an organization to its root resource's id: a string, not a
	// row, since a delete of the root resource leaves the organization.
	orgs  table
	roles table // by key (model.Role.Key)
	perms table
	types table // resource types, by slug

	// maxDepth is the most levels a tree may have (the document's
	// max_depth): Apply refuses a change that makes one deeper.
	maxDepth int
	// heldOrgs, heldRes and heldMems are the quarantined organizations
	// (model.Dataset.Quarantined) and the ids of their resources and
	// memberships, each with its organization. Only Load changes them.
	heldOrgs, heldRes, heldMems table

	resByID, resByExt, grantByPair, memByID, orgByID, roleByKey, permBySlug hashIndex
	typeBySlug                                                              hashIndex
	linkByPair                                                              hashIndex
	heldOrgByID, heldResByID, heldMemByID                                   hashIndex

	// byTree and byTypeTree hold every resource in tree order (order.go),
	// once ordered: a build fills them last, in one pass.
	byTree, byTypeTree orderSet
	// byGrantee and byMember hold the grant and link records in the
	// orders list-memberships pages in (members.go).
	byGrantee, byMember rowSet
	ordered             bool

	undo *[]func()
}

// The fields of each table's rows.
const (
	resID, resOrg, resTyp, resExt = 0, 1, 2, 3 // strings
	resParent                     = 4          // row; 0 for an organization root
	resFirstChild                 = 5          // row
	resNextSib, resPrevSib        = 6, 7       // rows
	resFirstGrant                 = 8          // grant
	resAttrs                      = 9          // string: the attributes' JSON, 0 for none
	resFields                     = 10

	grRes, grMem             = 0, 1 // rows
	grKeys                   = 2    // list of role-key strings
	grNextOfRes, grPrevOfRes = 3, 4 // grants
	grNextOfMem, grPrevOfMem = 5, 6 // grants
	grFields                 = 7

	memID, memOrg = 0, 1 // strings
	memActive     = 2    // 1 when active
	memOrgRoles   = 3    // list of role-key strings
	memFirstGrant = 4    // grant
	memKind       = 5    // kindMembership or kindGroup
	memFirstLink  = 6    // link: a membership's groups, a group's members
	memName       = 7    // string: a group's name
	memFields     = 8

	orgID, orgRoot = 0, 1 // strings
	orgAttrs       = 2    // string: the attributes' JSON, 0 for none
	orgFields      = 3

	roleKey, roleSlug, roleTyp = 0, 1, 2 // strings
	rolePerms                  = 3       // list of permission slugs, sorted, distinct
	roleFields                 = 4

	permSlug, permTyp = 0, 1 // strings
	permFields        = 2

	typeSlug   = 0 // string
	typeFields = 1

	heldID, heldOrg = 0, 1 // strings; an organization's heldOrg is its id
	heldFields      = 2
)

// table is rows of width fields each, in one slice.
type table struct {
	width uint32
	rows  []uint32
	free  []uint32
}

func newTable(width, rows int) table {
	return table{width: uint32(width), rows: make([]uint32, width, width*(rows+1))}
}

// at returns field f of row.
func (t *table) at(row uint32, f int) uint32 { return t.rows[row*t.width+uint32(f)] }

// len is the number of rows, free ones and row 0 included.
func (t *table) len() int { return len(t.rows) / int(t.width) }

// live calls fn with every row in use, in order: a row is in use when its
// key field f is set.
func (t *table) live(f int, fn func(row uint32)) {
	for row := uint32(1); int(row) < t.len(); row++ {
		if t.at(row, f) != 0 {
			fn(row)
		}
	}
}

// sizes are the expected entity counts a state is allocated for.
type sizes struct {
	strings, stringBytes, lists int
	resources, orgs, mems       int
	grants, roles, perms, links int
	types                       int
	heldOrgs, heldRes, heldMems int
}

// newState returns an empty state. Its indexes hash keys by the strings'
// content, not their numbers, so that a compaction, which renumbers
// strings, leaves them valid; and a read can look a key up without first
// finding its number.
func newState(n sizes) *state {
	st := &state{
		res:    newTable(resFields, n.resources),
		grants: newTable(grFields, n.grants),
		mems:   newTable(memFields, n.mems),
		links:  newTable(lnFields, n.links),
		orgs:   newTable(orgFields, n.orgs),
		roles:  newTable(roleFields, n.roles),
		perms:  newTable(permFields, n.perms),
		types:  newTable(typeFields, n.types),

		heldOrgs: newTable(heldFields, n.heldOrgs),
		heldRes:  newTable(heldFields, n.heldRes),
		heldMems: newTable(heldFields, n.heldMems),
	}
	st.str.init(n.strings, n.stringBytes)
	st.lists.init(n.lists)
	byString := func(t *table, f int) func(uint32) uint64 {
		return func(v uint32) uint64 { return hashBytes(st.str.bytes(t.at(v, f))) }
	}
	st.resByID = newIndex(n.resources, byString(&st.res, resID))
	st.resByExt = newIndex(n.resources, func(v uint32) uint64 {
		r := &st.res
		return hashExt(st.str.bytes(r.at(v, resOrg)), st.str.bytes(r.at(v, resTyp)), st.str.bytes(r.at(v, resExt)))
	})
	st.grantByPair = newIndex(n.grants, func(v uint32) uint64 { return mix2(st.grants.at(v, grRes), st.grants.at(v, grMem)) })
	st.memByID = newIndex(n.mems, byString(&st.mems, memID))
	st.linkByPair = newIndex(n.links, func(v uint32) uint64 { return mix2(st.links.at(v, lnGroup), st.links.at(v, lnMem)) })
	st.orgByID = newIndex(n.orgs, byString(&st.orgs, orgID))
	st.roleByKey = newIndex(n.roles, byString(&st.roles, roleKey))
	st.permBySlug = newIndex(n.perms, byString(&st.perms, permSlug))
	st.typeBySlug = newIndex(n.types, byString(&st.types, typeSlug))
	st.heldOrgByID = newIndex(n.heldOrgs, byString(&st.heldOrgs, heldID))
	st.heldResByID = newIndex(n.heldRes, byString(&st.heldRes, heldID))
	st.heldMemByID = newIndex(n.heldMems, byString(&st.heldMems, heldID))
	return st
}

// log records how to undo a change, while a write transaction is open.
func (st *state) log(undo func()) { *st.undo = append(*st.undo, undo) }

// logging reports whether changes are logged. Callers test it before they
// make an undo closure, so that a build, which logs nothing, allocates none.
func (st *state) logging() bool { return st.undo != nil }

// set writes field f of row of t.
func (st *state) set(t *table, row uint32, f int, v uint32) {
	i := row*t.width + uint32(f)
	old := t.rows[i]
	if old == v {
		return
	}
	t.rows[i] = v
	if st.logging() {
		st.log(func() { t.rows[i] = old })
	}
}

// alloc returns a row of t, all its fields 0: a released row if there is
// one, else a new one.
func (st *state) alloc(t *table) uint32 {
	var row uint32
	if n := len(t.free); n > 0 {
		row = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if uint64(len(t.rows))+uint64(t.width) > 1<<32 {
			panic("relstore: a table outgrew 32-bit row numbers")
		}
		row = uint32(t.len())
		t.rows = append(t.rows, make([]uint32, t.width)...)
	}
	if st.logging() {
		st.log(func() { t.free = append(t.free, row) })
	}
	return row
}

// release zeroes row's fields and puts it on t's free list.
func (st *state) release(t *table, row uint32) {
	for f := range int(t.width) {
		st.set(t, row, f, 0)
	}
	t.free = append(t.free, row)
	if st.logging() {
		st.log(func() { t.free = t.free[:len(t.free)-1] })
	}
}

// insert adds row v to index x; x's key fields of v must be set.
func (st *state) insert(x *hashIndex, v uint32) { st.insertHash(x, v, x.hashOf(v)) }

// insertHash is insert for a caller that has v's hash in x, h, at hand.
func (st *state) insertHash(x *hashIndex, v uint32, h uint64) {
	x.insertHash(v, h)
	if st.logging() {
		st.log(func() { x.remove(x.hashOf(v), func(u uint32) bool { return u == v }) })
	}
}

// remove drops row v from index x, before v's key fields change.
func (st *state) remove(x *hashIndex, v uint32) {
	x.remove(x.hashOf(v), func(u uint32) bool { return u == v })
	if st.logging() {
		st.log(func() { x.insert(v) })
	}
}

func (st *state) setRevision(rev int64) {
	old := st.revision
	st.revision = rev
	if st.logging() {
		st.log(func() { st.revision = old })
	}
}

// Lookups by key. Each returns 0 when there is no such entity. A key is a
// string number (0 names nothing) or, for reads, a Go string.

// numbered finds the row of t whose key field f is string k, in index x.
func (st *state) numbered(x *hashIndex, t *table, f int, k uint32) uint32 {
	if k == 0 {
		return 0
	}
	return x.find(hashBytes(st.str.bytes(k)), func(v uint32) bool { return t.at(v, f) == k })
}

// named finds the row of t whose key field f is s, in index x.
func (st *state) named(x *hashIndex, t *table, f int, s string) uint32 {
	return x.find(hashString(s), func(v uint32) bool { return string(st.str.bytes(t.at(v, f))) == s })
}

func (st *state) resource(id uint32) uint32     { return st.numbered(&st.resByID, &st.res, resID, id) }
func (st *state) resourceNamed(s string) uint32 { return st.named(&st.resByID, &st.res, resID, s) }
func (st *state) org(id uint32) uint32          { return st.numbered(&st.orgByID, &st.orgs, orgID, id) }
func (st *state) orgNamed(s string) uint32      { return st.named(&st.orgByID, &st.orgs, orgID, s) }

// principal and principalNamed find a membership or a group; membership
// and membershipNamed only a membership, groupNamed only a group.
func (st *state) principal(id uint32) uint32 { return st.numbered(&st.memByID, &st.mems, memID, id) }
func (st *state) principalNamed(s string) uint32 {
	return st.named(&st.memByID, &st.mems, memID, s)
}
func (st *state) membership(id uint32) uint32 { return st.ofKind(st.principal(id), kindMembership) }
func (st *state) membershipNamed(s string) uint32 {
	return st.ofKind(st.principalNamed(s), kindMembership)
}
func (st *state) groupNamed(s string) uint32 { return st.ofKind(st.principalNamed(s), kindGroup) }

// ofKind returns row of mems if it is of kind k, else 0.
func (st *state) ofKind(row, k uint32) uint32 {
	if row != 0 && st.mems.at(row, memKind) == k {
		return row
	}
	return 0
}
func (st *state) role(key uint32) uint32    { return st.numbered(&st.roleByKey, &st.roles, roleKey, key) }
func (st *state) roleNamed(s string) uint32 { return st.named(&st.roleByKey, &st.roles, roleKey, s) }
func (st *state) perm(slug uint32) uint32 {
	return st.numbered(&st.permBySlug, &st.perms, permSlug, slug)
}
func (st *state) permNamed(s string) uint32 { return st.named(&st.permBySlug, &st.perms, permSlug, s) }
func (st *state) typeNamed(s string) uint32 { return st.named(&st.typeBySlug, &st.types, typeSlug, s) }
func (st *state) heldOrgNamed(s string) uint32 {
	return st.named(&st.heldOrgByID, &st.heldOrgs, heldID, s)
}
func (st *state) heldResNamed(s string) uint32 {
	return st.named(&st.heldResByID, &st.heldRes, heldID, s)
}
func (st *state) heldMemNamed(s string) uint32 {
	return st.named(&st.heldMemByID, &st.heldMems, heldID, s)
}

// hashExt hashes an (organization, type, external id) key by content.
func hashExt(org, typ, ext []byte) uint64 {
	return extHash(hashBytes(org), hashBytes(typ), hashBytes(ext))
}

// extHash is hashExt of the key whose three strings hash to org, typ and
// ext.
func extHash(org, typ, ext uint64) uint64 { return mix(org ^ rotl(typ, 21) ^ rotl(ext, 42)) }

func rotl(x uint64, k uint) uint64 { return x<<k | x>>(64-k) }

// resourceByExt finds the resource of (org, typ, ext), strings numbers.
func (st *state) resourceByExt(org, typ, ext uint32) uint32 {
	if org == 0 || typ == 0 || ext == 0 {
		return 0
	}
	return st.resourceByExtHash(org, typ, ext, hashExt(st.str.bytes(org), st.str.bytes(typ), st.str.bytes(ext)))
}

// resourceByExtHash is resourceByExt of a key whose extHash is h.
func (st *state) resourceByExtHash(org, typ, ext uint32, h uint64) uint32 {
	r := &st.res
	return st.resByExt.find(h, func(v uint32) bool {
		return r.at(v, resExt) == ext && r.at(v, resTyp) == typ && r.at(v, resOrg) == org
	})
}

// resourceByExtNamed is resourceByExt for Go strings.
func (st *state) resourceByExtNamed(org, typ, ext string) uint32 {
	r := &st.res
	h := hashExt([]byte(org), []byte(typ), []byte(ext))
	return st.resByExt.find(h, func(v uint32) bool {
		return string(st.str.bytes(r.at(v, resExt))) == ext && string(st.str.bytes(r.at(v, resTyp))) == typ &&
			string(st.str.bytes(r.at(v, resOrg))) == org
	})
}

// grant finds the grant record of (res, mem), rows.
func (st *state) grant(res, mem uint32) uint32 {
	if res == 0 || mem == 0 {
		return 0
	}
	g := &st.grants
	return st.grantByPair.find(mix2(res, mem), func(v uint32) bool { return g.at(v, grRes) == res && g.at(v, grMem) == mem })
}

// Resources.

// addResource adds a resource below parent (0 for an organization root).
// Its (org, typ, ext) must be free.
func (st *state) addResource(id, org, typ, ext, parent uint32) uint32 {
	b := st.str.bytes
	return st.addResourceHashed(id, org, typ, ext, parent, hashBytes(b(id)), hashExt(b(org), b(typ), b(ext)))
}

// addResourceHashed is addResource for a caller that has the hashes of
// the resource's keys at hand: of its id, and its extHash.
func (st *state) addResourceHashed(id, org, typ, ext, parent uint32, idHash, extHash uint64) uint32 {
	r := &st.res
	row := st.alloc(r)
	st.set(r, row, resID, id)
	st.set(r, row, resOrg, org)
	st.set(r, row, resTyp, typ)
	st.set(r, row, resExt, ext)
	st.insertHash(&st.resByID, row, idHash)
	st.insertHash(&st.resByExt, row, extHash)
	if parent != 0 {
		st.link(parent, row)
	}
	st.order(row)
	return row
}

// rename gives resource row a new type and external id, which must be free.
func (st *state) rename(row, typ, ext uint32) {
	st.unorder(row)
	defer st.order(row)
	st.remove(&st.resByExt, row)
	st.set(&st.res, row, resTyp, typ)
	st.set(&st.res, row, resExt, ext)
	st.insert(&st.resByExt, row)
}

// link makes child the first child of parent.
func (st *state) link(parent, child uint32) {
	r := &st.res
	next := r.at(parent, resFirstChild)
	st.set(r, child, resParent, parent)
	st.set(r, child, resNextSib, next)
	st.set(r, child, resPrevSib, 0)
	if next != 0 {
		st.set(r, next, resPrevSib, child)
	}
	st.set(r, parent, resFirstChild, child)
}

// unlink takes child out of its parent's children.
func (st *state) unlink(child uint32) {
	r := &st.res
	parent, prev, next := r.at(child, resParent), r.at(child, resPrevSib), r.at(child, resNextSib)
	if parent == 0 {
		return
	}
	if prev != 0 {
		st.set(r, prev, resNextSib, next)
	} else {
		st.set(r, parent, resFirstChild, next)
	}
	if next != 0 {
		st.set(r, next, resPrevSib, prev)
	}
	st.set(r, child, resParent, 0)
	st.set(r, child, resNextSib, 0)
	st.set(r, child, resPrevSib, 0)
}

// dropResource removes resource row, which must have no children and no
// grants left.
func (st *state) dropResource(row uint32) {
	st.unorder(row)
	st.unlink(row)
	st.remove(&st.resByID, row)
	st.remove(&st.resByExt, row)
	st.release(&st.res, row)
}

// Grants.

// addGrant adds the record of (res, mem) with role keys list keys.
func (st *state) addGrant(res, mem, keys uint32) uint32 {
	g, r, m := &st.grants, &st.res, &st.mems
	row := st.alloc(g)
	st.set(g, row, grRes, res)
	st.set(g, row, grMem, mem)
	st.set(g, row, grKeys, keys)
	st.insert(&st.grantByPair, row)
	if next := r.at(res, resFirstGrant); next != 0 {
		st.set(g, row, grNextOfRes, next)
		st.set(g, next, grPrevOfRes, row)
	}
	st.set(r, res, resFirstGrant, row)
	if next := m.at(mem, memFirstGrant); next != 0 {
		st.set(g, row, grNextOfMem, next)
		st.set(g, next, grPrevOfMem, row)
	}
	st.set(m, mem, memFirstGrant, row)
	st.orderGrant(row)
	return row
}

// dropGrant removes grant record row from both of its lists.
func (st *state) dropGrant(row uint32) {
	g := &st.grants
	st.unorderGrant(row)
	st.remove(&st.grantByPair, row)
	st.unlist(row, grPrevOfRes, grNextOfRes, &st.res, g.at(row, grRes), resFirstGrant)
	st.unlist(row, grPrevOfMem, grNextOfMem, &st.mems, g.at(row, grMem), memFirstGrant)
	st.release(g, row)
}

// unlist takes grant row out of one of its lists: the one linked by its
// fields prev and next, whose head is field head of row owner of table t.
func (st *state) unlist(row uint32, prevF, nextF int, t *table, owner uint32, head int) {
	st.unlistIn(&st.grants, row, prevF, nextF, t, owner, head)
}

// Memberships, organizations, roles, permissions.

func (st *state) addMembership(id, org uint32) uint32 {
	row := st.alloc(&st.mems)
	st.set(&st.mems, row, memID, id)
	st.set(&st.mems, row, memOrg, org)
	st.insert(&st.memByID, row)
	return row
}

// dropMembership removes membership row, which must have no grants left.
func (st *state) dropMembership(row uint32) {
	st.remove(&st.memByID, row)
	st.release(&st.mems, row)
}

func (st *state) addOrg(id, root uint32) uint32 {
	row := st.alloc(&st.orgs)
	st.set(&st.orgs, row, orgID, id)
	st.set(&st.orgs, row, orgRoot, root)
	st.insert(&st.orgByID, row)
	return row
}

// attributes returns the string number of a's JSON, 0 for none. Equal
// attributes share one string.
func (st *state) attributes(a model.Attributes) uint32 {
	if len(a) == 0 {
		return 0
	}
	return st.str.intern(string(a.JSON()))
}

func (st *state) dropOrg(row uint32) {
	st.remove(&st.orgByID, row)
	st.release(&st.orgs, row)
}

// putRole adds or replaces the role of key.
func (st *state) putRole(key, slug, typ, permList uint32) {
	r := &st.roles
	row := st.role(key)
	if row == 0 {
		row = st.alloc(r)
		st.set(r, row, roleKey, key)
		st.insert(&st.roleByKey, row)
	}
	st.set(r, row, roleSlug, slug)
	st.set(r, row, roleTyp, typ)
	st.set(r, row, rolePerms, permList)
}

func (st *state) dropRole(row uint32) {
	st.remove(&st.roleByKey, row)
	st.release(&st.roles, row)
}

// putPerm adds or replaces the permission of slug.
func (st *state) putPerm(slug, typ uint32) {
	p := &st.perms
	row := st.perm(slug)
	if row == 0 {
		row = st.alloc(p)
		st.set(p, row, permSlug, slug)
		st.insert(&st.permBySlug, row)
	}
	st.set(p, row, permTyp, typ)
}

func (st *state) dropPerm(row uint32) {
	st.remove(&st.permBySlug, row)
	st.release(&st.perms, row)
}

// putType adds the resource type of slug, if new.
func (st *state) putType(slug string) {
	if st.typeNamed(slug) != 0 {
		return
	}
	row := st.alloc(&st.types)
	st.set(&st.types, row, typeSlug, st.str.intern(slug))
	st.insert(&st.typeBySlug, row)
}

func (st *state) dropType(row uint32) {
	st.remove(&st.typeBySlug, row)
	st.release(&st.types, row)
}

// putHeld records id (a string) as held by quarantined organization org
// in t, indexed by x; a later entry of the same id replaces an earlier
// one, as in index.Build.
func (st *state) putHeld(t *table, x *hashIndex, id, org uint32) {
	row := st.numbered(x, t, heldID, id)
	if row == 0 {
		row = st.alloc(t)
		st.set(t, row, heldID, id)
		st.insert(x, row)
	}
	st.set(t, row, heldOrg, org)
}

func (st *state) tables() []*table {
	return []*table{&st.res, &st.grants, &st.mems, &st.links, &st.orgs, &st.roles, &st.perms, &st.types, &st.heldOrgs, &st.heldRes, &st.heldMems}
}

func (st *state) indexes() []*hashIndex {
	return []*hashIndex{&st.resByID, &st.resByExt, &st.grantByPair, &st.memByID, &st.linkByPair, &st.orgByID, &st.roleByKey, &st.permBySlug, &st.typeBySlug,
		&st.heldOrgByID, &st.heldResByID, &st.heldMemByID}
}

// heapBytes is the heap the state's slices occupy (their capacity).
func (st *state) heapBytes() int {
	n := st.str.heapBytes() + st.lists.heapBytes()
	for _, t := range st.tables() {
		n += 4*cap(t.rows) + 4*cap(t.free)
	}
	for _, x := range st.indexes() {
		n += x.bytes()
	}
	return n + st.listsHeapBytes()
}

// listsHeapBytes is the heap of the ordered sets the lists page through.
func (st *state) listsHeapBytes() int {
	return st.byTree.heapBytes() + st.byTypeTree.heapBytes() + st.byGrantee.heapBytes() + st.byMember.heapBytes()
}
