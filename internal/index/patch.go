package index

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Store is the view of the data document that Patch reads and writes, all
// inside one transaction: reads see earlier writes of the same transaction.
// Paths are relative to the document root (Root).
type Store interface {
	// Get returns the value at path, or false if there is none.
	Get(path ...string) (ast.Value, bool, error)
	// Put sets the value at path, creating missing parent objects.
	Put(value ast.Value, path ...string) error
	// Delete removes the value at path; a missing path is not an error.
	Delete(path ...string) error
	// Scan calls fn with each key and value of the object at path, in no
	// particular order, until fn returns false; a missing path has none.
	// Scan before writing under path in the same transaction.
	Scan(fn func(key string, value ast.Value) bool, path ...string) error
}

// ErrIncomplete is returned when a change lacks what Patch needs to find the
// keys it touches (e.g. an assignment delete carrying only its id). The
// caller should fall back to a full rebuild.
var ErrIncomplete = errors.New("index: change lacks fields needed to patch")

// Patch applies one change to the document in s, touching only the keys it
// affects: an assignment touches one grant list and one anchor list, a
// re-parent rewrites the ancestor chains of the moved subtree only, a role
// change rewrites that role only. Deletes tolerate cascades arriving in any
// order. Resource types are not part of the document.
//
// A change that would break a rule the document can check — a parent or
// organization that does not exist, a parent in another organization, a
// cycle, a tree deeper than max_depth, a role that does not exist or is of
// the wrong type for where it is used — is refused with a
// *model.RuleError naming the organizations it would break, and the
// caller must then discard what the transaction wrote. Rules that need the
// resource type graph (allowed parent types, a role's permission types) are
// not checked here: model.Dataset.Validate checks them on every load.
func Patch(s Store, ch model.Change) error {
	p := patcher{s}
	var err error
	switch del := ch.Op == model.OpDelete; {
	case ch.Organization != nil && del:
		err = p.deleteOrganization(*ch.Organization)
	case ch.Organization != nil:
		err = p.putOrganization(*ch.Organization)
	case ch.Resource != nil && del:
		err = p.deleteResource(ch.Resource.ID)
	case ch.Resource != nil:
		err = p.putResource(*ch.Resource)
	case ch.Membership != nil && del:
		err = p.deleteMembership(ch.Membership.ID)
	case ch.Membership != nil:
		err = p.putMembership(*ch.Membership)
	case ch.Assignment != nil:
		err = p.assignment(*ch.Assignment, del)
	case ch.Group != nil && del:
		err = p.deleteGroup(ch.Group.ID)
	case ch.Group != nil:
		err = p.putGroup(*ch.Group)
	case ch.GroupMember != nil:
		err = p.groupMember(*ch.GroupMember, del)
	case ch.Role != nil && del:
		err = s.Delete(keyRoles, ch.Role.Key())
	case ch.Role != nil:
		err = s.Put(RoleTerm(*ch.Role).Value, keyRoles, ch.Role.Key())
	case ch.Permission != nil && del:
		err = s.Delete(keyPermissions, ch.Permission.Slug)
	case ch.Permission != nil:
		err = s.Put(permissionValue(*ch.Permission), keyPermissions, ch.Permission.Slug)
	case ch.ResourceType != nil && del:
		err = s.Delete(keyResourceTypes, ch.ResourceType.Slug)
	case ch.ResourceType != nil:
		err = s.Put(ast.Boolean(true), keyResourceTypes, ch.ResourceType.Slug)
	default:
		err = fmt.Errorf("index: change %q names no entity", ch.Op)
	}
	return err
}

// SetRevision records the revision the document reflects.
func SetRevision(s Store, rev int64) error {
	return s.Put(ast.Number(fmt.Sprint(rev)), keyRevision)
}

type patcher struct{ s Store }

// node is a resource entry as read back from the document.
type resourceEntry struct {
	org, typ, ext string
	anc           []string
}

func (p patcher) resource(rid string) (resourceEntry, bool, error) {
	v, ok, err := p.s.Get(keyResources, rid)
	if err != nil || !ok {
		return resourceEntry{}, false, err
	}
	arr, isArr := v.(*ast.Array)
	if !isArr || arr.Len() != 4 {
		return resourceEntry{}, false, fmt.Errorf("index: resources[%s] is %v, not [org, type, ext, anc]", rid, v)
	}
	return resourceEntry{
		org: str(arr.Elem(0)), typ: str(arr.Elem(1)), ext: str(arr.Elem(2)), anc: strs(arr.Elem(3)),
	}, true, nil
}

func (p patcher) putEntry(rid string, e resourceEntry) error {
	return p.s.Put(resourceValue(e.org, e.typ, e.ext, e.anc), keyResources, rid)
}

func (p patcher) putOrganization(o model.Organization) error {
	if err := p.putAttributes(o.Attributes, keyOrgAttributes, o.ID); err != nil {
		return err
	}
	if _, ok, err := p.s.Get(keyOrgs, o.ID); err != nil || ok {
		return err
	}
	root := o.RootID()
	if err := p.s.Put(ast.NewObject(ast.Item(ast.InternedTerm("root"), ast.StringTerm(root))), keyOrgs, o.ID); err != nil {
		return err
	}
	if err := p.putEntry(root, resourceEntry{org: o.ID, typ: model.OrganizationType, ext: o.ID, anc: []string{root}}); err != nil {
		return err
	}
	return p.s.Put(ast.String(root), keyLookup, o.ID, model.OrganizationType, o.ID)
}

func (p patcher) deleteOrganization(o model.Organization) error {
	root := o.RootID()
	if v, ok, err := p.s.Get(keyOrgs, o.ID, "root"); err != nil {
		return err
	} else if ok {
		root = string(v.(ast.String))
	}
	if err := p.deleteResource(root); err != nil {
		return err
	}
	if err := p.s.Delete(keyLookup, o.ID); err != nil {
		return err
	}
	if err := p.s.Delete(keyOrgAttributes, o.ID); err != nil {
		return err
	}
	return p.s.Delete(keyOrgs, o.ID)
}

// putAttributes sets the attributes at path, or deletes them for none.
func (p patcher) putAttributes(a model.Attributes, path ...string) error {
	if len(a) == 0 {
		return p.s.Delete(path...)
	}
	v, err := ast.InterfaceToValue(map[string]any(a))
	if err != nil {
		return err
	}
	return p.s.Put(v, path...)
}

// rootOf returns the root resource id of org; entity and field name what
// refers to it, for the error when org does not exist.
func (p patcher) rootOf(org, entity, field string) (string, error) {
	v, ok, err := p.s.Get(keyOrgs, org, "root")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", model.BrokenRule(model.CodeUnknownReference, []string{org}, entity, field, "unknown organization %q", org)
	}
	return string(v.(ast.String)), nil
}

// maxDepth returns the document's max_depth (model.DefaultMaxDepth when it
// has none).
func (p patcher) maxDepth() (int, error) {
	v, ok, err := p.s.Get(keyMaxDepth)
	if err != nil || !ok {
		return model.DefaultMaxDepth, err
	}
	n, isNum := v.(ast.Number)
	d, isInt := n.Int()
	if !isNum || !isInt || d <= 0 {
		return 0, fmt.Errorf("index: max_depth is %v, not a positive integer", v)
	}
	return d, nil
}

func (p patcher) putResource(r model.Resource) error {
	entity := model.KindResource + " " + r.ID
	parent := r.ParentID
	if parent == "" {
		root, err := p.rootOf(r.OrganizationID, entity, "organization_id")
		if err != nil {
			return err
		}
		parent = root
	}
	pe, ok, err := p.resource(parent)
	if err != nil {
		return err
	}
	org := []string{r.OrganizationID}
	switch {
	case !ok:
		return model.BrokenRule(model.CodeUnknownReference, org, entity, "parent_id", "unknown parent resource %q", parent)
	case pe.org != r.OrganizationID:
		return model.BrokenRule(model.CodeCrossOrganization, append(org, pe.org), entity, "parent_id",
			"parent %q is in organization %q, not %q", parent, pe.org, r.OrganizationID)
	case slices.Contains(pe.anc, r.ID):
		return model.BrokenRule(model.CodeCycle, org, entity, "parent_id", "parent %q is below the resource itself: parent links would form a cycle", parent)
	}
	maxDepth, err := p.maxDepth()
	if err != nil {
		return err
	}
	anc := append([]string{r.ID}, pe.anc...)
	if len(anc) > maxDepth {
		return model.BrokenRule(model.CodeDepthExceeded, org, entity, "parent_id",
			"resource would be at depth %d (the organization root is 1), deeper than the maximum %d", len(anc), maxDepth)
	}
	old, existed, err := p.resource(r.ID)
	if err != nil {
		return err
	}
	if existed && (old.ext != r.ExternalID || old.typ != r.Type) {
		if err := p.unlookup(old); err != nil {
			return err
		}
	}
	if err := p.s.Put(ast.String(r.ID), keyLookup, r.OrganizationID, r.Type, r.ExternalID); err != nil {
		return err
	}
	if err := p.putEntry(r.ID, resourceEntry{org: r.OrganizationID, typ: r.Type, ext: r.ExternalID, anc: anc}); err != nil {
		return err
	}
	if err := p.putAttributes(r.Attributes, keyAttributes, r.ID); err != nil {
		return err
	}
	oldParent := ""
	if existed && len(old.anc) > 1 {
		oldParent = old.anc[1]
	}
	if oldParent == parent {
		return nil
	}
	if oldParent != "" {
		if err := p.editList(func(ids []string) []string { return without(ids, r.ID) }, keyChildren, oldParent); err != nil {
			return err
		}
	}
	if err := p.editList(func(ids []string) []string { return with(ids, r.ID) }, keyChildren, parent); err != nil {
		return err
	}
	if !existed {
		return nil
	}
	// A re-parent: every descendant keeps its chain up to r and takes r's
	// new ancestors above it.
	return p.walk(r.ID, func(rid string, e resourceEntry) error {
		if rid == r.ID {
			return nil
		}
		for i, a := range e.anc {
			if a == r.ID {
				e.anc = append(e.anc[:i:i], anc...)
				if len(e.anc) > maxDepth {
					return model.BrokenRule(model.CodeDepthExceeded, org, entity, "parent_id",
						"the move would put resource %s at depth %d (the organization root is 1), deeper than the maximum %d", rid, len(e.anc), maxDepth)
				}
				return p.putEntry(rid, e)
			}
		}
		return fmt.Errorf("index: resource %s is under %s but its chain %v does not say so", rid, r.ID, e.anc)
	})
}

// walk calls fn for rid and every resource below it, parents first.
func (p patcher) walk(rid string, fn func(string, resourceEntry) error) error {
	queue := []string{rid}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		e, ok, err := p.resource(id)
		if err != nil {
			return err
		}
		if ok {
			if err := fn(id, e); err != nil {
				return err
			}
		}
		kids, err := p.list(keyChildren, id)
		if err != nil {
			return err
		}
		queue = append(queue, kids...)
	}
	return nil
}

// deleteResource removes rid and whatever is still below it, with their
// lookups and grants.
func (p patcher) deleteResource(rid string) error {
	_, err := p.deleteSubtree(rid)
	return err
}

// deleteSubtree removes rid and whatever is still below it, with their
// lookups and grants, and returns the ids removed, rid first.
func (p patcher) deleteSubtree(rid string) ([]string, error) {
	top, ok, err := p.resource(rid)
	if err != nil || !ok {
		return nil, err
	}
	var gone []string
	err = p.walk(rid, func(id string, e resourceEntry) error {
		gone = append(gone, id)
		if err := p.unlookup(e); err != nil {
			return err
		}
		holders, ok, err := p.s.Get(keyGrants, id)
		if err != nil {
			return err
		}
		if ok {
			var oms []string
			holders.(ast.Object).Foreach(func(k, _ *ast.Term) { oms = append(oms, string(k.Value.(ast.String))) })
			for _, om := range oms {
				coll, err := p.principalKey(om)
				if err != nil {
					return err
				}
				if err := p.editList(func(ids []string) []string { return without(ids, id) }, coll, om, "anchors"); err != nil {
					return err
				}
			}
		}
		if err := p.s.Delete(keyAttributes, id); err != nil {
			return err
		}
		return p.s.Delete(keyGrants, id)
	})
	if err != nil {
		return nil, err
	}
	for _, id := range gone {
		if err := p.s.Delete(keyResources, id); err != nil {
			return nil, err
		}
		if err := p.s.Delete(keyChildren, id); err != nil {
			return nil, err
		}
	}
	if len(top.anc) > 1 {
		return gone, p.editList(func(ids []string) []string { return without(ids, rid) }, keyChildren, top.anc[1])
	}
	return gone, nil
}

// unlookup removes a resource's external id entry and the type's object
// once it is empty.
func (p patcher) unlookup(e resourceEntry) error {
	if err := p.s.Delete(keyLookup, e.org, e.typ, e.ext); err != nil {
		return err
	}
	return p.dropIfEmpty(keyLookup, e.org, e.typ)
}

func (p patcher) putMembership(m model.Membership) error {
	entity := model.KindMembership + " " + m.ID
	root, err := p.rootOf(m.OrganizationID, entity, "organization_id")
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(m.RoleSlugs))
	for _, slug := range m.RoleSlugs {
		k, typ, err := p.role(m.OrganizationID, slug, entity, "role_slugs")
		if err != nil {
			return err
		}
		if typ != model.OrganizationType {
			return model.BrokenRule(model.CodeRoleTypeMismatch, []string{m.OrganizationID}, entity, "role_slugs",
				"role %q is of resource type %q; organization roles must be of type %q", slug, typ, model.OrganizationType)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// The membership's organization roles replace its previous ones on the
	// root; explicit assignments on the root (kept in the assignments table)
	// are not distinguishable here, so the source must send root
	// assignments as assignments and organization roles as RoleSlugs.
	prev, err := p.orgRoleKeys(m.ID)
	if err != nil {
		return err
	}
	anchors, err := p.list(keyMemberships, m.ID, "anchors")
	if err != nil {
		return err
	}
	if err := p.s.Put(membershipValue(m.OrganizationID, m.Status == model.StatusActive, anchors), keyMemberships, m.ID); err != nil {
		return err
	}
	if err := p.s.Put(stringsValue(keys), keyOrgRoles, m.ID); err != nil {
		return err
	}
	for _, k := range prev {
		if err := p.ungrant(root, m.ID, k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := p.grant(root, m.ID, k); err != nil {
			return err
		}
	}
	return nil
}

func (p patcher) orgRoleKeys(om string) ([]string, error) { return p.list(keyOrgRoles, om) }

// deleteMembership removes a membership, or a group (deleteGroup, once
// its members are gone), with its grants.
func (p patcher) deleteMembership(om string) error {
	anchors, err := p.list(keyMemberships, om, "anchors")
	if err != nil {
		return err
	}
	for _, a := range anchors {
		if err := p.s.Delete(keyGrants, a, om); err != nil {
			return err
		}
		if err := p.dropIfEmpty(keyGrants, a); err != nil {
			return err
		}
	}
	if err := p.s.Delete(keyOrgRoles, om); err != nil {
		return err
	}
	if err := p.leaveGroups(om); err != nil {
		return err
	}
	return p.s.Delete(keyMemberships, om)
}

func (p patcher) assignment(a model.Assignment, del bool) error {
	who := a.Principal()
	if who == "" || a.ResourceID == "" || a.RoleSlug == "" {
		return fmt.Errorf("%w: assignment %s needs membership or group, role and resource", ErrIncomplete, a.ID)
	}
	if del {
		// The role may be gone already (a cascade): drop whichever key of the
		// slug is there.
		for _, k := range p.grantKeys(a.ResourceID, who) {
			if k == a.RoleSlug || roleSlugOfKey(k) == a.RoleSlug {
				return p.ungrant(a.ResourceID, who, k)
			}
		}
		return nil
	}
	entity := model.KindAssignment + " " + a.ID
	coll, field, kind := keyMemberships, "membership_id", "membership"
	if a.MembershipID == "" {
		coll, field, kind = keyGroups, "group_id", "group"
	}
	v, ok, err := p.s.Get(coll, who, "org")
	if err != nil {
		return err
	}
	if !ok {
		// Whose it is cannot be told: the caller rebuilds from scratch.
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, field, "unknown %s %q", kind, who)
	}
	org := string(v.(ast.String))
	res, ok, err := p.resource(a.ResourceID)
	switch {
	case err != nil:
		return err
	case !ok:
		return model.BrokenRule(model.CodeUnknownReference, []string{org}, entity, "resource_id", "unknown resource %q", a.ResourceID)
	case res.org != org:
		return model.BrokenRule(model.CodeCrossOrganization, []string{org, res.org}, entity, "resource_id",
			"resource %q is in organization %q but %s %q is in %q", a.ResourceID, res.org, kind, who, org)
	}
	k, typ, err := p.role(org, a.RoleSlug, entity, "role")
	if err != nil {
		return err
	}
	if typ != res.typ {
		return model.BrokenRule(model.CodeRoleTypeMismatch, []string{org}, entity, "role",
			"role %q is of resource type %q but resource %q is of type %q", a.RoleSlug, typ, a.ResourceID, res.typ)
	}
	return p.grant(a.ResourceID, who, k)
}

func (p patcher) grantKeys(rid, om string) []string {
	ks, _ := p.list(keyGrants, rid, om)
	return ks
}

func roleSlugOfKey(k string) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[i+1:]
		}
	}
	return k
}

// role resolves a role slug in an organization — its organization role
// first, then the environment role — to its key and resource type; entity
// and field name what uses it, for the error when there is none.
func (p patcher) role(org, slug, entity, field string) (key, typ string, err error) {
	for _, k := range []string{model.RoleKey(org, slug), slug} {
		v, ok, err := p.s.Get(keyRoles, k, "type")
		if err != nil {
			return "", "", err
		}
		if ok {
			t, _ := v.(ast.String)
			return k, string(t), nil
		}
	}
	return "", "", model.BrokenRule(model.CodeUnknownReference, []string{org}, entity, field, "unknown role %q in organization %q", slug, org)
}

// grant adds one occurrence of key to grants[rid][om]; each source (an
// organization role, an assignment) counts once, so removing one source
// leaves the others.
func (p patcher) grant(rid, om, key string) error {
	if err := p.editList(func(ks []string) []string { return insertSorted(ks, key) }, keyGrants, rid, om); err != nil {
		return err
	}
	coll, err := p.principalKey(om)
	if err != nil {
		return err
	}
	return p.editList(func(ids []string) []string { return with(ids, rid) }, coll, om, "anchors")
}

func (p patcher) ungrant(rid, om, key string) error {
	ks, err := p.list(keyGrants, rid, om)
	if err != nil {
		return err
	}
	for i, k := range ks {
		if k == key {
			ks = append(ks[:i:i], ks[i+1:]...)
			break
		}
	}
	if len(ks) > 0 {
		return p.s.Put(stringsValue(ks), keyGrants, rid, om)
	}
	if err := p.s.Delete(keyGrants, rid, om); err != nil {
		return err
	}
	if err := p.dropIfEmpty(keyGrants, rid); err != nil {
		return err
	}
	coll, err := p.principalKey(om)
	if err != nil {
		return err
	}
	if _, ok, err := p.s.Get(coll, om); err != nil || !ok {
		return err
	}
	return p.editList(func(ids []string) []string { return without(ids, rid) }, coll, om, "anchors")
}

func (p patcher) dropIfEmpty(path ...string) error {
	v, ok, err := p.s.Get(path...)
	if err != nil || !ok {
		return err
	}
	if obj, isObj := v.(ast.Object); isObj && obj.Len() == 0 {
		return p.s.Delete(path...)
	}
	return nil
}

// list reads a string array (missing: empty).
func (p patcher) list(path ...string) ([]string, error) {
	v, ok, err := p.s.Get(path...)
	if err != nil || !ok {
		return nil, err
	}
	return strs(ast.NewTerm(v)), nil
}

// editList rewrites a string array; an empty result removes it from
// children and grants, and keeps it (empty) elsewhere.
func (p patcher) editList(edit func([]string) []string, path ...string) error {
	entity := path[0] == keyMemberships || path[0] == keyGroups
	if entity {
		if _, ok, err := p.s.Get(path[:2]...); err != nil || !ok {
			return err // the membership or group is gone: nothing to keep up to date
		}
	}
	ids, err := p.list(path...)
	if err != nil {
		return err
	}
	ids = edit(ids)
	if len(ids) == 0 && !entity {
		return p.s.Delete(path...)
	}
	return p.s.Put(stringsValue(ids), path...)
}

func with(ids []string, id string) []string {
	i := sort.SearchStrings(ids, id)
	if i < len(ids) && ids[i] == id {
		return ids
	}
	return insertAt(ids, i, id)
}

func insertSorted(ids []string, id string) []string {
	return insertAt(ids, sort.SearchStrings(ids, id), id)
}

func insertAt(ids []string, i int, id string) []string {
	out := make([]string, 0, len(ids)+1)
	out = append(out, ids[:i]...)
	out = append(out, id)
	return append(out, ids[i:]...)
}

func without(ids []string, id string) []string {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func str(t *ast.Term) string {
	if s, ok := t.Value.(ast.String); ok {
		return string(s)
	}
	return ""
}

func strs(t *ast.Term) []string {
	if t == nil {
		return nil
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok {
		return nil
	}
	out := make([]string, 0, arr.Len())
	arr.Foreach(func(e *ast.Term) {
		if s, ok := e.Value.(ast.String); ok {
			out = append(out, string(s))
		}
	})
	return out
}

func stringsValue(ss []string) ast.Value {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.NewArray(ts...)
}

func resourceValue(org, typ, ext string, anc []string) ast.Value {
	return ast.NewArray(ast.StringTerm(org), ast.StringTerm(typ), ast.StringTerm(ext), ast.NewTerm(stringsValue(anc)))
}

func membershipValue(org string, active bool, anchors []string) ast.Value {
	return ast.NewObject(
		ast.Item(ast.InternedTerm("org"), ast.StringTerm(org)),
		ast.Item(ast.InternedTerm("active"), ast.InternedTerm(active)),
		ast.Item(ast.InternedTerm("anchors"), ast.NewTerm(stringsValue(anchors))),
	)
}

func permissionValue(p model.Permission) ast.Value {
	return ast.NewObject(ast.Item(ast.InternedTerm("type"), ast.StringTerm(p.ResourceType)))
}
