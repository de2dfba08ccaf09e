package index

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// Scope is the part of the data document a change can affect: the data of
// organizations Orgs, and, when Shared, data that every organization reads
// (permissions, environment roles, resource types) or whose effect cannot
// be bounded to organizations.
//
// What belongs to an organization O: orgs[O], lookup[O], the entries of
// O's resources (and their grants and children), of O's memberships (and
// their org_roles) and O's organization roles. The document keeps that
// partition because its sources do: a resource's parent, a membership's
// assignments and a membership's roles are of the same organization
// (model.Dataset.Validate), and ScopeOf reports a change that would cross
// it (a resource or membership changing organization, a parent in another
// organization) as Shared.
type Scope struct {
	Shared bool
	Orgs   []string
}

// Add adds o to s, keeping Orgs free of duplicates.
func (s *Scope) Add(o Scope) {
	s.Shared = s.Shared || o.Shared
	for _, org := range o.Orgs {
		s.addOrg(org)
	}
}

func (s *Scope) addOrg(org string) {
	if !slices.Contains(s.Orgs, org) {
		s.Orgs = append(s.Orgs, org)
	}
}

// ScopeOf returns the scope of ch. It must be called on the document as it
// is before Patch applies ch: a delete carries only keys, so the
// organization of the deleted entity is read from s, as is the previous
// organization of an upserted one. A change whose organization cannot be
// found there is Shared.
func ScopeOf(s Store, ch model.Change) (Scope, error) {
	var sc Scope
	switch {
	case ch.Organization != nil:
		sc.addOrg(ch.Organization.ID)
	case ch.Resource != nil:
		return resourceScope(s, ch)
	case ch.Membership != nil:
		old, found, err := MembershipOrganization(s, ch.Membership.ID)
		if err != nil {
			return Scope{}, err
		}
		switch {
		case ch.Op == model.OpDelete && !found:
			sc.Shared = true
		case ch.Op == model.OpDelete:
			sc.addOrg(old)
		case found && old != ch.Membership.OrganizationID:
			// Grants keep the role keys resolved in the old organization.
			sc.Shared = true
		default:
			sc.addOrg(ch.Membership.OrganizationID)
		}
	case ch.Assignment != nil:
		// An assignment is a grant on its resource; the membership's entry
		// lists its anchors.
		a := ch.Assignment
		rorg, rok, err := ResourceOrganization(s, a.ResourceID)
		if err != nil {
			return Scope{}, err
		}
		morg, mok, err := MembershipOrganization(s, a.MembershipID)
		if err != nil {
			return Scope{}, err
		}
		if rok {
			sc.addOrg(rorg)
		}
		if mok {
			sc.addOrg(morg)
		}
		sc.Shared = !rok && !mok || rok && mok && rorg != morg
	case ch.Role != nil:
		if ch.Role.OrganizationID == "" {
			sc.Shared = true
		} else {
			sc.addOrg(ch.Role.OrganizationID)
		}
	case ch.Permission != nil, ch.ResourceType != nil:
		sc.Shared = true
	default:
		return Scope{}, fmt.Errorf("index: change %q names no entity", ch.Op)
	}
	return sc, nil
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
			sc.addOrg(r.OrganizationID)
		}
		if found {
			sc.addOrg(old)
		}
		sc.Shared = len(sc.Orgs) != 1
		return sc, nil
	}
	sc.addOrg(r.OrganizationID)
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
