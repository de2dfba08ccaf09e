package index

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Scope is what a change can alter of the data a check reads: the data of
// organizations Orgs and of memberships Memberships, and, when Shared, data
// that every check reads (permissions, environment roles, resource types)
// or whose effect cannot be bounded so.
//
// A check by membership M (or a token naming M) about resource R reads
// (policies/trellis): the permission and roles; R's entry, its ancestors'
// and, for a reference by external id, lookup[O] — all of R's organization
// O — and, of the grants on those resources, only M's; and M's entry. So
// the data of an organization O is orgs[O], lookup[O], its resources'
// entries and children and its organization roles; the data of a
// membership M is memberships[M], org_roles[M], member_groups[M] and
// grants[·][M]; a group's entry and grants[·][G] are its organization's
// (a group belongs to one organization, and its members to it). That holds
// because the sources keep an organization's resources in one tree
// (model.Dataset.Validate): ScopeOf reports a change that would break it (a
// resource or membership changing organization, a parent in another
// organization) as Shared.
//
// Scopes are exact for checks and batches, the answers the decision cache
// keeps; the list entrypoints read more (a membership's anchors, which a
// resource delete edits) and are not covered.
type Scope struct {
	Shared      bool
	Orgs        []string
	Memberships []string
}

// Add adds o to s, keeping the lists free of duplicates.
func (s *Scope) Add(o Scope) {
	s.Shared = s.Shared || o.Shared
	for _, org := range o.Orgs {
		s.Orgs = with1(s.Orgs, org)
	}
	for _, om := range o.Memberships {
		s.Memberships = with1(s.Memberships, om)
	}
}

func with1(list []string, x string) []string {
	if slices.Contains(list, x) {
		return list
	}
	return append(list, x)
}

// ScopeOf returns the scope of ch. It must be called on the document as it
// is before Patch applies ch: a delete carries only keys, so the
// organization of a deleted resource is read from s, as is the previous
// organization of an upserted resource or membership.
func ScopeOf(s Store, ch model.Change) (Scope, error) {
	var sc Scope
	switch {
	case ch.Organization != nil:
		sc.Orgs = []string{ch.Organization.ID}
	case ch.Resource != nil:
		return resourceScope(s, ch)
	case ch.Membership != nil:
		m := ch.Membership
		sc.Memberships = []string{m.ID}
		if ch.Op == model.OpUpsert {
			old, found, err := MembershipOrganization(s, m.ID)
			if err != nil {
				return Scope{}, err
			}
			// Grants keep the role keys resolved in the old organization.
			sc.Shared = found && old != m.OrganizationID
		}
	case ch.Assignment != nil && ch.Assignment.MembershipID == "" && ch.Assignment.GroupID != "":
		// A group's grant is read by checks of every member: its
		// organization's, not a scan of its members.
		return groupScope(s, ch.Assignment.GroupID, "", ch.Assignment.ResourceID)
	case ch.Assignment != nil:
		// A grant is read only by checks of its membership.
		sc.Memberships = []string{ch.Assignment.MembershipID}
	case ch.Group != nil:
		// Its name is in its members' explanations, its grants in their
		// decisions.
		return groupScope(s, ch.Group.ID, ch.Group.OrganizationID, "")
	case ch.GroupMember != nil:
		// A membership's groups are read only by checks of the membership.
		sc.Memberships = []string{ch.GroupMember.MembershipID}
	case ch.Role != nil:
		if ch.Role.OrganizationID == "" {
			sc.Shared = true
		} else {
			sc.Orgs = []string{ch.Role.OrganizationID}
		}
	case ch.Permission != nil, ch.ResourceType != nil:
		sc.Shared = true
	default:
		return Scope{}, fmt.Errorf("index: change %q names no entity", ch.Op)
	}
	return sc, nil
}

// groupScope is the scope of a change to group g's data: its
// organization, as s holds it, else org, else resource rid's; Shared when
// none is known.
func groupScope(s Store, g, org, rid string) (Scope, error) {
	v, ok, err := s.Get(keyGroups, g, "org")
	if err != nil {
		return Scope{}, err
	}
	if held, isStr := v.(ast.String); ok && isStr {
		if org != "" && org != string(held) {
			return Scope{Shared: true}, nil // a group changing organization: refused by the store
		}
		org = string(held)
	}
	if org == "" {
		if org, ok, err = ResourceOrganization(s, rid); err != nil || !ok {
			return Scope{Shared: true}, err
		}
	}
	return Scope{Orgs: []string{org}}, nil
}

func resourceScope(s Store, ch model.Change) (Scope, error) {
	r := ch.Resource
	var sc Scope
	old, found, err := ResourceOrganization(s, r.ID)
	if err != nil {
		return Scope{}, err
	}
	if ch.Op == model.OpDelete {
		// Sources name the organization of a deleted resource, but the
		// store is the authority on where its entries are.
		if r.OrganizationID != "" {
			sc.Orgs = with1(sc.Orgs, r.OrganizationID)
		}
		if found {
			sc.Orgs = with1(sc.Orgs, old)
		}
		sc.Shared = len(sc.Orgs) != 1
		return sc, nil
	}
	sc.Orgs = []string{r.OrganizationID}
	if found && old != r.OrganizationID {
		sc.Shared = true
	}
	if r.ParentID != "" {
		porg, pfound, err := ResourceOrganization(s, r.ParentID)
		if err != nil {
			return Scope{}, err
		}
		if pfound && porg != r.OrganizationID {
			sc.Shared = true // ancestors of another organization
		}
	}
	return sc, nil
}

// ResourceOrganization returns the organization of resource rid as s holds
// it, and whether s holds the resource.
func ResourceOrganization(s Store, rid string) (string, bool, error) {
	if rid == "" {
		return "", false, nil
	}
	e, ok, err := patcher{s}.resource(rid)
	return e.org, ok, err
}

// MembershipOrganization returns the organization of membership om as s
// holds it, and whether s holds the membership.
func MembershipOrganization(s Store, om string) (string, bool, error) {
	if om == "" {
		return "", false, nil
	}
	v, ok, err := s.Get(keyMemberships, om, "org")
	if err != nil || !ok {
		return "", false, err
	}
	org, isStr := v.(ast.String)
	if !isStr {
		return "", false, fmt.Errorf("index: memberships[%s].org is %v, not a string", om, v)
	}
	return string(org), true, nil
}
