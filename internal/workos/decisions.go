package workos

import (
	"encoding/json"
	"errors"
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
// pagination parameters, context and the required permission_slug,
// reported in that order. Every pagination parameter is honoured (see
// discovered).
func discoveryQuery(r *http.Request, params ...string) (map[string]string, page, error) {
	q, p, err := decisionQuery(r, slices.Concat([]string{"permission_slug"}, params)...)
	if err != nil {
		return nil, page{}, err
	}
	if q["permission_slug"] == "" {
		return nil, page{}, badRequest("permission_slug", "is required")
	}
	return q, p, nil
}

// decisionQuery is pageQuery for a list the policy decides: filters, the
// pagination parameters and context (checkContext). The cursors are bound
// to the filters, not to the context.
func decisionQuery(r *http.Request, filters ...string) (map[string]string, page, error) {
	q, err := query(r, slices.Concat(filters, paginationParams, []string{"context"})...)
	if err != nil {
		return nil, page{}, err
	}
	p, err := parsePage(q, cursorQuery(r, q, filters))
	if err != nil {
		return nil, page{}, err
	}
	if err := checkContext(q); err != nil {
		return nil, page{}, err
	}
	return q, p, nil
}

// checkContext checks the query parameter context of the routes that
// decide by GET, a Trellis extension (the SDK sends none): when given, the
// URL-encoded text of a JSON object, input.context of the decision for
// extensions, as the check route's context field and POST
// /v1/list-resources' context. Anything else (null too) is the 400 of
// context. Like the native API's, it is no part of a list's cursors: they
// are positions, valid in the list of any context.
func checkContext(q map[string]string) error {
	raw, ok := q["context"]
	if !ok {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		return badRequest("context", `must be a URL-encoded JSON object, such as {"network":"office"}`)
	}
	return nil
}

// policyPage answers page p of a discovery list with one policy page (list
// asks for it): the ids in the order asked for, after or before the
// cursor's position, with the list's metadata and the policy's answer. A
// reason naming a missing entity is its 404, an unknown permission the 422
// of permission_slug.
func policyPage(p page, list func(ListOptions) (authz.Page, authz.Answer, error)) ([]string, listMetadata, authz.Answer, error) {
	var ans authz.Answer
	type listed struct{ id, pos string }
	items, md, err := paginate(p, func(l listed) string { return l.pos }, func(o ListOptions) ([]listed, error) {
		pg, a, err := list(o)
		if err != nil {
			return nil, err
		}
		if err := listReasonErr(pg.Reason); err != nil {
			return nil, err
		}
		ans = a
		out := make([]listed, len(pg.IDs))
		for i, id := range pg.IDs {
			out[i] = listed{id, pg.Positions[i]}
		}
		return out, nil
	})
	return mapSlice(items, func(l listed) string { return l.id }), md, ans, err
}

// discovered writes a discovery page: ids, each loaded with get (the
// policy answered at a revision the store has reached, the store being
// the head, so an entity deleted since is left out) and written as out,
// with the list's metadata and the decision's revision.
func discovered[T, J any](w http.ResponseWriter, ans authz.Answer, md listMetadata, ids []string, get func([]string) ([]T, error), out func(T) J) error {
	items, err := get(ids)
	if err != nil {
		return err
	}
	decided(w, ans)
	writeJSON(w, http.StatusOK, newList(mapSlice(items, out), md))
	return nil
}

// listReasonErr is reasonErr for a discovery list, where an unknown
// permission is WorkOS's 422 rather than an empty list.
func listReasonErr(reason map[string]any) error {
	if code, _ := reason["code"].(string); code == "unknown_permission" {
		msg, _ := reason["message"].(string)
		return &ValidationError{Problems: []Problem{{Field: "permission_slug", Code: "unknown_permission", Message: msg}}}
	}
	return reasonErr(reason)
}

type checkRequest struct {
	PermissionSlug     string `json:"permission_slug"`
	ResourceID         string `json:"resource_id"`
	ResourceExternalID string `json:"resource_external_id"`
	ResourceTypeSlug   string `json:"resource_type_slug"`
	// Context is a Trellis extension field (the SDK sends none): the
	// request's context for extensions, as on POST /v1/check.
	Context json.RawMessage `json:"context"`
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
	d, ans, err := h.cfg.Decider.Check(r.Context(), authz.Subject{MembershipID: r.PathValue("om"), Context: string(req.Context)},
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
	// The resources listed are of the permission's resource type, under
	// the parent at any depth (WorkOS: a workspace-admin role holding
	// project:edit lists the workspace's projects). An unknown permission
	// is left to the policy, whose unknown_permission is the 422, after
	// not_ready and organization_unavailable.
	perm, err := h.cfg.Store.GetPermission(r.Context(), q["permission_slug"])
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	// One policy page per request, in tree order: the page after (or, with
	// before, the page before) the cursor's position.
	pref := authzRef(parent)
	ids, md, ans, err := policyPage(p, func(o ListOptions) (authz.Page, authz.Answer, error) {
		return h.cfg.Decider.ListResources(r.Context(), authz.Subject{MembershipID: r.PathValue("om"), Context: q["context"]},
			authz.ListRequest{Permission: q["permission_slug"], ResourceType: perm.ResourceTypeSlug, Parent: &pref,
				After: o.After, Descending: o.Descending, Limit: o.Limit}, cons)
	})
	if err != nil {
		return err
	}
	// An unknown membership is a 404, as for a check, not an empty list.
	if _, err := h.cfg.Store.GetMembership(r.Context(), r.PathValue("om")); err != nil {
		return err
	}
	return discovered(w, ans, md, ids, func(ids []string) ([]Resource, error) {
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
	// One policy page per request, by id.
	ids, md, ans, err := policyPage(p, func(o ListOptions) (authz.Page, authz.Answer, error) {
		return h.cfg.Decider.ListMemberships(r.Context(), authz.MembersRequest{
			Permission: q["permission_slug"], Resource: authzRef(pathResource(r)), Direct: direct,
			After: o.After, Descending: o.Descending, Limit: o.Limit, Context: q["context"],
		}, cons)
	})
	if err != nil {
		return err
	}
	return discovered(w, ans, md, ids, func(ids []string) ([]Membership, error) {
		return h.cfg.Store.GetMemberships(r.Context(), ids)
	}, membershipOut)
}

func (h *Handler) effectivePermissions(w http.ResponseWriter, r *http.Request) error {
	q, p, err := decisionQuery(r)
	if err != nil {
		return err
	}
	cons, err := h.consistency(r)
	if err != nil {
		return err
	}
	perms, ans, err := h.cfg.Decider.EffectivePermissions(r.Context(), authz.Subject{MembershipID: r.PathValue("om"), Context: q["context"]},
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
