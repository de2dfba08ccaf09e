package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Quarantine is an organization held out of service because its data
// breaks a rule of the data model (written around Trellis, restored from a
// backup, left by a bug): its decisions answer organization_unavailable
// while every other organization is served. Only what recognises requests
// about it is kept: the ids of its resources and memberships.
type Quarantine struct {
	// Organization is the organization's id.
	Organization string
	// Problems are the broken rules found in its data, those that name it
	// in Problem.Organizations.
	Problems []Problem
	// Resources are the ids of its resources, its root resource included.
	Resources []string
	// Memberships are the ids of its memberships.
	Memberships []string
}

// QuarantineOf returns the quarantine of organization org in
// d.Quarantined, or nil.
func (d *Dataset) QuarantineOf(org string) *Quarantine {
	for i := range d.Quarantined {
		if d.Quarantined[i].Organization == org {
			return &d.Quarantined[i]
		}
	}
	return nil
}

// Attribute sets the Organizations of each problem in ps, problems found in
// d (by Validate, or by a loader resolving d's references): the entity's
// own organization and, where the problem is a link or a duplicate id
// joining two, the other one's too, so that holding both out of d leaves no
// trace of the problem. A problem of an entity shared by every organization
// (a resource type, a permission, an environment role, the dataset), or of
// one without an organization, gets none. Problem.Index and the kind in
// Problem.Entity say which entity a problem is about.
func (d *Dataset) Attribute(ps []Problem) {
	if len(ps) == 0 {
		return
	}
	o := newOwners(d)
	for i := range ps {
		ps[i].Organizations = o.organizationsOf(ps[i])
	}
}

// owners maps the ids of a dataset to their organizations. When an id is
// used twice, the first use wins, as in Validate.
type owners struct {
	d         *Dataset
	roots     map[string]string // root resource id → organization
	members   map[string]string // membership id → organization
	resources map[string]string // resource id → organization
}

func newOwners(d *Dataset) *owners {
	o := &owners{
		d:         d,
		roots:     make(map[string]string, len(d.Organizations)),
		members:   make(map[string]string, len(d.Memberships)),
		resources: make(map[string]string, len(d.Resources)),
	}
	for _, org := range d.Organizations {
		if _, dup := o.roots[org.RootID()]; !dup && org.ID != "" {
			o.roots[org.RootID()] = org.ID
		}
	}
	for _, m := range d.Memberships {
		if _, dup := o.members[m.ID]; !dup {
			o.members[m.ID] = m.OrganizationID
		}
	}
	for _, r := range d.Resources {
		if _, dup := o.resources[r.ID]; !dup {
			o.resources[r.ID] = r.OrganizationID
		}
	}
	// Groups are principals like memberships, their ids of another prefix.
	for _, g := range d.Groups {
		if _, dup := o.members[g.ID]; !dup {
			o.members[g.ID] = g.OrganizationID
		}
	}
	return o
}

// resourceOrg returns the organization of a resource id, a root's included.
func (o *owners) resourceOrg(id string) string {
	if org, ok := o.roots[id]; ok {
		return org
	}
	return o.resources[id]
}

func (o *owners) organizationsOf(p Problem) []string {
	kind, _, _ := strings.Cut(p.Entity, " ")
	i := p.Index
	var orgs []string
	switch kind {
	case KindOrganization:
		if i >= 0 && i < len(o.d.Organizations) && o.d.Organizations[i].ID != "" {
			org := o.d.Organizations[i]
			orgs = []string{org.ID, o.roots[org.RootID()]}
		}
	case KindRole:
		if i >= 0 && i < len(o.d.Roles) {
			orgs = []string{o.d.Roles[i].OrganizationID}
		}
	case KindMembership:
		if i >= 0 && i < len(o.d.Memberships) && o.d.Memberships[i].OrganizationID != "" {
			m := o.d.Memberships[i]
			orgs = []string{m.OrganizationID, o.members[m.ID]}
		}
	case KindResource:
		if i >= 0 && i < len(o.d.Resources) && o.d.Resources[i].OrganizationID != "" {
			r := o.d.Resources[i]
			orgs = []string{r.OrganizationID, o.resources[r.ID], o.roots[r.ID], o.resourceOrg(r.ParentID)}
		}
	case KindAssignment:
		if i >= 0 && i < len(o.d.Assignments) {
			a := o.d.Assignments[i]
			orgs = []string{o.members[a.Principal()], o.resourceOrg(a.ResourceID)}
		}
	case KindGroup:
		if i >= 0 && i < len(o.d.Groups) {
			orgs = []string{o.d.Groups[i].OrganizationID, o.members[o.d.Groups[i].ID]}
		}
	case KindGroupMember:
		if i >= 0 && i < len(o.d.GroupMembers) {
			gm := o.d.GroupMembers[i]
			orgs = []string{o.members[gm.GroupID], o.members[gm.MembershipID]}
		}
	}
	orgs = slices.DeleteFunc(orgs, func(s string) bool { return s == "" })
	if len(orgs) == 0 {
		return nil
	}
	slices.Sort(orgs)
	return slices.Compact(orgs)
}

// maxIsolateRounds bounds Isolate's rounds. Each round holds out at least
// one more organization, and one round suffices unless holding out an
// organization breaks a rule elsewhere, which Attribute's choice of
// organizations prevents.
const maxIsolateRounds = 8

// Isolate validates d and holds out every organization whose data breaks a
// rule: it returns d itself when no rule is broken, else a new Dataset
// without the rows of those organizations (Without), which Validate
// accepts, listing them in Quarantined (sorted by organization). Problems
// no organization can be blamed for — in resource types, permissions,
// environment roles or the dataset itself — are no organization's to hold
// out: then Isolate returns the *ValidationError listing every problem, and
// no dataset, as Validate would. d is not modified; the result shares its
// unchanged slices.
func (d *Dataset) Isolate() (*Dataset, error) {
	cur := d
	for range maxIsolateRounds {
		err := cur.Validate()
		if err == nil {
			return cur, nil
		}
		var verr *ValidationError
		if !errors.As(err, &verr) {
			return nil, err
		}
		next := cur.Without(verr.Problems)
		if next == nil || len(next.Quarantined) == len(cur.Quarantined) {
			return nil, err
		}
		cur = next
	}
	return nil, errors.New("model: isolating organizations did not converge")
}

// Without returns a copy of d without the rows of every organization a
// problem of ps names (Problem.Organizations): the organization, its root
// resource, resources, memberships and organization roles, and every
// assignment of one of its memberships or on one of its resources. Each
// such organization is added to Quarantined with its problems and the ids
// it held; the problems of one already there are added to it. It returns
// nil when a problem names no organization: that problem cannot be held
// out. d is not modified.
func (d *Dataset) Without(ps []Problem) *Dataset {
	held := map[string]*Quarantine{}
	var order []string
	for _, p := range ps {
		if len(p.Organizations) == 0 {
			return nil
		}
		for _, org := range p.Organizations {
			q := held[org]
			if q == nil {
				q = &Quarantine{Organization: org}
				held[org] = q
				order = append(order, org)
			}
			q.Problems = append(q.Problems, p)
		}
	}
	o := newOwners(d)
	out := *d
	out.Organizations = slices.DeleteFunc(slices.Clone(d.Organizations), func(x Organization) bool {
		if q := held[x.ID]; q != nil {
			q.Resources = append(q.Resources, x.RootID())
			return true
		}
		return false
	})
	out.Roles = slices.DeleteFunc(slices.Clone(d.Roles), func(x Role) bool { return held[x.OrganizationID] != nil })
	out.Memberships = slices.DeleteFunc(slices.Clone(d.Memberships), func(x Membership) bool {
		if q := held[x.OrganizationID]; q != nil {
			q.Memberships = append(q.Memberships, x.ID)
			return true
		}
		return false
	})
	out.Resources = slices.DeleteFunc(slices.Clone(d.Resources), func(x Resource) bool {
		if q := held[x.OrganizationID]; q != nil {
			q.Resources = append(q.Resources, x.ID)
			return true
		}
		return false
	})
	out.Assignments = slices.DeleteFunc(slices.Clone(d.Assignments), func(x Assignment) bool {
		return held[o.members[x.Principal()]] != nil || held[o.resourceOrg(x.ResourceID)] != nil
	})
	out.Groups = slices.DeleteFunc(slices.Clone(d.Groups), func(x Group) bool { return held[x.OrganizationID] != nil })
	out.GroupMembers = slices.DeleteFunc(slices.Clone(d.GroupMembers), func(x GroupMember) bool {
		return held[o.members[x.GroupID]] != nil || held[o.members[x.MembershipID]] != nil
	})
	out.Quarantined = slices.Clone(d.Quarantined)
	for _, org := range order {
		if prev := out.QuarantineOf(org); prev != nil {
			prev.Problems = append(slices.Clone(prev.Problems), held[org].Problems...)
			continue
		}
		out.Quarantined = append(out.Quarantined, *held[org])
	}
	slices.SortFunc(out.Quarantined, func(a, b Quarantine) int { return strings.Compare(a.Organization, b.Organization) })
	return &out
}

// RuleError is a change that would break a rule of the data model where it
// is applied, e.g. a re-parent that makes a tree deeper than the maximum
// or closes a cycle: it is not applied. Problem.Organizations names the
// organizations whose data it breaks, to be quarantined (QuarantineSet)
// rather than have the change wedge the data; none when it cannot tell.
type RuleError struct {
	Problem Problem
}

func (e *RuleError) Error() string { return "change breaks a rule: " + e.Problem.String() }

// BrokenRule returns the RuleError of a change to entity that breaks rule
// code at field, with a message formatted from format and args. orgs are
// the organizations whose data it breaks; empty ids and duplicates are
// dropped, and they are sorted.
func BrokenRule(code string, orgs []string, entity, field, format string, args ...any) *RuleError {
	orgs = slices.DeleteFunc(slices.Clone(orgs), func(o string) bool { return o == "" })
	slices.Sort(orgs)
	return &RuleError{Problem: Problem{
		Entity: entity, Field: field, Code: code, Message: fmt.Sprintf(format, args...),
		Index: -1, Organizations: slices.Compact(orgs),
	}}
}

// Schema reports whether the change is to data every organization shares:
// a resource type, a permission or an environment role.
func (c Change) Schema() bool {
	return c.ResourceType != nil || c.Permission != nil || (c.Role != nil && c.Role.OrganizationID == "")
}

// QuarantineSet is the quarantined organizations of a data source and what
// recognises their changes: the ids of their resources and memberships,
// kept current as changes arrive. It is not safe for concurrent use.
type QuarantineSet struct {
	orgs        map[string]Quarantine
	resources   map[string]string // resource id → organization
	memberships map[string]string // membership id → organization
}

// NewQuarantineSet returns a set holding qs.
func NewQuarantineSet(qs []Quarantine) *QuarantineSet {
	s := &QuarantineSet{orgs: map[string]Quarantine{}, resources: map[string]string{}, memberships: map[string]string{}}
	for _, q := range qs {
		s.Put(q)
	}
	return s
}

// Put adds q, replacing the quarantine of its organization if there is one.
func (s *QuarantineSet) Put(q Quarantine) {
	s.Delete(q.Organization)
	s.orgs[q.Organization] = q
	for _, id := range q.Resources {
		s.resources[id] = q.Organization
	}
	for _, id := range q.Memberships {
		s.memberships[id] = q.Organization
	}
}

// Delete lifts the quarantine of organization org, if any.
func (s *QuarantineSet) Delete(org string) {
	if _, ok := s.orgs[org]; !ok {
		return
	}
	delete(s.orgs, org)
	for id, o := range s.resources {
		if o == org {
			delete(s.resources, id)
		}
	}
	for id, o := range s.memberships {
		if o == org {
			delete(s.memberships, id)
		}
	}
}

// Get returns the quarantine of organization org.
func (s *QuarantineSet) Get(org string) (Quarantine, bool) {
	q, ok := s.orgs[org]
	return q, ok
}

// Organizations returns the quarantined organizations, sorted.
func (s *QuarantineSet) Organizations() []string {
	out := make([]string, 0, len(s.orgs))
	for org := range s.orgs {
		out = append(out, org)
	}
	slices.Sort(out)
	return out
}

// Len returns the number of quarantined organizations.
func (s *QuarantineSet) Len() int { return len(s.orgs) }

// Route returns the quarantined organization ch is a change to, if it is
// one: a change of the organization itself, of one of its resources,
// memberships, roles or groups, a member of one of its groups, or an
// assignment of one of its memberships or on one of its resources. It records the ids such a change creates or
// deletes, so that later changes are recognised too. Changes are routed in
// the order they were made.
func (s *QuarantineSet) Route(ch Change) (org string, held bool) {
	del := ch.Op == OpDelete
	switch {
	case ch.Organization != nil:
		org = ch.Organization.ID
	case ch.Resource != nil:
		org = ch.Resource.OrganizationID
		if _, ok := s.orgs[org]; ok {
			if del {
				delete(s.resources, ch.Resource.ID)
			} else {
				s.resources[ch.Resource.ID] = org
			}
		}
	case ch.Membership != nil:
		org = ch.Membership.OrganizationID
		if del {
			// A membership's delete carries only its id.
			org = s.memberships[ch.Membership.ID]
			delete(s.memberships, ch.Membership.ID)
		} else if _, ok := s.orgs[org]; ok {
			s.memberships[ch.Membership.ID] = org
		}
	case ch.Role != nil:
		org = ch.Role.OrganizationID
	case ch.Assignment != nil:
		if org = s.memberships[ch.Assignment.MembershipID]; org == "" {
			org = s.resources[ch.Assignment.ResourceID]
		}
	case ch.Group != nil:
		org = ch.Group.OrganizationID
	case ch.GroupMember != nil:
		org = s.memberships[ch.GroupMember.MembershipID]
	}
	if _, ok := s.orgs[org]; !ok || org == "" {
		return "", false
	}
	return org, true
}

// String summarises q for logs: the organization, then its first problems.
func (q Quarantine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "organization %s: %d problems", q.Organization, len(q.Problems))
	for i, p := range q.Problems {
		if i == maxShownProblems {
			fmt.Fprintf(&b, "; and %d more", len(q.Problems)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Only returns a copy of d with the rows of the organizations keep accepts
// (by id) and the data every organization shares: what a node serving
// some of the organizations (a shard) holds. An assignment or group member
// goes with the organization of its membership or group. d is not
// modified; the result shares d's shared slices.
func (d *Dataset) Only(keep func(org string) bool) *Dataset {
	o := newOwners(d)
	principal := func(id string) bool { return keep(o.members[id]) }
	out := *d
	out.Organizations = slices.DeleteFunc(slices.Clone(d.Organizations), func(x Organization) bool { return !keep(x.ID) })
	out.Roles = slices.DeleteFunc(slices.Clone(d.Roles), func(x Role) bool { return x.OrganizationID != "" && !keep(x.OrganizationID) })
	out.Memberships = slices.DeleteFunc(slices.Clone(d.Memberships), func(x Membership) bool { return !keep(x.OrganizationID) })
	out.Resources = slices.DeleteFunc(slices.Clone(d.Resources), func(x Resource) bool { return !keep(x.OrganizationID) })
	out.Assignments = slices.DeleteFunc(slices.Clone(d.Assignments), func(x Assignment) bool { return !principal(x.Principal()) })
	out.Groups = slices.DeleteFunc(slices.Clone(d.Groups), func(x Group) bool { return !keep(x.OrganizationID) })
	out.GroupMembers = slices.DeleteFunc(slices.Clone(d.GroupMembers), func(x GroupMember) bool { return !principal(x.GroupID) })
	out.Quarantined = slices.DeleteFunc(slices.Clone(d.Quarantined), func(x Quarantine) bool { return !keep(x.Organization) })
	return &out
}
