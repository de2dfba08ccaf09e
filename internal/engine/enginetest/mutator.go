package enginetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/trellis-authz/trellis/internal/model"
)

// Mutator changes a dataset at random and says what it changed, the way a
// database's change feed would (cascades included, in any order).
type Mutator struct {
	DS   *model.Dataset
	Rand *rand.Rand
	n    int
}

func (m *Mutator) id(prefix string) string {
	m.n++
	return fmt.Sprintf("%s_new_%d", prefix, m.n)
}

func (m *Mutator) parentOf(r model.Resource) string {
	if r.ParentID != "" {
		return r.ParentID
	}
	for _, o := range m.DS.Organizations {
		if o.ID == r.OrganizationID {
			return o.RootID()
		}
	}
	return ""
}

// subtree returns the ids of the resources at and below id.
func (m *Mutator) subtree(id string) map[string]bool {
	in := map[string]bool{id: true}
	for grown := true; grown; {
		grown = false
		for _, r := range m.DS.Resources {
			if !in[r.ID] && in[m.parentOf(r)] {
				in[r.ID], grown = true, true
			}
		}
	}
	return in
}

func (m *Mutator) pickResource() model.Resource {
	return m.DS.Resources[m.Rand.IntN(len(m.DS.Resources))]
}

func (m *Mutator) membershipsOf(org string) []model.Membership {
	var out []model.Membership
	for _, ms := range m.DS.Memberships {
		if ms.OrganizationID == org {
			out = append(out, ms)
		}
	}
	return out
}

func (m *Mutator) groupsOf(org string) []model.Group {
	var out []model.Group
	for _, g := range m.DS.Groups {
		if g.OrganizationID == org {
			out = append(out, g)
		}
	}
	return out
}

func (m *Mutator) rolesOfType(org, typ string) []model.Role {
	var out []model.Role
	for _, r := range m.DS.Roles {
		if r.ResourceType == typ && (r.OrganizationID == "" || r.OrganizationID == org) {
			out = append(out, r)
		}
	}
	return out
}

// stepWeights are the odds of Step's kinds of change, by case number:
// additions outweigh deletions, so that a long run keeps a dataset worth
// asking about.
var stepWeights = [...]int{
	0: 4, 1: 2, 2: 1, 3: 3, 4: 3, 5: 2, 6: 2, 7: 2, // resources, assignments, memberships, roles
	8: 1, 9: 1, 10: 1, 11: 1, 12: 1, 13: 1, 14: 1, // deletions and creations of memberships, roles, organizations, permissions
	15: 2, 16: 1, 17: 1, 18: 1, // groups: a member added, a member removed, a group created, a group deleted
	19: 2, 20: 1, // attributes of a resource, of an organization
}

// kind draws the case of Step to run.
func (m *Mutator) kind() int {
	total := 0
	for _, w := range stepWeights {
		total += w
	}
	n := m.Rand.IntN(total)
	for k, w := range stepWeights {
		if n < w {
			return k
		}
		n -= w
	}
	return 0
}

// attributes returns none, {flag: true} or other attributes, a third each
// (an extension may test flag).
func (m *Mutator) attributes(flag string) model.Attributes {
	switch m.Rand.IntN(3) {
	case 0:
		return nil
	case 1:
		return model.Attributes{flag: true}
	}
	return model.Attributes{"level": json.Number(strconv.Itoa(m.Rand.IntN(3)))}
}

// Step makes one random change and returns the changes a feed would carry.
func (m *Mutator) Step() []model.Change {
	ds := m.DS
	if len(ds.Resources) < 10 || len(ds.Memberships) < 3 || len(ds.Roles) < 5 {
		return nil // too little left to change; the rebuild check still runs
	}
	switch m.kind() {
	case 13: // a new membership of an existing organization
		o := ds.Organizations[m.Rand.IntN(len(ds.Organizations))]
		ms := model.Membership{ID: m.id("om"), OrganizationID: o.ID, Status: model.StatusActive}
		if roles := m.rolesOfType(o.ID, model.OrganizationType); len(roles) > 0 && m.Rand.IntN(2) == 0 {
			ms.RoleSlugs = []string{roles[m.Rand.IntN(len(roles))].Slug}
		}
		ds.Memberships = append(ds.Memberships, ms)
		return []model.Change{{Op: model.OpUpsert, Membership: &ms}}
	case 14: // a new role of a resource's type, of its organization or of every one
		res := m.pickResource()
		r := model.Role{Slug: m.id("role"), ResourceType: res.Type}
		if m.Rand.IntN(2) == 0 {
			r.OrganizationID = res.OrganizationID
		}
		for _, p := range ds.Permissions {
			if p.ResourceType == res.Type && m.Rand.IntN(2) == 0 {
				r.Permissions = append(r.Permissions, p.Slug)
			}
		}
		ds.Roles = append(ds.Roles, r)
		return []model.Change{{Op: model.OpUpsert, Role: &r}}
	case 11: // delete a permission: roles lose it
		if len(ds.Permissions) < 5 {
			return nil
		}
		i := m.Rand.IntN(len(ds.Permissions))
		gone := ds.Permissions[i].Slug
		ds.Permissions = slices.Delete(ds.Permissions, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Permission: &model.Permission{Slug: gone}}}
		for j := range ds.Roles {
			r := &ds.Roles[j]
			if slices.Contains(r.Permissions, gone) {
				r.Permissions = slices.DeleteFunc(slices.Clone(r.Permissions), func(p string) bool { return p == gone })
				changed := *r
				chs = append(chs, model.Change{Op: model.OpUpsert, Role: &changed})
			}
		}
		return chs
	case 12: // a new permission, added to a role of its type
		r := &ds.Roles[m.Rand.IntN(len(ds.Roles))]
		p := model.Permission{Slug: r.ResourceType + ":" + m.id("act"), ResourceType: r.ResourceType}
		ds.Permissions = append(ds.Permissions, p)
		r.Permissions = append(slices.Clone(r.Permissions), p.Slug)
		changed := *r
		return []model.Change{{Op: model.OpUpsert, Permission: &p}, {Op: model.OpUpsert, Role: &changed}}
	case 8: // delete a membership with its assignments
		i := m.Rand.IntN(len(ds.Memberships))
		gone := ds.Memberships[i]
		ds.Memberships = slices.Delete(ds.Memberships, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Membership: &model.Membership{ID: gone.ID}}}
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			if a.MembershipID == gone.ID {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return a.MembershipID == gone.ID
		})
		ds.GroupMembers = slices.DeleteFunc(ds.GroupMembers, func(gm model.GroupMember) bool {
			if gm.MembershipID == gone.ID {
				chs = append(chs, model.Change{Op: model.OpDelete, GroupMember: &gm})
			}
			return gm.MembershipID == gone.ID
		})
		m.Rand.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 9: // delete a role: its assignments go and memberships lose it
		i := m.Rand.IntN(len(ds.Roles))
		gone := ds.Roles[i]
		ds.Roles = slices.Delete(ds.Roles, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Role: &model.Role{Slug: gone.Slug, OrganizationID: gone.OrganizationID}}}
		memberOrg := map[string]string{} // of memberships and groups: an assignment's principal
		for _, g := range ds.Groups {
			memberOrg[g.ID] = g.OrganizationID
		}
		for j := range ds.Memberships {
			ms := &ds.Memberships[j]
			memberOrg[ms.ID] = ms.OrganizationID
			if (gone.OrganizationID == "" || gone.OrganizationID == ms.OrganizationID) && slices.Contains(ms.RoleSlugs, gone.Slug) {
				ms.RoleSlugs = slices.DeleteFunc(slices.Clone(ms.RoleSlugs), func(s string) bool { return s == gone.Slug })
				changed := *ms
				chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &changed})
			}
		}
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			hit := a.RoleSlug == gone.Slug && (gone.OrganizationID == "" || gone.OrganizationID == memberOrg[a.Principal()])
			if hit {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return hit
		})
		m.Rand.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 10: // a new organization with a member holding an organization role
		o := model.Organization{ID: m.id("org")}
		ds.Organizations = append(ds.Organizations, o)
		chs := []model.Change{{Op: model.OpUpsert, Organization: &o}}
		if roles := m.rolesOfType(o.ID, model.OrganizationType); len(roles) > 0 {
			ms := model.Membership{ID: m.id("om"), OrganizationID: o.ID, Status: model.StatusActive, RoleSlugs: []string{roles[0].Slug}}
			ds.Memberships = append(ds.Memberships, ms)
			chs = append(chs, model.Change{Op: model.OpUpsert, Membership: &ms})
		}
		return chs
	case 0: // add a resource under a random resource
		p := m.pickResource()
		r := model.Resource{ID: m.id("authz_resource"), OrganizationID: p.OrganizationID, Type: p.Type, ExternalID: m.id("ext"), ParentID: p.ID}
		ds.Resources = append(ds.Resources, r)
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}
	case 1: // re-parent a resource within its organization, never into its own subtree
		i := m.Rand.IntN(len(ds.Resources))
		r := ds.Resources[i]
		below := m.subtree(r.ID)
		for range 20 {
			p := m.pickResource()
			if p.OrganizationID == r.OrganizationID && !below[p.ID] {
				ds.Resources[i].ParentID = p.ID
				moved := ds.Resources[i]
				return []model.Change{{Op: model.OpUpsert, Resource: &moved}}
			}
		}
		ds.Resources[i].ParentID = "" // to the root
		moved := ds.Resources[i]
		return []model.Change{{Op: model.OpUpsert, Resource: &moved}}
	case 2: // delete a subtree with its assignments, in shuffled order
		gone := m.subtree(m.pickResource().ID)
		var chs []model.Change
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			if gone[a.ResourceID] {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return gone[a.ResourceID]
		})
		ds.Resources = slices.DeleteFunc(ds.Resources, func(r model.Resource) bool {
			if gone[r.ID] {
				chs = append(chs, model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: r.ID}})
			}
			return gone[r.ID]
		})
		m.Rand.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 3, 4: // assign a role
		r := m.pickResource()
		ms, roles := m.membershipsOf(r.OrganizationID), m.rolesOfType(r.OrganizationID, r.Type)
		if len(ms) == 0 || len(roles) == 0 {
			return nil
		}
		a := model.Assignment{ID: m.id("role_assignment"), MembershipID: ms[m.Rand.IntN(len(ms))].ID, RoleSlug: roles[m.Rand.IntN(len(roles))].Slug, ResourceID: r.ID}
		if gs := m.groupsOf(r.OrganizationID); len(gs) > 0 && m.Rand.IntN(3) == 0 { // to a group instead
			a.MembershipID, a.GroupID = "", gs[m.Rand.IntN(len(gs))].ID
		}
		ds.Assignments = append(ds.Assignments, a)
		return []model.Change{{Op: model.OpUpsert, Assignment: &a}}
	case 5: // remove an assignment
		if len(ds.Assignments) == 0 {
			return nil
		}
		i := m.Rand.IntN(len(ds.Assignments))
		a := ds.Assignments[i]
		ds.Assignments = slices.Delete(ds.Assignments, i, i+1)
		return []model.Change{{Op: model.OpDelete, Assignment: &a}}
	case 6: // change a membership's status and organization roles
		i := m.Rand.IntN(len(ds.Memberships))
		ms := &ds.Memberships[i]
		ms.Status = []string{model.StatusActive, model.StatusInactive}[m.Rand.IntN(2)]
		roles := m.rolesOfType(ms.OrganizationID, model.OrganizationType)
		ms.RoleSlugs = nil
		for _, r := range roles {
			if m.Rand.IntN(3) == 0 {
				ms.RoleSlugs = append(ms.RoleSlugs, r.Slug)
			}
		}
		changed := *ms
		return []model.Change{{Op: model.OpUpsert, Membership: &changed}}
	case 15: // a membership joins a group of its organization
		ms := ds.Memberships[m.Rand.IntN(len(ds.Memberships))]
		gs := m.groupsOf(ms.OrganizationID)
		if len(gs) == 0 {
			return nil
		}
		gm := model.GroupMember{GroupID: gs[m.Rand.IntN(len(gs))].ID, MembershipID: ms.ID}
		if slices.Contains(ds.GroupMembers, gm) {
			return nil
		}
		ds.GroupMembers = append(ds.GroupMembers, gm)
		return []model.Change{{Op: model.OpUpsert, GroupMember: &gm}}
	case 16: // a member leaves its group
		if len(ds.GroupMembers) == 0 {
			return nil
		}
		i := m.Rand.IntN(len(ds.GroupMembers))
		gm := ds.GroupMembers[i]
		ds.GroupMembers = slices.Delete(ds.GroupMembers, i, i+1)
		return []model.Change{{Op: model.OpDelete, GroupMember: &gm}}
	case 17: // a new group of an existing organization
		o := ds.Organizations[m.Rand.IntN(len(ds.Organizations))]
		g := model.Group{ID: m.id("group"), OrganizationID: o.ID, Name: "g"}
		ds.Groups = append(ds.Groups, g)
		return []model.Change{{Op: model.OpUpsert, Group: &g}}
	case 18: // delete a group with its members and assignments, in shuffled order
		if len(ds.Groups) == 0 {
			return nil
		}
		i := m.Rand.IntN(len(ds.Groups))
		gone := ds.Groups[i].ID
		ds.Groups = slices.Delete(ds.Groups, i, i+1)
		chs := []model.Change{{Op: model.OpDelete, Group: &model.Group{ID: gone}}}
		ds.GroupMembers = slices.DeleteFunc(ds.GroupMembers, func(gm model.GroupMember) bool {
			if gm.GroupID == gone {
				chs = append(chs, model.Change{Op: model.OpDelete, GroupMember: &gm})
			}
			return gm.GroupID == gone
		})
		ds.Assignments = slices.DeleteFunc(ds.Assignments, func(a model.Assignment) bool {
			if a.GroupID == gone {
				chs = append(chs, model.Change{Op: model.OpDelete, Assignment: &a})
			}
			return a.GroupID == gone
		})
		m.Rand.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
		return chs
	case 19: // a resource's attributes
		i := m.Rand.IntN(len(ds.Resources))
		ds.Resources[i].Attributes = m.attributes("confidential")
		r := ds.Resources[i]
		return []model.Change{{Op: model.OpUpsert, Resource: &r}}
	case 20: // an organization's attributes
		i := m.Rand.IntN(len(ds.Organizations))
		ds.Organizations[i].Attributes = m.attributes("frozen")
		o := ds.Organizations[i]
		return []model.Change{{Op: model.OpUpsert, Organization: &o}}
	default: // 7: edit a role's permissions
		i := m.Rand.IntN(len(ds.Roles))
		r := &ds.Roles[i]
		var perms []string
		for _, p := range ds.Permissions {
			if m.Rand.IntN(2) == 0 {
				perms = append(perms, p.Slug)
			}
		}
		r.Permissions = perms
		changed := *r
		return []model.Change{{Op: model.OpUpsert, Role: &changed}}
	}
}

// Clone returns a copy of ds that a Mutator's later steps leave alone:
// Step replaces entities and their lists of role slugs and permissions, and
// never changes one of those lists in place.
func Clone(ds *model.Dataset) *model.Dataset {
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
