package workos

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/trellis-authz/trellis/internal/authz"
)

// Policy reason codes that name an entity of the request that does not
// exist. The WorkOS routes answer them 404, as WorkOS does, instead of a
// deny or an empty list; any other reason keeps its deny.
var notFoundReasons = map[string]bool{
	"unknown_membership":   true,
	"unknown_resource":     true,
	"unknown_organization": true,
}

// reasonErr returns a 404 error for a policy reason naming a missing
// entity, else nil.
func reasonErr(reason map[string]any) error {
	code, _ := reason["code"].(string)
	if !notFoundReasons[code] {
		return nil
	}
	msg, _ := reason["message"].(string)
	if msg == "" {
		msg = code
	}
	return &notFoundError{msg: msg}
}

// notFoundError is a 404 whose message comes from the policy.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return ErrNotFound }

// decided sets the revision a decision was evaluated at.
func decided(w http.ResponseWriter, ans authz.Answer) {
	w.Header().Set(HeaderRevision, strconv.FormatInt(ans.Revision, 10))
}

// discoveryQuery reads the query of a discovery list: params, the
// pagination parameters and the required permission_slug, reported in that
// order. The policy pages by ascending id after a cursor, so "after" and
// "limit" are honoured, "order" is accepted (the SDK always sends it) but
// the order is ascending id, and "before" is rejected rather than answered
// wrongly.
func discoveryQuery(r *http.Request, params ...string) (map[string]string, page, error) {
	filters := slices.Concat([]string{"permission_slug"}, params)
	q, err := query(r, slices.Concat(filters, paginationParams)...)
	if err != nil {
		return nil, page{}, err
	}
	p, err := parsePage(q, cursorQuery(r, q, filters))
	if err != nil {
		return nil, page{}, err
	}
	if p.before != "" {
		return nil, page{}, badRequest("before", "discovery lists page forward only: use after")
	}
	if q["permission_slug"] == "" {
		return nil, page{}, badRequest("permission_slug", "is required")
	}
	return q, p, nil
}

// discovered answers a discovery list of page p: it loads the page's ids
// with get (the store is the head, so an entity deleted since the decision
// is left out) and writes them as out of each, with the decision's
// revision and, when more follow, the cursor after the last id.
func discovered[T, J any](w http.ResponseWriter, ans authz.Answer, p page, ids []string, more bool, get func([]string) ([]T, error), out func(T) J) error {
	items, err := get(ids)
	if err != nil {
		return err
	}
	var md listMetadata
	if more && len(ids) > 0 {
		after := p.cursors.Encode(ids[len(ids)-1])
		md.After = &after
	}
	decided(w, ans)
	writeJSON(w, http.StatusOK, newList(mapSlice(items, out), md))
	return nil
}

type checkRequest struct {
	PermissionSlug     string `json:"permission_slug"`
	ResourceID         string `json:"resource_id"`
	ResourceExternalID string `json:"resource_external_id"`
	ResourceTypeSlug   string `json:"resource_type_slug"`
}

func (h *Handler) check(w http.ResponseWriter, r *http.Request) error {
	var req checkRequest
	if _, err := h.decode(w, r, &req); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	if err := required("permission_slug", req.PermissionSlug); err != nil {
		return err
	}
	ref, err := refFromFields("resource_", req.ResourceID, req.ResourceExternalID, req.ResourceTypeSlug, "", false)
	if err != nil {
		return err
	}
	cons, err := h.consistency(r)
	if err != nil {
		return err
	}
	// A resource by external id is looked up in the membership's
	// organization (the policy's default when no organization is given).
	d, ans, err := h.cfg.Decider.Check(r.Context(), authz.Subject{MembershipID: r.PathValue("om")},
		authz.Check{Permission: req.PermissionSlug, Resource: authzRef(ref)}, cons)
	if err != nil {
		return err
	}
	if err := reasonErr(d.Reason); err != nil {
		return err
	}
	decided(w, ans)
	writeJSON(w, http.StatusOK, map[string]bool{"authorized": d.Allowed})
	return nil
}

func authzRef(r ResourceRef) authz.ResourceRef {
	return authz.ResourceRef{ID: r.ID, Type: r.TypeSlug, ExternalID: r.ExternalID, OrganizationID: r.OrganizationID}
}

func (h *Handler) listResourcesForMembership(w http.ResponseWriter, r *http.Request) error {
	q, p, err := discoveryQuery(r, "parent_resource_id", "parent_resource_external_id", "parent_resource_type_slug")
	if err != nil {
		return err
	}
	parent, err := refFromFields("parent_resource_", q["parent_resource_id"], q["parent_resource_external_id"], q["parent_resource_type_slug"], "", false)
	if err != nil {
		return err
	}
	cons, err := h.consistency(r)
	if err != nil {
		return err
	}
	pref := authzRef(parent)
	pg, ans, err := h.cfg.Decider.ListResources(r.Context(), authz.Subject{MembershipID: r.PathValue("om")},
		authz.ListRequest{Permission: q["permission_slug"], Parent: &pref, After: p.after, Limit: p.limit}, cons)
	if err != nil {
		return err
	}
	if err := reasonErr(pg.Reason); err != nil {
		return err
	}
	// The policy answered at a revision the store has reached (the store is
	// the head); a resource deleted since is left out.
	return discovered(w, ans, p, pg.IDs, pg.HasMore, func(ids []string) ([]Resource, error) {
		return h.cfg.Store.GetResources(r.Context(), ids)
	}, resourceOut)
}

func (h *Handler) listMembershipsForResource(w http.ResponseWriter, r *http.Request) error {
	q, p, err := discoveryQuery(r, "assignment")
	if err != nil {
		return err
	}
	direct := true
	switch q["assignment"] {
	case "", "direct":
	case "indirect":
		direct = false
	default:
		return badRequest("assignment", "must be direct or indirect, not %q", q["assignment"])
	}
	cons, err := h.consistency(r)
	if err != nil {
		return err
	}
	pg, ans, err := h.cfg.Decider.ListMemberships(r.Context(), authz.MembersRequest{
		Permission: q["permission_slug"], Resource: authzRef(pathResource(r)), Direct: direct, After: p.after, Limit: p.limit,
	}, cons)
	if err != nil {
		return err
	}
	if err := reasonErr(pg.Reason); err != nil {
		return err
	}
	return discovered(w, ans, p, pg.IDs, pg.HasMore, func(ids []string) ([]Membership, error) {
		return h.cfg.Store.GetMemberships(r.Context(), ids)
	}, membershipOut)
}

func (h *Handler) effectivePermissions(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	cons, err := h.consistency(r)
	if err != nil {
		return err
	}
	perms, ans, err := h.cfg.Decider.EffectivePermissions(r.Context(), authz.Subject{MembershipID: r.PathValue("om")},
		authzRef(pathResource(r)), cons)
	if err != nil {
		return err
	}
	if err := reasonErr(perms.Reason); err != nil {
		return err
	}
	all, err := h.cfg.Store.GetPermissions(r.Context(), perms.Permissions)
	if err != nil {
		return err
	}
	// The policy sorts by slug; the whole list is in hand, so every
	// pagination option is honoured, keyed by slug.
	items, md, err := sliceList(all, p, func(p Permission) string { return p.Slug })
	if err != nil {
		return err
	}
	decided(w, ans)
	writeJSON(w, http.StatusOK, newList(mapSlice(items, permissionOut), md))
	return nil
}
