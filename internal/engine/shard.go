package engine

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
)

// held returns the changes of the organizations the engine holds
// (Options.Holds) and every change to the shared data (resource types,
// permissions, environment roles), in order: all of them without Holds.
// A change names its organization, or is found in it through the data
// (view) or an earlier change of the batch: a membership, group or
// resource by its id, an assignment or group member by its membership or
// group. A
// change about an entity the engine has never held (another shard's)
// is left out.
func (e *Engine) held(view index.TxnStore, changes []model.Change) ([]model.Change, error) {
	if e.holds == nil {
		return changes, nil
	}
	batch := map[string]string{} // membership or group id → organization, upserted in this batch
	orgOf := func(kind, id string) (string, error) {
		if org, ok := batch[id]; ok {
			return org, nil
		}
		field := "org" // of a membership or group; a resource is [org, type, ext, anc]
		if kind == "resources" {
			field = "0"
		}
		v, ok, err := view.Get(kind, id, field)
		if err != nil || !ok {
			return "", err
		}
		s, ok := v.(ast.String)
		if !ok {
			return "", fmt.Errorf("engine: %s/%s/org is %T", kind, id, v)
		}
		return string(s), nil
	}
	principal := func(id string) (string, error) {
		if org, err := orgOf("memberships", id); org != "" || err != nil {
			return org, err
		}
		return orgOf("groups", id)
	}
	var kept []model.Change
	for _, ch := range changes {
		var org string
		var err error
		switch {
		case ch.Organization != nil:
			org = ch.Organization.ID
		case ch.Role != nil:
			org = ch.Role.OrganizationID // "" for an environment role: shared
		case ch.Resource != nil && ch.Resource.OrganizationID == "": // a delete by id
			org, err = orgOf("resources", ch.Resource.ID)
		case ch.Resource != nil:
			org = ch.Resource.OrganizationID
		case ch.Membership != nil && ch.Op == model.OpUpsert:
			org = ch.Membership.OrganizationID
			batch[ch.Membership.ID] = org
		case ch.Membership != nil:
			org, err = orgOf("memberships", ch.Membership.ID)
		case ch.Group != nil && ch.Op == model.OpUpsert:
			org = ch.Group.OrganizationID
			batch[ch.Group.ID] = org
		case ch.Group != nil:
			org, err = orgOf("groups", ch.Group.ID)
		case ch.Assignment != nil:
			org, err = principal(ch.Assignment.Principal())
		case ch.GroupMember != nil:
			org, err = principal(ch.GroupMember.GroupID)
		default: // resource types, permissions
			kept = append(kept, ch)
			continue
		}
		if err != nil {
			return nil, err
		}
		shared := ch.Role != nil && org == ""
		if shared || org != "" && e.holds(org) {
			kept = append(kept, ch)
		}
	}
	return kept, nil
}
