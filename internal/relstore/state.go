package relstore

// state is one data document in compact form. Every entity kind is a table
// of columns ([]uint32 each, indexed by the entity's row number; row 0 is
// never used, so 0 means "none"), with a free list of rows a delete
// released, and an index from its key to its row. Strings are numbers into
// str; lists of strings are numbers into lists. Nothing in a state holds a
// Go pointer per entity: the garbage collector sees a few dozen slices.
//
// Every change goes through the methods of this file, each of which logs
// how to undo itself while a write transaction is open (undo non-nil): an
// aborted transaction runs the log backwards and leaves the state as it
// found it, down to which rows are free.
type state struct {
	revision int64
	str      strtab
	lists    listtab

	res    resources
	orgs   orgs
	mems   memberships
	grants grants
	roles  roles
	perms  perms

	undo *[]func()
}

// resources holds every resource, organization roots included. Children
// are a doubly linked list (firstChild, nextSib, prevSib) and so are the
// grants on a resource (firstGrant, then grants.nextOfRes), so that adding
// or removing one costs O(1). Ancestors are not stored: they are the parent
// links, walked at read time.
type resources struct {
	id, org, typ, ext []uint32 // strings
	parent            []uint32 // row; 0 for an organization root
	firstChild        []uint32 // row
	nextSib, prevSib  []uint32 // row
	firstGrant        []uint32 // grant
	free              []uint32
	all               []*[]uint32 // every column, for alloc and release
	byID              hashIndex   // id
	byExt             hashIndex   // (org, typ, ext)
}

func (r *resources) columns() []*[]uint32 {
	return []*[]uint32{&r.id, &r.org, &r.typ, &r.ext, &r.parent, &r.firstChild, &r.nextSib, &r.prevSib, &r.firstGrant}
}

// orgs maps an organization to its root resource's id. The root is a
// string, not a row: a delete of the root resource leaves the organization.
type orgs struct {
	id, root []uint32 // strings
	free     []uint32
	all      []*[]uint32 // every column, for alloc and release
	byID     hashIndex
}

func (o *orgs) columns() []*[]uint32 { return []*[]uint32{&o.id, &o.root} }

// memberships holds each membership with its organization roles (a list of
// role keys, sorted) and the head of its grants (then grants.nextOfMem).
type memberships struct {
	id, org    []uint32 // strings
	active     []uint32 // 1 when active
	orgRoles   []uint32 // list of role-key strings
	firstGrant []uint32 // grant
	free       []uint32
	all        []*[]uint32 // every column, for alloc and release
	byID       hashIndex
}

func (m *memberships) columns() []*[]uint32 {
	return []*[]uint32{&m.id, &m.org, &m.active, &m.orgRoles, &m.firstGrant}
}

// grants holds one record per (resource, membership) with at least one
// grant: the role keys, sorted, once per source (an assignment, an
// organization role). Each record is in its resource's list and in its
// membership's list.
type grants struct {
	res, mem             []uint32 // rows
	keys                 []uint32 // list of role-key strings
	nextOfRes, prevOfRes []uint32 // grant
	nextOfMem, prevOfMem []uint32 // grant
	free                 []uint32
	all                  []*[]uint32 // every column, for alloc and release
	byPair               hashIndex   // (res, mem)
}

func (g *grants) columns() []*[]uint32 {
	return []*[]uint32{&g.res, &g.mem, &g.keys, &g.nextOfRes, &g.prevOfRes, &g.nextOfMem, &g.prevOfMem}
}

// roles holds each role by its key (model.Role.Key).
type roles struct {
	key, slug, typ []uint32 // strings
	perms          []uint32 // list of permission slugs, sorted, distinct
	free           []uint32
	all            []*[]uint32 // every column, for alloc and release
	byKey          hashIndex
}

func (r *roles) columns() []*[]uint32 { return []*[]uint32{&r.key, &r.slug, &r.typ, &r.perms} }

// perms holds each permission by its slug.
type perms struct {
	slug, typ []uint32 // strings
	free      []uint32
	all       []*[]uint32 // every column, for alloc and release
	bySlug    hashIndex
}

func (p *perms) columns() []*[]uint32 { return []*[]uint32{&p.slug, &p.typ} }

// sizes are the expected entity counts a state is allocated for.
type sizes struct {
	strings, stringBytes, lists int
	resources, orgs, mems       int
	grants, roles, perms        int
}

func newState(n sizes) *state {
	st := &state{}
	st.str.init(n.strings, n.stringBytes)
	st.lists.init(n.lists)
	r, o, m, g, ro, p := &st.res, &st.orgs, &st.mems, &st.grants, &st.roles, &st.perms
	r.all, o.all, m.all, g.all, ro.all, p.all = r.columns(), o.columns(), m.columns(), g.columns(), ro.columns(), p.columns()
	makeCols(r.all, n.resources)
	makeCols(o.all, n.orgs)
	makeCols(m.all, n.mems)
	makeCols(g.all, n.grants)
	makeCols(ro.all, n.roles)
	makeCols(p.all, n.perms)
	r.byID = newIndex(n.resources, func(v uint32) uint64 { return mix(uint64(r.id[v])) })
	r.byExt = newIndex(n.resources, func(v uint32) uint64 { return mix3(r.org[v], r.typ[v], r.ext[v]) })
	o.byID = newIndex(n.orgs, func(v uint32) uint64 { return mix(uint64(o.id[v])) })
	m.byID = newIndex(n.mems, func(v uint32) uint64 { return mix(uint64(m.id[v])) })
	g.byPair = newIndex(n.grants, func(v uint32) uint64 { return mix2(g.res[v], g.mem[v]) })
	ro.byKey = newIndex(n.roles, func(v uint32) uint64 { return mix(uint64(ro.key[v])) })
	p.bySlug = newIndex(n.perms, func(v uint32) uint64 { return mix(uint64(p.slug[v])) })
	return st
}

// makeCols gives every column row 0 and room for n more rows.
func makeCols(cols []*[]uint32, n int) {
	for _, c := range cols {
		*c = make([]uint32, 1, n+1)
	}
}

// log records how to undo a change, while a write transaction is open.
func (st *state) log(undo func()) { *st.undo = append(*st.undo, undo) }

// logging reports whether changes are logged. Callers test it before they
// make an undo closure, so that a build, which logs nothing, allocates none.
func (st *state) logging() bool { return st.undo != nil }

// set writes column col of row i.
func (st *state) set(col *[]uint32, i, v uint32) {
	old := (*col)[i]
	if old == v {
		return
	}
	(*col)[i] = v
	if st.logging() {
		st.log(func() { (*col)[i] = old })
	}
}

// alloc returns a row of the table with columns cols and free list free,
// its columns all 0: a released row if there is one, else a new one.
func (st *state) alloc(cols []*[]uint32, free *[]uint32) uint32 {
	var row uint32
	if n := len(*free); n > 0 {
		row = (*free)[n-1]
		*free = (*free)[:n-1]
	} else {
		row = uint32(len(*cols[0]))
		if row == ^uint32(0) {
			panic("relstore: more than 2^32-1 rows in one table")
		}
		for _, c := range cols {
			*c = append(*c, 0)
		}
	}
	if st.logging() {
		st.log(func() { *free = append(*free, row) })
	}
	return row
}

// release zeroes row's columns and puts it on the free list.
func (st *state) release(cols []*[]uint32, free *[]uint32, row uint32) {
	for _, c := range cols {
		st.set(c, row, 0)
	}
	*free = append(*free, row)
	if st.logging() {
		st.log(func() { *free = (*free)[:len(*free)-1] })
	}
}

// insert adds row v to index x; x's key columns of v must be set.
func (st *state) insert(x *hashIndex, v uint32) {
	x.insert(v)
	if st.logging() {
		st.log(func() { x.remove(x.hashOf(v), func(u uint32) bool { return u == v }) })
	}
}

// remove drops row v from index x, before v's key columns change.
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

// Lookups by key. Each returns 0 when there is no such entity; a string
// the table does not hold names nothing.

func (st *state) resource(id uint32) uint32 {
	r := &st.res
	if id == 0 {
		return 0
	}
	return r.byID.findKey(mix(uint64(id)), r.id, id)
}

func (st *state) resourceNamed(id string) uint32 { return st.resource(st.str.lookup(id)) }

func (st *state) resourceByExt(org, typ, ext uint32) uint32 {
	r := &st.res
	if org == 0 || typ == 0 || ext == 0 {
		return 0
	}
	return r.byExt.find(mix3(org, typ, ext), func(v uint32) bool {
		return r.org[v] == org && r.typ[v] == typ && r.ext[v] == ext
	})
}

func (st *state) org(id uint32) uint32 {
	o := &st.orgs
	if id == 0 {
		return 0
	}
	return o.byID.findKey(mix(uint64(id)), o.id, id)
}

func (st *state) membership(id uint32) uint32 {
	m := &st.mems
	if id == 0 {
		return 0
	}
	return m.byID.findKey(mix(uint64(id)), m.id, id)
}

func (st *state) grant(res, mem uint32) uint32 {
	g := &st.grants
	if res == 0 || mem == 0 {
		return 0
	}
	return g.byPair.find(mix2(res, mem), func(v uint32) bool { return g.res[v] == res && g.mem[v] == mem })
}

func (st *state) role(key uint32) uint32 {
	r := &st.roles
	if key == 0 {
		return 0
	}
	return r.byKey.findKey(mix(uint64(key)), r.key, key)
}

func (st *state) perm(slug uint32) uint32 {
	p := &st.perms
	if slug == 0 {
		return 0
	}
	return p.bySlug.findKey(mix(uint64(slug)), p.slug, slug)
}

// Resources.

// addResource adds a resource below parent (0 for an organization root).
// Its (org, typ, ext) must be free.
func (st *state) addResource(id, org, typ, ext, parent uint32) uint32 {
	r := &st.res
	row := st.alloc(r.all, &r.free)
	st.set(&r.id, row, id)
	st.set(&r.org, row, org)
	st.set(&r.typ, row, typ)
	st.set(&r.ext, row, ext)
	st.insert(&r.byID, row)
	st.insert(&r.byExt, row)
	if parent != 0 {
		st.link(parent, row)
	}
	return row
}

// rename gives resource row a new type and external id, which must be free.
func (st *state) rename(row, typ, ext uint32) {
	r := &st.res
	st.remove(&r.byExt, row)
	st.set(&r.typ, row, typ)
	st.set(&r.ext, row, ext)
	st.insert(&r.byExt, row)
}

// link makes child the first child of parent.
func (st *state) link(parent, child uint32) {
	r := &st.res
	next := r.firstChild[parent]
	st.set(&r.parent, child, parent)
	st.set(&r.nextSib, child, next)
	st.set(&r.prevSib, child, 0)
	if next != 0 {
		st.set(&r.prevSib, next, child)
	}
	st.set(&r.firstChild, parent, child)
}

// unlink takes child out of its parent's children.
func (st *state) unlink(child uint32) {
	r := &st.res
	parent, prev, next := r.parent[child], r.prevSib[child], r.nextSib[child]
	if parent == 0 {
		return
	}
	if prev != 0 {
		st.set(&r.nextSib, prev, next)
	} else {
		st.set(&r.firstChild, parent, next)
	}
	if next != 0 {
		st.set(&r.prevSib, next, prev)
	}
	st.set(&r.parent, child, 0)
	st.set(&r.nextSib, child, 0)
	st.set(&r.prevSib, child, 0)
}

// dropResource removes resource row, which must have no children and no
// grants left.
func (st *state) dropResource(row uint32) {
	r := &st.res
	st.unlink(row)
	st.remove(&r.byID, row)
	st.remove(&r.byExt, row)
	st.release(r.all, &r.free, row)
}

// Grants.

// addGrant adds the record of (res, mem) with role keys list keys.
func (st *state) addGrant(res, mem, keys uint32) uint32 {
	g, r, m := &st.grants, &st.res, &st.mems
	row := st.alloc(g.all, &g.free)
	st.set(&g.res, row, res)
	st.set(&g.mem, row, mem)
	st.set(&g.keys, row, keys)
	st.insert(&g.byPair, row)
	if next := r.firstGrant[res]; next != 0 {
		st.set(&g.nextOfRes, row, next)
		st.set(&g.prevOfRes, next, row)
	}
	st.set(&r.firstGrant, res, row)
	if next := m.firstGrant[mem]; next != 0 {
		st.set(&g.nextOfMem, row, next)
		st.set(&g.prevOfMem, next, row)
	}
	st.set(&m.firstGrant, mem, row)
	return row
}

// dropGrant removes grant record row from both of its lists.
func (st *state) dropGrant(row uint32) {
	g, r, m := &st.grants, &st.res, &st.mems
	res, mem := g.res[row], g.mem[row]
	st.remove(&g.byPair, row)
	if prev, next := g.prevOfRes[row], g.nextOfRes[row]; prev != 0 {
		st.set(&g.nextOfRes, prev, next)
		if next != 0 {
			st.set(&g.prevOfRes, next, prev)
		}
	} else {
		st.set(&r.firstGrant, res, next)
		if next != 0 {
			st.set(&g.prevOfRes, next, 0)
		}
	}
	if prev, next := g.prevOfMem[row], g.nextOfMem[row]; prev != 0 {
		st.set(&g.nextOfMem, prev, next)
		if next != 0 {
			st.set(&g.prevOfMem, next, prev)
		}
	} else {
		st.set(&m.firstGrant, mem, next)
		if next != 0 {
			st.set(&g.prevOfMem, next, 0)
		}
	}
	st.release(g.all, &g.free, row)
}

// Memberships, organizations, roles, permissions.

func (st *state) addMembership(id, org uint32) uint32 {
	m := &st.mems
	row := st.alloc(m.all, &m.free)
	st.set(&m.id, row, id)
	st.set(&m.org, row, org)
	st.insert(&m.byID, row)
	return row
}

// dropMembership removes membership row, which must have no grants left.
func (st *state) dropMembership(row uint32) {
	m := &st.mems
	st.remove(&m.byID, row)
	st.release(m.all, &m.free, row)
}

func (st *state) addOrg(id, root uint32) uint32 {
	o := &st.orgs
	row := st.alloc(o.all, &o.free)
	st.set(&o.id, row, id)
	st.set(&o.root, row, root)
	st.insert(&o.byID, row)
	return row
}

func (st *state) dropOrg(row uint32) {
	o := &st.orgs
	st.remove(&o.byID, row)
	st.release(o.all, &o.free, row)
}

// putRole adds or replaces the role of key.
func (st *state) putRole(key, slug, typ, permList uint32) {
	r := &st.roles
	row := st.role(key)
	if row == 0 {
		row = st.alloc(r.all, &r.free)
		st.set(&r.key, row, key)
		st.insert(&r.byKey, row)
	}
	st.set(&r.slug, row, slug)
	st.set(&r.typ, row, typ)
	st.set(&r.perms, row, permList)
}

func (st *state) dropRole(row uint32) {
	r := &st.roles
	st.remove(&r.byKey, row)
	st.release(r.all, &r.free, row)
}

// putPerm adds or replaces the permission of slug.
func (st *state) putPerm(slug, typ uint32) {
	p := &st.perms
	row := st.perm(slug)
	if row == 0 {
		row = st.alloc(p.all, &p.free)
		st.set(&p.slug, row, slug)
		st.insert(&p.bySlug, row)
	}
	st.set(&p.typ, row, typ)
}

func (st *state) dropPerm(row uint32) {
	p := &st.perms
	st.remove(&p.bySlug, row)
	st.release(p.all, &p.free, row)
}

// heapBytes is the heap the state's slices occupy (their capacity).
func (st *state) heapBytes() int {
	n := st.str.heapBytes() + st.lists.heapBytes()
	tables := [][]*[]uint32{st.res.all, st.orgs.all, st.mems.all, st.grants.all, st.roles.all, st.perms.all}
	for _, cols := range tables {
		for _, c := range cols {
			n += 4 * cap(*c)
		}
	}
	for _, x := range []*hashIndex{&st.res.byID, &st.res.byExt, &st.orgs.byID, &st.mems.byID, &st.grants.byPair, &st.roles.byKey, &st.perms.bySlug} {
		n += x.bytes()
	}
	for _, f := range [][]uint32{st.res.free, st.orgs.free, st.mems.free, st.grants.free, st.roles.free, st.perms.free} {
		n += 4 * cap(f)
	}
	return n
}
