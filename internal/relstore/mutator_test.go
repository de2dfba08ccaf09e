package relstore_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-authz/trellis/internal/model"
)

// mutator changes a dataset at random and returns the changes a database's
// change feed would carry for it: every kind of change, with the cascades
// of a delete as separate changes in any order. Some batches are meant to
// fail (a change naming what does not exist, an assignment delete without
// its fields); the caller then restores the dataset it cloned.
type mutator struct {
	ds  *model.Dataset
	rnd *rand.Rand
	n   int
}

func (m *mutator) id(prefix string) string {
	m.n++
	return fmt.Sprintf("%s_new_%d", prefix, m.n)
}

func (m *mutator) pick(n int) int { return m.rnd.IntN(n) }

// attributes returns none or one of a few attributes, some equal (which
// the store keeps once).
func (m *mutator) attributes() model.Attributes {
	switch m.pick(4) {
	case 0:
		return nil
	case 1:
		return model.Attributes{"confidential": true}
	}
	return model.Attributes{"level": json.Number(strconv.Itoa(m.pick(5))), "tags": []any{"a", map[string]any{"b": nil}}}
}

func shuffle(rnd *rand.Rand, chs []model.Change) []model.Change {
	rnd.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
	return chs
}

func (m *mutator) rootOf(org string) string {
	for _, o := range m.ds.Organizations {
		if o.ID == org {
			return o.RootID()
		}
	}
	return ""
}

func (m *mutator) parentOf(r model.Resource) string {
	if r.ParentID != "" {
		return r.ParentID
	}
	return m.rootOf(r.OrganizationID)
}

// subtree returns the ids of the resources at and below id.
func (m *mutator) subtree(id string) map[string]bool {
	in := map[string]bool{id: true}
	for grown := true; grown; {
		grown = false
		for _, r := range m.ds.Resources {
			if !in[r.ID] && in[m.parentOf(r)] {
				in[r.ID], grown = true, true
			}
		}
	}
	return in
}

func (m *mutator) membershipsOf(org string) []model.Membership {
	var out []model.Membership
	for _, ms := range m.ds.Memberships {
		if ms.OrganizationID == org {
			out = append(out, ms)
		}
	}
	return out
}

// rolesIn returns the roles that resolve in org, of type typ ("" for any).
func (m *mutator) rolesIn(org, typ string) []model.Role {
	var out []model.Role
	for _, r := range m.ds.Roles {
		if (r.OrganizationID == "" || r.OrganizationID == org) && (typ == "" || r.ResourceType == typ) {
			out = append(out, r)
		}
	}
	return out
}

func (m *mutator) types() []string {
	ts := []string{model.OrganizationType}
	for _, t := range m.ds.ResourceTypes {
		ts = append(ts, t.Slug)
	}
	return ts
}

// someOrg returns an organization that has resources, or "".
func (m *mutator) someResource() (model.Resource, bool) {
	if len(m.ds.Resources) == 0 {
		return model.Resource{}, false
	}
	return m.ds.Resources[m.pick(len(m.ds.Resources))], true
}

// step makes one random change to the dataset and returns its changes, and
// whether they are meant to fail.
func (m *mutator) step() ([]model.Change, bool) {
	ds := m.ds
	if len(ds.Resources) < 10 || len(ds.Roles) < 3 { // grow back what deletes took
		o := ds.Organizations[m.pick(len(ds.Organizations))]
		r := model.Resource{ID: m.id("authz_resource"), OrganizationID: o.ID, Type: ds.ResourceTypes[0].Slug, ExternalID: m.id("ext")}
		ds.Resources = append(ds.Resources, r)
		role := model.Role{Slug: m.id("role"), ResourceType: model.OrganizationType, Permissions: []string{ds.Permissions[0].Slug}}
		ds.Roles = append(ds.Roles, role)
		return []model.Change{{Op: model.OpUpsert, Resource: &r}, {Op: model.OpUpsert, Role: &role}}, false
	}
	if m.pick(4) == 0 {
		if chs, ok := m.groupStep(); ok {
			return chs, false
		}
	}
	switch m.pick(20) {
	case 0, 1: // a new resource under a resource or the root
		p, ok := m.someResource()
		if !ok {
			return nil, false
		}
		r := model.Resource{ID: m.id("authz_resource"), OrganizationID: p.OrganizationID, Type: p.Type, ExternalID: m.id("ext"), ParentID: p.ID, Attributes: m.attributes()}
		if m.pick(3) == 0 {
			r.ParentID, r.Type = "", ds.ResourceTypes[0].Slug
		}
		ds.Resources = append(ds.Resources, r)
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}, false
	case 2, 3: // a re-parent within the organization, never into the own subtree
		i := m.pick(len(ds.Resources))
		r := ds.Resources[i]
		below := m.subtree(r.ID)
		r.ParentID = ""
		for range 20 {
			if p, _ := m.someResource(); p.OrganizationID == r.OrganizationID && !below[p.ID] {
				r.ParentID = p.ID
				break
			}
		}
		ds.Resources[i] = r
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}, false
	case 4: // a new external id, and sometimes type; or new attributes, of a resource or an organization
		if m.pick(3) == 0 {
			i := m.pick(len(ds.Organizations))
			ds.Organizations[i].Attributes = m.attributes()
			o := ds.Organizations[i]
			return []model.Change{{Op: model.OpUpsert, Organization: &o}}, false
		}
		i := m.pick(len(ds.Resources))
		r := ds.Resources[i]
		switch m.pick(3) {
		case 0:
			r.Attributes = m.attributes()
		case 1:
			r.ExternalID = m.id("ext")
		default:
			r.ExternalID = m.id("ext")
			r.Type = ds.ResourceTypes[m.pick(len(ds.ResourceTypes))].Slug
		}
		ds.Resources[i] = r
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}, false
	case 5: // a subtree deleted with its assignments, in any order
		r, ok := m.someResource()
		if !ok {
			return nil, false
		}
		return m.deleteResources(m.subtree(r.ID)), false
	case 6, 7: // an assignment
		r, ok := m.someResource()
		if !ok {
			return nil, false
		}
		ms, roles := m.membershipsOf(r.OrganizationID), m.rolesIn(r.OrganizationID, r.Type)
		if len(ms) == 0 || len(roles) == 0 {
			return nil, false
		}
		a := model.Assignment{ID: m.id("ra"), MembershipID: ms[m.pick(len(ms))].ID, RoleSlug: roles[m.pick(len(roles))].Slug, ResourceID: r.ID}
		if orgRoles := m.rolesIn(r.OrganizationID, model.OrganizationType); m.pick(4) == 0 && len(orgRoles) > 0 { // on the organization root
			a.ResourceID, a.RoleSlug = m.rootOf(r.OrganizationID), orgRoles[m.pick(len(orgRoles))].Slug
		}
		ds.Assignments = append(ds.Assignments, a)
		return []model.Change{{Op: model.OpUpsert, Assignment: &a}}, false
	case 8: // an assignment removed
		if len(ds.Assignments) == 0 {
			return nil, false
		}
		i := m.pick(len(ds.Assignments))
		a := ds.Assignments[i]
		ds.Assignments = slices.Delete(ds.Assignments, i, i+1)
		return []model.Change{{Op: model.OpDelete, Assignment: &a}}, false
	case 9: // a membership's status and organization roles
		if len(ds.Memberships) == 0 {
			return nil, false
		}
		ms := &ds.Memberships[m.pick(len(ds.Memberships))]
		ms.Status = []string{model.StatusActive, model.StatusInactive, model.StatusPending}[m.pick(3)]
		ms.RoleSlugs = nil
		for _, r := range m.rolesIn(ms.OrganizationID, model.OrganizationType) {
			if m.pick(3) == 0 {
				ms.RoleSlugs = append(ms.RoleSlugs, r.Slug)
			}
		}
		changed := *ms
		return []model.Change{{Op: model.OpUpsert, Membership: &changed}}, false
	case 10: // a new membership
		o := ds.Organizations[m.pick(len(ds.Organizations))]
		ms := model.Membership{ID: m.id("om"), UserID: m.id("user"), OrganizationID: o.ID, Status: model.StatusActive}
		if roles := m.rolesIn(o.ID, model.OrganizationType); len(roles) > 0 {
			ms.RoleSlugs = []string{roles[m.pick(len(roles))].Slug}
		}
		ds.Memberships = append(ds.Memberships, ms)
		return []model.Change{{Op: model.OpUpsert, Membership: &ms}}, false
	case 11: // a membership deleted with its assignments
		if len(ds.Memberships) == 0 {
			return nil, false
		}
		gone := ds.Memberships[m.pick(len(ds.Memberships))]
		return m.deleteMemberships(map[string]bool{gone.ID: true}), false
	case 12: // a role's permissions
		r := &ds.Roles[m.pick(len(ds.Roles))]
		var perms []string
		for _, p := range ds.Permissions {
			if m.pick(2) == 0 {
				perms = append(perms, p.Slug)
			}
		}
		r.Permissions = perms
		changed := *r
		return []model.Change{{Op: model.OpUpsert, Role: &changed}}, false
	case 13: // a new environment or organization role
		types := m.types()
		r := model.Role{Slug: m.id("role"), ResourceType: types[m.pick(len(types))]}
		if m.pick(2) == 0 {
			r.OrganizationID = ds.Organizations[m.pick(len(ds.Organizations))].ID
		}
		for _, p := range ds.Permissions {
			if m.pick(3) == 0 {
				r.Permissions = append(r.Permissions, p.Slug)
			}
		}
		ds.Roles = append(ds.Roles, r)
		return []model.Change{{Op: model.OpUpsert, Role: &r}}, false
	case 14: // a role deleted: memberships lose it, its assignments go
		if len(ds.Roles) < 3 {
			return nil, false
		}
		return m.deleteRole(m.pick(len(ds.Roles))), false
	case 15: // a permission created, or deleted from every role
		if m.pick(2) == 0 || len(ds.Permissions) < 3 {
			types := m.types()
			p := model.Permission{Slug: m.id("perm"), ResourceType: types[m.pick(len(types))]}
			ds.Permissions = append(ds.Permissions, p)
			return []model.Change{{Op: model.OpUpsert, Permission: &p}}, false
		}
		i := m.pick(len(ds.Permissions))
		gone := ds.Permissions[i]
		ds.Permissions = slices.Delete(ds.Permissions, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Permission: &model.Permission{Slug: gone.Slug}}}
		for j := range ds.Roles {
			r := &ds.Roles[j]
			if slices.Contains(r.Permissions, gone.Slug) {
				r.Permissions = slices.DeleteFunc(slices.Clone(r.Permissions), func(p string) bool { return p == gone.Slug })
				changed := *r
				chs = append(chs, model.Change{Op: model.OpUpsert, Role: &changed})
			}
		}
		return shuffle(m.rnd, chs), false
	case 16: // a new resource type, or the deletion of one no resource has
		for i, t := range ds.ResourceTypes {
			if strings.HasPrefix(t.Slug, "type_") && m.pick(2) == 0 {
				ds.ResourceTypes = slices.Delete(ds.ResourceTypes, i, i+1)
				return []model.Change{{Op: model.OpDelete, ResourceType: &t}}, false
			}
		}
		t := model.ResourceType{Slug: m.id("type"), ParentTypes: []string{model.OrganizationType}}
		ds.ResourceTypes = append(ds.ResourceTypes, t)
		return []model.Change{{Op: model.OpUpsert, ResourceType: &t}}, false
	case 17: // a new organization with a member holding an organization role
		o := model.Organization{ID: m.id("org"), Attributes: m.attributes()}
		if m.pick(2) == 0 {
			o.RootResourceID = m.id("root")
		}
		ds.Organizations = append(ds.Organizations, o)
		chs := []model.Change{{Op: model.OpUpsert, Organization: &o}}
		if roles := m.rolesIn(o.ID, model.OrganizationType); len(roles) > 0 {
			ms := model.Membership{ID: m.id("om"), OrganizationID: o.ID, Status: model.StatusActive, RoleSlugs: []string{roles[0].Slug}}
			ds.Memberships = append(ds.Memberships, ms)
			chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &ms})
		}
		return chs, false
	case 18: // an organization deleted with everything in it, in any order
		if len(ds.Organizations) < 2 {
			return nil, false
		}
		return m.deleteOrganization(m.pick(len(ds.Organizations))), false
	default: // a batch that fails at its last change, or an incomplete delete
		r, ok := m.someResource()
		if !ok {
			return nil, false
		}
		ok1 := model.Resource{ID: m.id("authz_resource"), OrganizationID: r.OrganizationID, Type: r.Type, ExternalID: m.id("ext"), ParentID: m.parentOf(r)}
		var bad model.Change
		switch m.pick(9) {
		case 0:
			bad = model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: m.id("authz_resource"), OrganizationID: r.OrganizationID, Type: r.Type, ExternalID: m.id("ext"), ParentID: "nope"}}
		case 1:
			bad = model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: m.id("ra"), MembershipID: "om_nope", RoleSlug: "x", ResourceID: r.ID}}
		case 2:
			bad = model.Change{Op: model.OpDelete, Assignment: &model.Assignment{ID: "ra_only_an_id"}}
		case 3:
			bad = model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: m.id("om"), OrganizationID: "org_nope"}}
		case 4: // a re-parent under the new sibling's own child: a cycle
			moved := r
			moved.ParentID = ok1.ID
			re := model.Resource{ID: ok1.ID, OrganizationID: ok1.OrganizationID, Type: ok1.Type, ExternalID: ok1.ExternalID, ParentID: r.ID}
			return []model.Change{{Op: model.OpUpsert, Resource: &ok1}, {Op: model.OpUpsert, Resource: &re}, {Op: model.OpUpsert, Resource: &moved}}, true
		case 5: // a parent in another organization
			for _, o := range m.ds.Organizations {
				if o.ID != r.OrganizationID {
					bad = model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: m.id("authz_resource"), OrganizationID: r.OrganizationID, Type: r.Type, ExternalID: m.id("ext"), ParentID: o.RootID()}}
				}
			}
		case 6: // an assignment of a role of another type
			for _, role := range m.rolesIn(r.OrganizationID, "") {
				if ms := m.membershipsOf(r.OrganizationID); role.ResourceType != r.Type && len(ms) > 0 {
					bad = model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: m.id("ra"), MembershipID: ms[0].ID, RoleSlug: role.Slug, ResourceID: r.ID}}
				}
			}
		case 7: // an organization role not of the organization type
			for _, role := range m.rolesIn(r.OrganizationID, r.Type) {
				if role.ResourceType != model.OrganizationType {
					bad = model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: m.id("om"), OrganizationID: r.OrganizationID, RoleSlugs: []string{role.Slug}}}
				}
			}
		default:
			bad = model.Change{Op: model.OpUpsert}
		}
		return []model.Change{{Op: model.OpUpsert, Resource: &ok1}, bad}, true
	}
}

func (m *mutator) deleteResources(gone map[string]bool) []model.Change {
	ds := m.ds
	var chs []model.Change
	ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
		if gone[a.ResourceID] {
			chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
		}
		return gone[a.ResourceID]
	})
	ds.Resources = slices.DeleteFunc(ds.Resources, func(r model.Resource) bool {
		if gone[r.ID] {
			chs = append(chs, model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: r.ID, OrganizationID: r.OrganizationID}})
		}
		return gone[r.ID]
	})
	return shuffle(m.rnd, chs)
}

func (m *mutator) deleteMemberships(gone map[string]bool) []model.Change {
	ds := m.ds
	var chs []model.Change
	ds.Memberships = slices.DeleteFunc(ds.Memberships, func(ms model.Membership) bool {
		if gone[ms.ID] {
			chs = append(chs, model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: ms.ID}})
		}
		return gone[ms.ID]
	})
	ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
		if gone[a.Principal()] {
			chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
		}
		return gone[a.Principal()]
	})
	ds.GroupMembers = slices.DeleteFunc(ds.GroupMembers, func(gm model.GroupMember) bool {
		if gone[gm.MembershipID] || gone[gm.GroupID] {
			chs = append(chs, model.Change{Op: model.OpDelete, GroupMember: &gm})
		}
		return gone[gm.MembershipID] || gone[gm.GroupID]
	})
	ds.Groups = slices.DeleteFunc(ds.Groups, func(g model.Group) bool {
		if gone[g.ID] {
			chs = append(chs, model.Change{Op: model.OpDelete, Group: &model.Group{ID: g.ID}})
		}
		return gone[g.ID]
	})
	return shuffle(m.rnd, chs)
}

// groupStep makes one random change to groups: a new group, a rename, a
// member added or removed, a group role assignment added or removed, a
// group deleted with its cascade. It reports false when it found nothing
// to change.
func (m *mutator) groupStep() ([]model.Change, bool) {
	ds := m.ds
	if len(ds.Groups) == 0 || m.pick(6) == 0 {
		o := ds.Organizations[m.pick(len(ds.Organizations))]
		g := model.Group{ID: m.id("group"), OrganizationID: o.ID, Name: m.id("name")}
		ds.Groups = append(ds.Groups, g)
		return []model.Change{{Op: model.OpUpsert, Group: &g}}, true
	}
	gi := m.pick(len(ds.Groups))
	g := ds.Groups[gi]
	switch m.pick(6) {
	case 0:
		g.Name = m.id("name")
		ds.Groups[gi] = g
		return []model.Change{{Op: model.OpUpsert, Group: &g}}, true
	case 1, 2:
		ms := m.membershipsOf(g.OrganizationID)
		if len(ms) == 0 {
			return nil, false
		}
		gm := model.GroupMember{GroupID: g.ID, MembershipID: ms[m.pick(len(ms))].ID}
		if slices.Contains(ds.GroupMembers, gm) {
			ds.GroupMembers = slices.DeleteFunc(ds.GroupMembers, func(x model.GroupMember) bool { return x == gm })
			return []model.Change{{Op: model.OpDelete, GroupMember: &gm}}, true
		}
		ds.GroupMembers = append(ds.GroupMembers, gm)
		return []model.Change{{Op: model.OpUpsert, GroupMember: &gm}}, true
	case 3, 4:
		for range 10 {
			r, ok := m.someResource()
			if !ok || r.OrganizationID != g.OrganizationID {
				continue
			}
			roles := m.rolesIn(g.OrganizationID, r.Type)
			if len(roles) == 0 {
				continue
			}
			a := model.Assignment{ID: m.id("ra"), GroupID: g.ID, RoleSlug: roles[m.pick(len(roles))].Slug, ResourceID: r.ID}
			for i, x := range ds.Assignments {
				if x.GroupID == a.GroupID && x.RoleSlug == a.RoleSlug && x.ResourceID == a.ResourceID {
					ds.Assignments = slices.Delete(ds.Assignments, i, i+1)
					return []model.Change{{Op: model.OpDelete, Assignment: &x}}, true
				}
			}
			ds.Assignments = append(ds.Assignments, a)
			return []model.Change{{Op: model.OpUpsert, Assignment: &a}}, true
		}
		return nil, false
	default:
		return m.deleteMemberships(map[string]bool{g.ID: true}), true
	}
}

func (m *mutator) deleteRole(i int) []model.Change {
	ds := m.ds
	gone := ds.Roles[i]
	ds.Roles = slices.Delete(ds.Roles, i, i+1)
	chs := []model.Change{{Op: model.OpDelete, Role: &model.Role{Slug: gone.Slug, OrganizationID: gone.OrganizationID}}}
	hits := func(org string) bool { return gone.OrganizationID == "" || gone.OrganizationID == org }
	memberOrg := map[string]string{}
	for _, g := range ds.Groups {
		memberOrg[g.ID] = g.OrganizationID
	}
	for j := range ds.Memberships {
		ms := &ds.Memberships[j]
		memberOrg[ms.ID] = ms.OrganizationID
		if hits(ms.OrganizationID) && slices.Contains(ms.RoleSlugs, gone.Slug) {
			ms.RoleSlugs = slices.DeleteFunc(slices.Clone(ms.RoleSlugs), func(s string) bool { return s == gone.Slug })
			changed := *ms
			chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &changed})
		}
	}
	ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
		hit := a.RoleSlug == gone.Slug && hits(memberOrg[a.Principal()])
		if hit {
			chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
		}
		return hit
	})
	return shuffle(m.rnd, chs)
}

// deleteOrganization deletes organization i as the database cascades it:
// its resources, memberships (with their assignments) and roles, each a
// change of its own, in any order.
func (m *mutator) deleteOrganization(i int) []model.Change {
	ds := m.ds
	o := ds.Organizations[i]
	ds.Organizations = slices.Delete(ds.Organizations, i, i+1)
	res, mems := map[string]bool{}, map[string]bool{}
	for _, r := range ds.Resources {
		if r.OrganizationID == o.ID {
			res[r.ID] = true
		}
	}
	for _, ms := range ds.Memberships {
		if ms.OrganizationID == o.ID {
			mems[ms.ID] = true
		}
	}
	for _, g := range ds.Groups {
		if g.OrganizationID == o.ID {
			mems[g.ID] = true
		}
	}
	chs := []model.Change{{Op: model.OpDelete, Organization: &model.Organization{ID: o.ID}}}
	chs = append(chs, m.deleteResources(res)...)
	chs = append(chs, m.deleteMemberships(mems)...)
	ds.Roles = slices.DeleteFunc(ds.Roles, func(r model.Role) bool {
		if r.OrganizationID == o.ID {
			chs = append(chs, model.Change{Op: model.OpDelete, Role: &model.Role{Slug: r.Slug, OrganizationID: o.ID}})
		}
		return r.OrganizationID == o.ID
	})
	return shuffle(m.rnd, chs)
}

// clone copies a dataset deeply enough for the mutator: it replaces inner
// slices, never edits them in place.
func clone(ds *model.Dataset) *model.Dataset {
	c := *ds
	c.Organizations = slices.Clone(ds.Organizations)
	c.Memberships = slices.Clone(ds.Memberships)
	c.ResourceTypes = slices.Clone(ds.ResourceTypes)
	c.Permissions = slices.Clone(ds.Permissions)
	c.Roles = slices.Clone(ds.Roles)
	c.Resources = slices.Clone(ds.Resources)
	c.Assignments = slices.Clone(ds.Assignments)
	c.Groups = slices.Clone(ds.Groups)
	c.GroupMembers = slices.Clone(ds.GroupMembers)
	return &c
}
