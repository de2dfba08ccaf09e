package workos

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/trellis-authz/trellis/internal/model"
)

// maxReplaceEntries bounds the body of PUT …/role_assignments (WorkOS's
// limit).
const maxReplaceEntries = 100

// groupRoutes registers the routes of groups, their members and their role
// assignments, as SDK 11.0.0 calls them (workos.groups and the group
// methods of workos.authorization).
func (h *Handler) groupRoutes() {
	const groups = "/organizations/{org}/groups"
	h.handle("POST "+groups, h.createGroup)
	// GET /organizations/{org}/groups would clash with GET
	// /organizations/external_id/{external_id} in ServeMux: one route
	// serves both, telling them apart by the literals "external_id" and
	// "groups".
	h.handle("GET /organizations/{org}/{external_id}", h.organizationSubresource)
	h.handle("GET "+groups+"/{group}", h.getGroup)
	h.handle("PATCH "+groups+"/{group}", h.updateGroup)
	h.handle("DELETE "+groups+"/{group}", h.deleteGroup)
	h.handle("POST "+groups+"/{group}/organization-memberships", h.addGroupMember)
	h.handle("GET "+groups+"/{group}/organization-memberships", h.listGroupMembers)
	h.handle("DELETE "+groups+"/{group}/organization-memberships/{om}", h.removeGroupMember)
	h.handle("GET /user_management/organization_memberships/{om}/groups", h.listMembershipGroups)

	const gra = "/authorization/groups/{group}/role_assignments"
	h.handle("POST "+gra, h.createGroupAssignment)
	h.handle("PUT "+gra, h.replaceGroupAssignments)
	h.handle("GET "+gra, h.listGroupAssignments)
	h.handle("DELETE "+gra, h.removeGroupRole)
	h.handle("GET "+gra+"/{id}", h.getGroupAssignment)
	h.handle("DELETE "+gra+"/{id}", h.removeGroupAssignment)
}

// organizationSubresource serves GET /organizations/external_id/{id} and
// GET /organizations/{org}/groups.
func (h *Handler) organizationSubresource(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.PathValue("org") == "external_id":
		return h.getOrganizationByExternalID(w, r)
	case r.PathValue("external_id") == "groups":
		return h.listGroups(w, r)
	}
	h.noRoute(w, r)
	return nil
}

type groupRequest struct {
	Name        optString `json:"name"`
	Description optString `json:"description"`
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) error {
	var req groupRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("name", strings.TrimSpace(req.Name.Value)); err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, groupOut)(h.cfg.Store.CreateGroup(r.Context(), r.PathValue("org"),
		GroupInput{Name: req.Name.Value, Description: req.Description.Value}))
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, groupKey, groupOut, func(o ListOptions) ([]Group, error) {
		return h.cfg.Store.ListGroups(r.Context(), r.PathValue("org"), o)
	})
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, groupOut)(h.cfg.Store.GetGroup(r.Context(), r.PathValue("org"), r.PathValue("group")))
}

// updateGroup changes the fields the body names. SDK 11.0.0's updateGroup
// always sends description, null when the caller left it out; null is
// taken as "unchanged" rather than "clear", so that updating a name keeps
// the description (send "" to clear it).
func (h *Handler) updateGroup(w http.ResponseWriter, r *http.Request) error {
	var req groupRequest
	if err := h.patchBody(w, r, &req); err != nil {
		return err
	}
	var u GroupUpdate
	if req.Name.Set {
		if err := required("name", strings.TrimSpace(req.Name.Value)); err != nil {
			return err
		}
		u.Name = req.Name.ptr()
	}
	if req.Description.Set && !req.Description.Null {
		u.Description = req.Description.ptr()
	}
	return written(h, r, w, http.StatusOK, groupOut)(h.cfg.Store.UpdateGroup(r.Context(), r.PathValue("org"), r.PathValue("group"), u))
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteGroup(r.Context(), r.PathValue("org"), r.PathValue("group")))
}

func (h *Handler) addGroupMember(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		MembershipID string `json:"organization_membership_id"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("organization_membership_id", req.MembershipID); err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, groupOut)(h.cfg.Store.AddGroupMember(r.Context(),
		r.PathValue("org"), r.PathValue("group"), req.MembershipID))
}

func (h *Handler) removeGroupMember(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.RemoveGroupMember(r.Context(), r.PathValue("org"), r.PathValue("group"), r.PathValue("om")))
}

func (h *Handler) listGroupMembers(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, membershipKey, membershipOut, func(o ListOptions) ([]Membership, error) {
		return h.cfg.Store.ListGroupMembers(r.Context(), r.PathValue("org"), r.PathValue("group"), o)
	})
}

func (h *Handler) listMembershipGroups(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, groupKey, groupOut, func(o ListOptions) ([]Group, error) {
		return h.cfg.Store.ListMembershipGroups(r.Context(), r.PathValue("om"), o)
	})
}

// groupAssignmentRequest is a role on a resource for a group: the resource
// fields left out mean the organization itself (its root resource).
type groupAssignmentRequest assignmentRequest

func (a groupAssignmentRequest) parse(field string) (GroupAssignmentInput, error) {
	if err := required(field+"role_slug", a.RoleSlug); err != nil {
		return GroupAssignmentInput{}, err
	}
	ref, err := refFromFields(field+"resource_", a.ResourceID, a.ResourceExternalID, a.ResourceTypeSlug, "", true)
	return GroupAssignmentInput{RoleSlug: a.RoleSlug, Resource: ref}, err
}

// groupAssignmentBody reads the body of a group role assignment request.
func (h *Handler) groupAssignmentBody(w http.ResponseWriter, r *http.Request) (GroupAssignmentInput, error) {
	var req groupAssignmentRequest
	if err := h.body(w, r, &req); err != nil {
		return GroupAssignmentInput{}, err
	}
	return req.parse("")
}

func (h *Handler) createGroupAssignment(w http.ResponseWriter, r *http.Request) error {
	in, err := h.groupAssignmentBody(w, r)
	if err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, groupAssignmentOut)(h.cfg.Store.CreateGroupAssignment(r.Context(), r.PathValue("group"), in))
}

func (h *Handler) replaceGroupAssignments(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RoleAssignments *[]groupAssignmentRequest `json:"role_assignments"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if req.RoleAssignments == nil {
		return Invalid("role_assignments", model.CodeInvalid, "is required (an empty list removes every assignment)")
	}
	entries := *req.RoleAssignments
	if len(entries) > maxReplaceEntries {
		return Invalid("role_assignments", model.CodeInvalid, "lists %d assignments; at most %d", len(entries), maxReplaceEntries)
	}
	in := make([]GroupAssignmentInput, len(entries))
	for i, e := range entries {
		var err error
		if in[i], err = e.parse("role_assignments[" + strconv.Itoa(i) + "]."); err != nil {
			return err
		}
	}
	return written(h, r, w, http.StatusOK, func(as []GroupAssignment) list[groupAssignmentJSON] {
		return newList(mapSlice(as, groupAssignmentOut), listMetadata{})
	})(h.cfg.Store.ReplaceGroupAssignments(r.Context(), r.PathValue("group"), in))
}

func (h *Handler) listGroupAssignments(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, groupAssignmentKey, groupAssignmentOut, func(o ListOptions) ([]GroupAssignment, error) {
		return h.cfg.Store.ListGroupAssignments(r.Context(), r.PathValue("group"), o)
	})
}

func (h *Handler) getGroupAssignment(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, groupAssignmentOut)(h.cfg.Store.GetGroupAssignment(r.Context(), r.PathValue("group"), r.PathValue("id")))
}

func (h *Handler) removeGroupRole(w http.ResponseWriter, r *http.Request) error {
	in, err := h.groupAssignmentBody(w, r)
	if err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteGroupAssignmentByRole(r.Context(), r.PathValue("group"), in))
}

func (h *Handler) removeGroupAssignment(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteGroupAssignment(r.Context(), r.PathValue("group"), r.PathValue("id")))
}
