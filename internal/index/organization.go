package index

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/model"
)

// These functions replace one organization's part of a document in place,
// for a data source that quarantines an organization, or re-reads one and
// swaps it in, while every other organization keeps being served. They
// touch only the organization's keys, but find its memberships, roles and
// quarantine entries by scanning those collections.

// RemoveOrganization deletes every entry of organization org from the
// document in s — its root and resources with their lookups, children and
// grants, its memberships and their organization roles, its own roles, and
// its quarantine entries — and returns the ids of the resources and
// memberships it held there, as the organization's entries or as its
// quarantine entries. An organization the document does not hold is not an
// error.
func RemoveOrganization(s Store, org string) (resources, memberships []string, err error) {
	p := patcher{s}
	// Scan first: scans must precede writes under the scanned paths.
	ownedBy := func(key string) ([]string, error) {
		var ids []string
		err := s.Scan(func(id string, v ast.Value) bool {
			if owner, ok := v.(ast.String); ok && string(owner) == org {
				ids = append(ids, id)
			}
			return true
		}, key)
		return ids, err
	}
	heldResources, err := ownedBy(keyQuarantinedResources)
	if err != nil {
		return nil, nil, err
	}
	heldMemberships, err := ownedBy(keyQuarantinedMemberships)
	if err != nil {
		return nil, nil, err
	}
	err = s.Scan(func(om string, v ast.Value) bool {
		if obj, ok := v.(ast.Object); ok {
			if owner := obj.Get(ast.InternedTerm("org")); owner != nil && owner.Value.Compare(ast.String(org)) == 0 {
				memberships = append(memberships, om)
			}
		}
		return true
	}, keyMemberships)
	if err != nil {
		return nil, nil, err
	}
	var groups []string
	err = s.Scan(func(g string, v ast.Value) bool {
		if obj, ok := v.(ast.Object); ok {
			if owner := obj.Get(ast.InternedTerm("org")); owner != nil && owner.Value.Compare(ast.String(org)) == 0 {
				groups = append(groups, g)
			}
		}
		return true
	}, keyGroups)
	if err != nil {
		return nil, nil, err
	}
	var roles []string
	err = s.Scan(func(key string, _ ast.Value) bool {
		if strings.HasPrefix(key, org+"/") {
			roles = append(roles, key)
		}
		return true
	}, keyRoles)
	if err != nil {
		return nil, nil, err
	}

	if v, ok, err := s.Get(keyOrgs, org, "root"); err != nil {
		return nil, nil, err
	} else if ok {
		if resources, err = p.deleteSubtree(string(v.(ast.String))); err != nil {
			return nil, nil, err
		}
	}
	for _, path := range [][]string{{keyLookup, org}, {keyOrgs, org}, {keyOrgAttributes, org}, {keyQuarantined, org}} {
		if err := s.Delete(path...); err != nil {
			return nil, nil, err
		}
	}
	for _, g := range groups {
		if err := p.deleteGroup(g); err != nil {
			return nil, nil, err
		}
	}
	for _, om := range memberships {
		if err := p.deleteMembership(om); err != nil {
			return nil, nil, err
		}
	}
	for _, key := range roles {
		if err := s.Delete(keyRoles, key); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range heldResources {
		if err := s.Delete(keyQuarantinedResources, id); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range heldMemberships {
		if err := s.Delete(keyQuarantinedMemberships, id); err != nil {
			return nil, nil, err
		}
	}
	return append(resources, heldResources...), append(memberships, heldMemberships...), nil
}

// PutQuarantine records q in the document in s: the organization as
// quarantined, and each of its resource and membership ids as its. The
// organization's own entries must be gone (RemoveOrganization).
func PutQuarantine(s Store, q model.Quarantine) error {
	org := ast.String(q.Organization)
	if err := s.Put(ast.Boolean(true), keyQuarantined, q.Organization); err != nil {
		return err
	}
	for _, id := range q.Resources {
		if err := s.Put(org, keyQuarantinedResources, id); err != nil {
			return err
		}
	}
	for _, id := range q.Memberships {
		if err := s.Put(org, keyQuarantinedMemberships, id); err != nil {
			return err
		}
	}
	return nil
}

// MergeOrganization writes organization org's part of sub, a document
// Build made from a dataset holding that organization (and the data every
// organization shares), into the document in s: its root, resources,
// lookups, children, grants, memberships, organization roles and own
// roles. The organization's previous entries must be gone
// (RemoveOrganization); the shared entries of sub (environment roles,
// permissions, revision) are not written.
func MergeOrganization(s Store, org string, sub map[string]any) error {
	section := func(name string) map[string]any {
		m, _ := sub[name].(map[string]any)
		return m
	}
	put := func(v any, path ...string) error {
		av, err := ast.InterfaceToValue(v)
		if err != nil {
			return fmt.Errorf("index: convert %v: %w", path, err)
		}
		return s.Put(av, path...)
	}
	o, ok := section(keyOrgs)[org]
	if !ok {
		return nil // the organization does not exist (any more)
	}
	if err := put(o, keyOrgs, org); err != nil {
		return err
	}
	if err := put(section(keyLookup)[org], keyLookup, org); err != nil {
		return err
	}
	if a, ok := section(keyOrgAttributes)[org]; ok {
		if err := put(a, keyOrgAttributes, org); err != nil {
			return err
		}
	}
	for _, name := range []string{keyResources, keyChildren, keyGrants, keyAttributes, keyMemberships, keyOrgRoles, keyGroups, keyMemberGroups} {
		for key, v := range section(name) {
			if err := put(v, name, key); err != nil {
				return err
			}
		}
	}
	for key, v := range section(keyRoles) {
		if strings.HasPrefix(key, org+"/") {
			if err := put(v, keyRoles, key); err != nil {
				return err
			}
		}
	}
	return nil
}
