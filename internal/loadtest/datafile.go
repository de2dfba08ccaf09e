package loadtest

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/trellis-authz/trellis/internal/model"
)

// WriteDataFile writes ds to w as a JSON data file that `trellis serve
// --data` reads back into an equal dataset (package datafile has no writer
// yet; this one lives here until it does). Resources and assignments are
// written with their ids, parents and assignment resources by id. The
// revision is not part of the format and is not written.
func WriteDataFile(w io.Writer, ds *model.Dataset) error {
	type resourceType struct {
		Slug        string   `json:"slug"`
		Name        string   `json:"name"`
		Description string   `json:"description,omitempty"`
		ParentTypes []string `json:"parent_types"`
	}
	type role struct {
		Slug           string   `json:"slug"`
		Name           string   `json:"name"`
		Description    string   `json:"description,omitempty"`
		ResourceType   string   `json:"resource_type"`
		OrganizationID string   `json:"organization_id,omitempty"`
		Permissions    []string `json:"permissions"`
	}
	type membership struct {
		ID             string   `json:"id"`
		UserID         string   `json:"user_id"`
		OrganizationID string   `json:"organization_id"`
		Status         string   `json:"status,omitempty"`
		Roles          []string `json:"roles"`
	}
	type resource struct {
		ID             string `json:"id"`
		OrganizationID string `json:"organization_id"`
		Type           string `json:"type"`
		ExternalID     string `json:"external_id"`
		Name           string `json:"name"`
		Description    string `json:"description,omitempty"`
		Parent         string `json:"parent,omitempty"`
	}
	type assignment struct {
		ID         string `json:"id"`
		Membership string `json:"membership,omitempty"`
		Group      string `json:"group,omitempty"`
		Role       string `json:"role"`
		Resource   string `json:"resource"`
	}
	type groupMember struct {
		Group      string `json:"group"`
		Membership string `json:"membership"`
	}
	doc := struct {
		MaxDepth      int                  `json:"max_depth,omitempty"`
		ResourceTypes []resourceType       `json:"resource_types"`
		Permissions   []model.Permission   `json:"permissions"`
		Roles         []role               `json:"roles"`
		Organizations []model.Organization `json:"organizations"`
		Memberships   []membership         `json:"memberships"`
		Resources     []resource           `json:"resources"`
		Assignments   []assignment         `json:"assignments"`
		Groups        []model.Group        `json:"groups,omitempty"`
		GroupMembers  []groupMember        `json:"group_members,omitempty"`
	}{MaxDepth: ds.MaxDepth, Permissions: ds.Permissions, Organizations: ds.Organizations, Groups: ds.Groups}
	for _, gm := range ds.GroupMembers {
		doc.GroupMembers = append(doc.GroupMembers, groupMember{gm.GroupID, gm.MembershipID})
	}
	for _, t := range ds.ResourceTypes {
		doc.ResourceTypes = append(doc.ResourceTypes, resourceType(t))
	}
	for _, r := range ds.Roles {
		doc.Roles = append(doc.Roles, role(r))
	}
	for _, m := range ds.Memberships {
		doc.Memberships = append(doc.Memberships, membership{m.ID, m.UserID, m.OrganizationID, m.Status, append([]string{}, m.RoleSlugs...)})
	}
	doc.Resources = make([]resource, len(ds.Resources))
	for i, r := range ds.Resources {
		doc.Resources[i] = resource{r.ID, r.OrganizationID, r.Type, r.ExternalID, r.Name, r.Description, r.ParentID}
	}
	doc.Assignments = make([]assignment, len(ds.Assignments))
	for i, a := range ds.Assignments {
		doc.Assignments[i] = assignment{a.ID, a.MembershipID, a.GroupID, a.RoleSlug, a.ResourceID}
	}
	bw := bufio.NewWriter(w)
	if err := json.NewEncoder(bw).Encode(doc); err != nil {
		return err
	}
	return bw.Flush()
}
