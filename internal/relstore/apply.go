package relstore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

// ErrInvariant is wrapped by the errors of Load and Apply for data that
// index.Build or index.Patch would take but that breaks a rule the compact
// form relies on, which the PostgreSQL write path and model.Validate both
// enforce: a resource id, an organization id or root id, a membership id or
// an (organization, type, external id) used twice; a change of a
// resource's or a membership's organization; organization roles in an
// organization without its root resource; and, for Load (index.Build does
// not check it), a resource whose parent is in another organization. A
// change index.Patch refuses with a *model.RuleError (a parent in another
// organization, a cycle, ...) is refused by Apply with the same error, not
// with ErrInvariant. As for any error of Apply, the caller should load the
// whole dataset again.
var ErrInvariant = errors.New("relstore: change breaks an invariant of the data")

// apply makes one change, with exactly the effect index.Patch has on the
// document, or returns the error Patch returns (or one wrapping
// ErrInvariant). It may leave the state half-changed on error: the caller
// undoes the change with the log.
func (st *state) apply(ch model.Change) error {
	switch del := ch.Op == model.OpDelete; {
	case ch.Organization != nil && del:
		st.deleteOrganization(*ch.Organization)
	case ch.Organization != nil:
		return st.putOrganization(*ch.Organization)
	case ch.Resource != nil && del:
		st.deleteResource(st.resourceNamed(ch.Resource.ID))
	case ch.Resource != nil:
		return st.putResource(*ch.Resource)
	case ch.Membership != nil && del:
		st.deleteMembership(st.membershipNamed(ch.Membership.ID))
	case ch.Membership != nil:
		return st.putMembership(*ch.Membership)
	case ch.Assignment != nil:
		return st.assignment(*ch.Assignment, del)
	case ch.Group != nil && del:
		st.deleteGroup(st.groupNamed(ch.Group.ID))
	case ch.Group != nil:
		return st.putGroup(*ch.Group)
	case ch.GroupMember != nil:
		return st.groupMember(*ch.GroupMember, del)
	case ch.Role != nil && del:
		if row := st.roleNamed(ch.Role.Key()); row != 0 {
			st.dropRole(row)
		}
	case ch.Role != nil:
		st.putRoleOf(*ch.Role)
	case ch.Permission != nil && del:
		if row := st.permNamed(ch.Permission.Slug); row != 0 {
			st.dropPerm(row)
		}
	case ch.Permission != nil:
		st.putPerm(st.str.intern(ch.Permission.Slug), st.str.intern(ch.Permission.ResourceType))
	case ch.ResourceType != nil && del:
		if row := st.typeNamed(ch.ResourceType.Slug); row != 0 {
			st.dropType(row)
		}
	case ch.ResourceType != nil:
		st.putType(ch.ResourceType.Slug)
	default:
		return fmt.Errorf("relstore: change %q names no entity", ch.Op)
	}
	return nil
}

func invariant(format string, args ...any) error {
	return fmt.Errorf("relstore: %s: %w", fmt.Sprintf(format, args...), ErrInvariant)
}

// putOrganization adds an organization and its root resource; of an
// organization that exists already only the attributes change.
func (st *state) putOrganization(o model.Organization) error {
	id := st.str.intern(o.ID)
	if row := st.org(id); row != 0 {
		st.set(&st.orgs, row, orgAttrs, st.attributes(o.Attributes))
		return nil
	}
	root := st.str.intern(o.RootID())
	orgType := st.str.intern(model.OrganizationType)
	if st.resource(root) != 0 || st.resourceByExt(id, orgType, id) != 0 {
		return invariant("organization %s: its root resource %s exists already", o.ID, o.RootID())
	}
	st.set(&st.orgs, st.addOrg(id, root), orgAttrs, st.attributes(o.Attributes))
	st.addResource(root, id, orgType, id, 0)
	return nil
}

// deleteOrganization removes the organization with its root resource and
// everything below it; its memberships and roles stay (their deletes come
// as changes of their own).
func (st *state) deleteOrganization(o model.Organization) {
	row := st.orgNamed(o.ID)
	root := st.resourceNamed(o.RootID())
	if row != 0 {
		root = st.resource(st.orgs.at(row, orgRoot))
	}
	st.deleteResource(root)
	if row != 0 {
		st.dropOrg(row)
	}
}

// putResource adds a resource or changes its external id, type or parent,
// refusing what index.Patch refuses, in its order. A re-parent costs O(1)
// (ancestors are parent links), and one that makes the resource deeper
// also walks its subtree down to max_depth, to refuse a move that pushes
// a descendant too deep.
func (st *state) putResource(r model.Resource) error {
	entity := model.KindResource + " " + r.ID
	orgs := []string{r.OrganizationID}
	org := st.str.intern(r.OrganizationID)
	var parent uint32
	parentName := r.ParentID
	if parentName == "" {
		orow := st.orgNamed(r.OrganizationID)
		if orow == 0 {
			return model.BrokenRule(model.CodeUnknownReference, orgs, entity, "organization_id", "unknown organization %q", r.OrganizationID)
		}
		parentName = st.str.str(st.orgs.at(orow, orgRoot))
	}
	if parent = st.resourceNamed(parentName); parent == 0 {
		return model.BrokenRule(model.CodeUnknownReference, orgs, entity, "parent_id", "unknown parent resource %q", parentName)
	}
	if st.res.at(parent, resOrg) != org {
		parentOrg := st.str.str(st.res.at(parent, resOrg))
		return model.BrokenRule(model.CodeCrossOrganization, append(orgs, parentOrg), entity, "parent_id",
			"parent %q is in organization %q, not %q", parentName, parentOrg, r.OrganizationID)
	}
	depth := 1 // of the resource below parent: the root is 1
	for p := parent; p != 0; p = st.res.at(p, resParent) {
		if string(st.str.bytes(st.res.at(p, resID))) == r.ID {
			return model.BrokenRule(model.CodeCycle, orgs, entity, "parent_id", "parent %q is below the resource itself: parent links would form a cycle", parentName)
		}
		depth++
	}
	if depth > st.maxDepth {
		return model.BrokenRule(model.CodeDepthExceeded, orgs, entity, "parent_id",
			"resource would be at depth %d (the organization root is 1), deeper than the maximum %d", depth, st.maxDepth)
	}
	id, typ, ext := st.str.intern(r.ID), st.str.intern(r.Type), st.str.intern(r.ExternalID)
	row := st.resource(id)
	if row != 0 && st.res.at(row, resParent) != parent {
		if err := st.checkMove(row, depth, entity, orgs); err != nil {
			return err
		}
	}
	if holder := st.resourceByExt(org, typ, ext); holder != 0 && holder != row {
		return invariant("resource %s: external id %q of type %q is resource %s's in organization %s", r.ID, r.ExternalID, r.Type, st.str.str(st.res.at(holder, resID)), r.OrganizationID)
	}
	if row == 0 {
		st.set(&st.res, st.addResource(id, org, typ, ext, parent), resAttrs, st.attributes(r.Attributes))
		return nil
	}
	if st.res.at(row, resOrg) != org {
		return invariant("resource %s: organization %s cannot become %s", r.ID, st.str.str(st.res.at(row, resOrg)), r.OrganizationID)
	}
	if st.res.at(row, resTyp) != typ || st.res.at(row, resExt) != ext {
		st.rename(row, typ, ext)
	}
	if st.res.at(row, resParent) != parent {
		// Every key of the subtree is its path: out of the tree order
		// under the old one, back in under the new.
		sub := st.subtree(row, nil)
		for _, n := range sub {
			st.unorder(n)
		}
		st.unlink(row)
		st.link(parent, row)
		for _, n := range sub {
			st.order(n)
		}
	}
	st.set(&st.res, row, resAttrs, st.attributes(r.Attributes))
	return nil
}

// checkMove refuses, as index.Patch does, a move of resource row to depth
// that would put a resource below it deeper than max_depth, naming the
// first such resource in Patch's order: breadth first, children by id.
// Every resource is within max_depth before the move, so a move that does
// not make row deeper needs no walk, and one that does walks only the
// levels above the first that would be too deep.
func (st *state) checkMove(row uint32, depth int, entity string, orgs []string) error {
	old := 0
	for p := row; p != 0; p = st.res.at(p, resParent) {
		old++
	}
	if depth <= old {
		return nil
	}
	level := []uint32{row}
	for d := depth + 1; len(level) > 0; d++ {
		var next []uint32
		for _, n := range level {
			start := len(next)
			for c := st.res.at(n, resFirstChild); c != 0; c = st.res.at(c, resNextSib) {
				next = append(next, c)
			}
			slices.SortFunc(next[start:], func(a, b uint32) int { return st.str.compare(st.res.at(a, resID), st.res.at(b, resID)) })
		}
		if d > st.maxDepth && len(next) > 0 {
			return model.BrokenRule(model.CodeDepthExceeded, orgs, entity, "parent_id",
				"the move would put resource %s at depth %d (the organization root is 1), deeper than the maximum %d",
				st.str.str(st.res.at(next[0], resID)), d, st.maxDepth)
		}
		level = next
	}
	return nil
}

// deleteResource removes resource row (0: none) and its whole subtree, with
// their grants.
func (st *state) deleteResource(row uint32) {
	if row == 0 {
		return
	}
	r, g := &st.res, &st.grants
	// Preorder, then dropped in reverse: children before their parent.
	sub := st.subtree(row, nil)
	for i := len(sub) - 1; i >= 0; i-- {
		n := sub[i]
		for gr := r.at(n, resFirstGrant); gr != 0; {
			next := g.at(gr, grNextOfRes)
			st.dropGrant(gr)
			gr = next
		}
		st.dropResource(n)
	}
}

// subtree appends row and every resource below it to out, parents first.
func (st *state) subtree(row uint32, out []uint32) []uint32 {
	r := &st.res
	start := len(out)
	out = append(out, row)
	for i := start; i < len(out); i++ {
		for c := r.at(out[i], resFirstChild); c != 0; c = r.at(c, resNextSib) {
			out = append(out, c)
		}
	}
	return out
}

// putMembership adds or updates a membership: its status, and its
// organization roles, which replace its previous ones as grants on the
// organization root.
func (st *state) putMembership(m model.Membership) error {
	entity := model.KindMembership + " " + m.ID
	orgs := []string{m.OrganizationID}
	orow := st.orgNamed(m.OrganizationID)
	if orow == 0 {
		return model.BrokenRule(model.CodeUnknownReference, orgs, entity, "organization_id", "unknown organization %q", m.OrganizationID)
	}
	org := st.orgs.at(orow, orgID)
	keys := make([]uint32, 0, len(m.RoleSlugs))
	for _, slug := range m.RoleSlugs {
		k, typ, err := st.resolveRole(m.OrganizationID, slug, entity, "role_slugs")
		if err != nil {
			return err
		}
		if typ != model.OrganizationType {
			return model.BrokenRule(model.CodeRoleTypeMismatch, orgs, entity, "role_slugs",
				"role %q is of resource type %q; organization roles must be of type %q", slug, typ, model.OrganizationType)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, st.str.compare)
	id := st.str.intern(m.ID)
	row := st.membership(id)
	if row == 0 && st.principal(id) != 0 {
		return invariant("membership %s: id is a group's", m.ID)
	}
	if row != 0 && st.mems.at(row, memOrg) != org {
		return invariant("membership %s: organization %s cannot become %s", m.ID, st.str.str(st.mems.at(row, memOrg)), m.OrganizationID)
	}
	root := st.resource(st.orgs.at(orow, orgRoot))
	if root == 0 && len(keys) > 0 {
		return invariant("membership %s: organization %s has no root resource for its roles", m.ID, m.OrganizationID)
	}
	if row == 0 {
		row = st.addMembership(id, org)
	}
	st.set(&st.mems, row, memActive, boolNum(m.Status == model.StatusActive))
	prev := slices.Clone(st.lists.get(st.mems.at(row, memOrgRoles)))
	st.set(&st.mems, row, memOrgRoles, st.lists.intern(keys))
	if root == 0 {
		return nil // no roles now, and the previous ones went with the root
	}
	for _, k := range prev {
		st.ungrant(root, row, k)
	}
	for _, k := range keys {
		st.grantKey(root, row, k)
	}
	return nil
}

func boolNum(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// deleteMembership removes membership row (0: none), its grants and its
// group memberships; deleteGroup calls it for a group once the group's
// links are gone.
func (st *state) deleteMembership(row uint32) {
	if row == 0 {
		return
	}
	st.dropLinks(row)
	for gr := st.mems.at(row, memFirstGrant); gr != 0; {
		next := st.grants.at(gr, grNextOfMem)
		st.dropGrant(gr)
		gr = next
	}
	st.dropMembership(row)
}

// roleKey resolves a role slug in an organization as index.Build does: its
// organization role first, then the environment role.
func (st *state) roleKey(org, slug string) (uint32, error) {
	if row := st.roleRow(org, slug); row != 0 {
		return st.roles.at(row, roleKey), nil
	}
	return 0, fmt.Errorf("role %q does not exist in organization %s", slug, org)
}

// roleRow finds the role a slug resolves to in an organization, or 0.
func (st *state) roleRow(org, slug string) uint32 {
	for _, k := range []string{model.RoleKey(org, slug), slug} {
		if row := st.roleNamed(k); row != 0 {
			return row
		}
	}
	return 0
}

// resolveRole resolves a role slug as index.Patch does, to its key and
// resource type; entity and field name what uses it, for Patch's
// *model.RuleError when there is no such role.
func (st *state) resolveRole(org, slug, entity, field string) (key uint32, typ string, err error) {
	row := st.roleRow(org, slug)
	if row == 0 {
		return 0, "", model.BrokenRule(model.CodeUnknownReference, []string{org}, entity, field, "unknown role %q in organization %q", slug, org)
	}
	return st.roles.at(row, roleKey), st.str.str(st.roles.at(row, roleTyp)), nil
}

func (st *state) assignment(a model.Assignment, del bool) error {
	if a.Principal() == "" || a.ResourceID == "" || a.RoleSlug == "" {
		return fmt.Errorf("%w: assignment %s needs membership or group, role and resource", index.ErrIncomplete, a.ID)
	}
	field, kind := "membership_id", "membership"
	mem := st.membershipNamed(a.MembershipID)
	if a.MembershipID == "" {
		field, kind = "group_id", "group"
		mem = st.groupNamed(a.GroupID)
	}
	if del {
		// The role may be gone already (a cascade): drop whichever key of the
		// slug is there.
		res := st.resourceNamed(a.ResourceID)
		for _, k := range st.lists.get(st.grants.at(st.grant(res, mem), grKeys)) {
			if key := st.str.bytes(k); string(key) == a.RoleSlug || string(roleSlugOfKey(key)) == a.RoleSlug {
				st.ungrant(res, mem, k)
				return nil
			}
		}
		return nil
	}
	entity := model.KindAssignment + " " + a.ID
	if mem == 0 {
		// Whose it is cannot be told.
		return model.BrokenRule(model.CodeUnknownReference, nil, entity, field, "unknown %s %q", kind, a.Principal())
	}
	org := st.str.str(st.mems.at(mem, memOrg))
	res := st.resourceNamed(a.ResourceID)
	if res == 0 {
		return model.BrokenRule(model.CodeUnknownReference, []string{org}, entity, "resource_id", "unknown resource %q", a.ResourceID)
	}
	if resOrg := st.str.str(st.res.at(res, resOrg)); resOrg != org {
		return model.BrokenRule(model.CodeCrossOrganization, []string{org, resOrg}, entity, "resource_id",
			"resource %q is in organization %q but %s %q is in %q", a.ResourceID, resOrg, kind, a.Principal(), org)
	}
	k, typ, err := st.resolveRole(org, a.RoleSlug, entity, "role")
	if err != nil {
		return err
	}
	if resTyp := st.str.str(st.res.at(res, resTyp)); typ != resTyp {
		return model.BrokenRule(model.CodeRoleTypeMismatch, []string{org}, entity, "role",
			"role %q is of resource type %q but resource %q is of type %q", a.RoleSlug, typ, a.ResourceID, resTyp)
	}
	st.grantKey(res, mem, k)
	return nil
}

// roleSlugOfKey returns the slug of a role key: what follows its last "/".
func roleSlugOfKey(k []byte) []byte {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[i+1:]
		}
	}
	return k
}

// grantKey adds one occurrence of role key k to the grants of mem on res:
// each source (an assignment, an organization role) counts once, so that
// removing one source leaves the others.
func (st *state) grantKey(res, mem, k uint32) {
	gr := st.grant(res, mem)
	if gr == 0 {
		st.addGrant(res, mem, st.lists.intern([]uint32{k}))
		return
	}
	keys := st.lists.get(st.grants.at(gr, grKeys))
	i, _ := slices.BinarySearchFunc(keys, k, st.str.compare)
	st.setGrantKeys(gr, st.lists.intern(slices.Insert(slices.Clone(keys), i, k)))
}

// ungrant removes one occurrence of role key k from the grants of mem on
// res, and the record once it holds none.
func (st *state) ungrant(res, mem, k uint32) {
	gr := st.grant(res, mem)
	if gr == 0 {
		return
	}
	keys := st.lists.get(st.grants.at(gr, grKeys))
	i := slices.Index(keys, k)
	switch {
	case i < 0:
	case len(keys) == 1:
		st.dropGrant(gr)
	default:
		st.setGrantKeys(gr, st.lists.intern(slices.Delete(slices.Clone(keys), i, i+1)))
	}
}

// putRoleOf adds or replaces a role.
func (st *state) putRoleOf(r model.Role) {
	st.putRole(st.str.intern(r.Key()), st.str.intern(r.Slug), st.str.intern(r.ResourceType), st.permList(r.Permissions))
}

// permList interns a role's permissions as a sorted list without repeats:
// the document holds them as the keys of an object.
func (st *state) permList(ps []string) uint32 {
	l := make([]uint32, len(ps))
	for i, p := range ps {
		l[i] = st.str.intern(p)
	}
	slices.SortFunc(l, st.str.compare)
	return st.lists.intern(slices.Compact(l))
}
