package workos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/trellis-authz/trellis/internal/model"
)

// routes registers every route. The table in doc.go lists them with their
// statuses.
func (h *Handler) routes() {
	// Organizations.
	h.handle("POST /organizations", h.createOrganization)
	h.handle("GET /organizations", h.listOrganizations)
	h.handle("GET /organizations/{id}", h.getOrganization)
	h.handle("PUT /organizations/{id}", h.updateOrganization)
	h.handle("DELETE /organizations/{id}", h.deleteOrganization)
	// GET /organizations/external_id/{external_id}: see groupRoutes.

	// Organization memberships.
	const oms = "/user_management/organization_memberships"
	h.handle("POST "+oms, h.createMembership)
	h.handle("GET "+oms, h.listMemberships)
	h.handle("GET "+oms+"/{id}", h.getMembership)
	h.handle("PUT "+oms+"/{id}", h.updateMembership)
	h.handle("PUT "+oms+"/{id}/deactivate", h.setMembershipStatus(model.StatusInactive))
	h.handle("PUT "+oms+"/{id}/reactivate", h.setMembershipStatus(model.StatusActive))
	h.handle("DELETE "+oms+"/{id}", h.deleteMembership)

	// Resource types (a Trellis extension).
	h.handle("POST /authorization/resource_types", h.createResourceType)
	h.handle("GET /authorization/resource_types", h.listResourceTypes)
	h.handle("GET /authorization/resource_types/{slug}", h.getResourceType)
	h.handle("PATCH /authorization/resource_types/{slug}", h.updateResourceType)
	h.handle("DELETE /authorization/resource_types/{slug}", h.deleteResourceType)

	// Permissions.
	h.handle("POST /authorization/permissions", h.createPermission)
	h.handle("GET /authorization/permissions", h.listPermissions)
	h.handle("GET /authorization/permissions/{slug}", h.getPermission)
	h.handle("PATCH /authorization/permissions/{slug}", h.updatePermission)
	h.handle("DELETE /authorization/permissions/{slug}", h.deletePermission)

	// Environment roles and organization roles share handlers; {org} is
	// empty on the environment routes.
	for _, base := range []string{"/authorization/roles", "/authorization/organizations/{org}/roles"} {
		h.handle("POST "+base, h.createRole)
		h.handle("GET "+base, h.listRoles)
		h.handle("PUT "+base+"/priority", h.reorderRoles) // a Trellis extension
		h.handle("GET "+base+"/{slug}", h.getRole)
		h.handle("PATCH "+base+"/{slug}", h.updateRole)
		h.handle("DELETE "+base+"/{slug}", h.deleteRole)
		h.handle("PUT "+base+"/{slug}/permissions", h.setRolePermissions)
		h.handle("POST "+base+"/{slug}/permissions", h.addRolePermission)
		h.handle("DELETE "+base+"/{slug}/permissions/{permission}", h.removeRolePermission)
	}
	// The environment's default role (a Trellis extension: WorkOS sets it in
	// its dashboard).
	h.handle("GET /authorization/default_role", h.getDefaultRole)
	h.handle("PUT /authorization/default_role", h.setDefaultRole)

	// Resources, by id and by (organization, type, external id).
	const byExt = "/authorization/organizations/{org}/resources/{type}/{external_id}"
	h.handle("POST /authorization/resources", h.createResource)
	h.handle("GET /authorization/resources", h.listResources)
	for _, base := range []string{"/authorization/resources/{id}", byExt} {
		h.handle("GET "+base, h.getResource)
		h.handle("PATCH "+base, h.updateResource)
		h.handle("DELETE "+base, h.deleteResource)
		h.handle("GET "+base+"/role_assignments", h.listResourceAssignments)
		h.handle("GET "+base+"/organization_memberships", h.listMembershipsForResource)
	}

	// Role assignments of a membership.
	const ra = "/authorization/organization_memberships/{om}/role_assignments"
	h.handle("POST "+ra, h.assignRole)
	h.handle("GET "+ra, h.listMembershipAssignments)
	h.handle("DELETE "+ra, h.removeRole)
	h.handle("DELETE "+ra+"/{id}", h.removeAssignment)

	h.groupRoutes()

	// Checks and discovery.
	h.handle("POST /authorization/organization_memberships/{om}/check", h.check)
	h.handle("GET /authorization/organization_memberships/{om}/resources", h.listResourcesForMembership)
	h.handle("GET /authorization/resources/{id}/organization_memberships/{om}/permissions", h.effectivePermissions)
	h.handle("GET /authorization/organization_memberships/{om}/resources/{type}/{external_id}/permissions", h.effectivePermissions)

	h.mux.HandleFunc("/", h.noRoute)
}

// noRoute answers paths no route serves: 405 with Allow when another method
// would be served, else 404.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, " or "))})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Code: "not_found", Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

// required reports a missing required field as a 422 problem.
func required(field, value string) error {
	if value == "" {
		return Invalid(field, model.CodeInvalid, "is required")
	}
	return nil
}

// refFromFields builds a resource reference from an id or a type + external
// id pair of request fields, named with prefix (e.g. "resource_",
// "parent_resource_"). optional allows neither.
func refFromFields(prefix, id, extID, typeSlug, orgID string, optional bool) (ResourceRef, error) {
	switch {
	case id != "" && (extID != "" || typeSlug != ""):
		return ResourceRef{}, Invalid(prefix+"id", model.CodeInvalid, "give %sid, or %sexternal_id and %stype_slug, not both", prefix, prefix, prefix)
	case id != "":
		return ResourceRef{ID: id}, nil
	case extID != "" && typeSlug != "":
		return ResourceRef{OrganizationID: orgID, TypeSlug: typeSlug, ExternalID: extID}, nil
	case extID != "" || typeSlug != "":
		return ResourceRef{}, Invalid(prefix+"external_id", model.CodeInvalid, "%sexternal_id and %stype_slug go together", prefix, prefix)
	case optional:
		return ResourceRef{}, nil
	}
	return ResourceRef{}, Invalid(prefix+"id", model.CodeInvalid, "give %sid, or %sexternal_id and %stype_slug", prefix, prefix, prefix)
}

// pathResource is the resource a path names: {id}, or {org}/{type}/{external_id}.
func pathResource(r *http.Request) ResourceRef {
	if id := r.PathValue("id"); id != "" {
		return ResourceRef{ID: id}
	}
	return ResourceRef{OrganizationID: r.PathValue("org"), TypeSlug: r.PathValue("type"), ExternalID: r.PathValue("external_id")}
}

// noQuery rejects query parameters on routes that take none.
func noQuery(r *http.Request) error {
	_, err := query(r)
	return err
}

// ---- Organizations ----

type organizationRequest struct {
	Name             optString         `json:"name"`
	ExternalID       optString         `json:"external_id"`
	Metadata         map[string]string `json:"metadata"`
	DomainData       *[]domainRequest  `json:"domain_data"`
	StripeCustomerID optString         `json:"stripe_customer_id"`
	// Attributes is a Trellis extension field (the SDK sends none).
	Attributes optAttributes `json:"attributes"`
}

type domainRequest struct {
	Domain string `json:"domain"`
	State  string `json:"state"`
}

// domains checks domain_data: each entry a domain name, once, with state
// pending or verified. It returns nil when the field was absent.
func (o organizationRequest) domains() (*[]DomainInput, error) {
	if o.DomainData == nil {
		return nil, nil
	}
	out := make([]DomainInput, len(*o.DomainData))
	seen := map[string]bool{}
	for i, d := range *o.DomainData {
		field := "domain_data[" + strconv.Itoa(i) + "]."
		name := strings.ToLower(d.Domain)
		switch {
		case name == "" || strings.ContainsAny(name, " /@:") || !strings.Contains(name, ".") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "."):
			return nil, Invalid(field+"domain", model.CodeInvalid, "%q is not a domain name such as example.com", d.Domain)
		case d.State != DomainPending && d.State != DomainVerified:
			return nil, Invalid(field+"state", model.CodeInvalid, "must be %q or %q, not %q", DomainPending, DomainVerified, d.State)
		case seen[name]:
			return nil, Invalid(field+"domain", model.CodeInvalid, "domain %q is listed twice", name)
		}
		seen[name] = true
		out[i] = DomainInput{Domain: name, State: d.State}
	}
	return &out, nil
}

func (h *Handler) createOrganization(w http.ResponseWriter, r *http.Request) error {
	var req organizationRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("name", req.Name.Value); err != nil {
		return err
	}
	domains, err := req.domains()
	if err != nil {
		return err
	}
	attrs, err := req.Attributes.parse()
	if err != nil {
		return err
	}
	in := OrganizationInput{Name: req.Name.Value, ExternalID: req.ExternalID.Value, Metadata: req.Metadata,
		StripeCustomerID: req.StripeCustomerID.Value, Attributes: attrs}
	if domains != nil {
		in.Domains = *domains
	}
	return written(h, r, w, http.StatusCreated, organizationOut)(h.cfg.Store.CreateOrganization(r.Context(), in))
}

func (h *Handler) listOrganizations(w http.ResponseWriter, r *http.Request) error {
	q, p, err := pageQuery(r, "domains")
	if err != nil {
		return err
	}
	var f OrganizationFilter
	if d := q["domains"]; d != "" {
		f.Domains = strings.Split(d, ",")
	}
	return writePage(w, p, organizationKey, organizationOut, func(o ListOptions) ([]Organization, error) {
		return h.cfg.Store.ListOrganizations(r.Context(), f, o)
	})
}

func (h *Handler) getOrganization(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, organizationOut)(h.cfg.Store.GetOrganization(r.Context(), r.PathValue("id")))
}

func (h *Handler) getOrganizationByExternalID(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, organizationOut)(h.cfg.Store.GetOrganizationByExternalID(r.Context(), r.PathValue("external_id")))
}

func (h *Handler) updateOrganization(w http.ResponseWriter, r *http.Request) error {
	var req organizationRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	domains, err := req.domains()
	if err != nil {
		return err
	}
	attrs, err := req.Attributes.update()
	if err != nil {
		return err
	}
	u := OrganizationUpdate{ExternalID: req.ExternalID.ptr(), Metadata: req.Metadata, SetMetadata: req.Metadata != nil,
		Domains: domains, StripeCustomerID: req.StripeCustomerID.ptr(), Attributes: attrs}
	if req.Name.Set {
		if err := required("name", req.Name.Value); err != nil {
			return err
		}
		u.Name = req.Name.ptr()
	}
	return written(h, r, w, http.StatusOK, organizationOut)(h.cfg.Store.UpdateOrganization(r.Context(), r.PathValue("id"), u))
}

func (h *Handler) deleteOrganization(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteOrganization(r.Context(), r.PathValue("id")))
}

// ---- Organization memberships ----

type membershipRequest struct {
	OrganizationID string    `json:"organization_id"`
	UserID         string    `json:"user_id"`
	RoleSlug       string    `json:"role_slug"`
	RoleSlugs      *[]string `json:"role_slugs"`
}

// roles returns the role slugs the request gives, or nil when it gives none.
func (m membershipRequest) roles() (*[]string, error) {
	switch {
	case m.RoleSlug != "" && m.RoleSlugs != nil:
		return nil, Invalid("role_slugs", model.CodeInvalid, "give role_slug or role_slugs, not both")
	case m.RoleSlug != "":
		return &[]string{m.RoleSlug}, nil
	}
	return m.RoleSlugs, nil
}

func (h *Handler) createMembership(w http.ResponseWriter, r *http.Request) error {
	var req membershipRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("organization_id", req.OrganizationID); err != nil {
		return err
	}
	if err := required("user_id", req.UserID); err != nil {
		return err
	}
	roles, err := req.roles()
	if err != nil {
		return err
	}
	in := MembershipInput{OrganizationID: req.OrganizationID, UserID: req.UserID}
	if in.RoleSlugs, err = h.orDefault(r.Context(), req.OrganizationID, roles); err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, membershipOut)(h.cfg.Store.CreateMembership(r.Context(), in))
}

// orDefault returns roles, or when they are none (nil or empty) the default
// role of orgID, so that a membership always has a role when there is a
// default role.
func (h *Handler) orDefault(ctx context.Context, orgID string, roles *[]string) ([]string, error) {
	if roles != nil && len(*roles) > 0 {
		return *roles, nil
	}
	switch def, err := h.defaultRole(ctx, orgID); {
	case err != nil:
		return nil, err
	case def == "":
		return []string{}, nil
	default:
		return []string{def}, nil
	}
}

// defaultRole returns the slug of the default role of a membership of
// orgID ("" for none): the configured DefaultRoleSlug if there is one
// (checked by the store like any slug sent); else the environment's, as
// set through PUT /authorization/default_role or the data file; else
// WorkOS's default, DefaultMemberRole, when orgID sees an
// organization-level role with that slug.
// An unknown organization gives none here and is refused by the store.
func (h *Handler) defaultRole(ctx context.Context, orgID string) (string, error) {
	if h.cfg.DefaultRoleSlug != "" {
		return h.cfg.DefaultRoleSlug, nil
	}
	switch def, err := h.cfg.Store.DefaultRole(ctx); {
	case err != nil:
		return "", fmt.Errorf("look up the default role: %w", err)
	case def != "":
		return def, nil
	}
	switch role, err := h.cfg.Store.GetRole(ctx, orgID, DefaultMemberRole); {
	case err == nil && role.ResourceTypeSlug == model.OrganizationType:
		return DefaultMemberRole, nil
	case err == nil || errors.Is(err, ErrNotFound):
		return "", nil // a "member" role of another resource type cannot be a membership's
	default:
		return "", fmt.Errorf("look up the default role %q: %w", DefaultMemberRole, err)
	}
}

type defaultRoleJSON struct {
	Object   string  `json:"object"`
	RoleSlug *string `json:"role_slug"`
}

func (h *Handler) getDefaultRole(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.writeDefaultRole(w, r)
}

func (h *Handler) writeDefaultRole(w http.ResponseWriter, r *http.Request) error {
	def, err := h.defaultRole(r.Context(), "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, defaultRoleJSON{Object: "default_role", RoleSlug: nullable(def)})
	return nil
}

// setDefaultRole sets the environment's default role; "" unsets it (WorkOS's
// default, DefaultMemberRole, applies again).
func (h *Handler) setDefaultRole(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RoleSlug *string `json:"role_slug"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.RoleSlug == nil:
		return Invalid("role_slug", model.CodeInvalid, "is required (\"\" unsets the default role, so that %q applies)", DefaultMemberRole)
	case h.cfg.DefaultRoleSlug != "":
		return Invalid("role_slug", model.CodeInvalid, "this server overrides the default role with --default-role %q: restart it without that flag to change it here", h.cfg.DefaultRoleSlug)
	}
	rev, err := h.cfg.Store.SetDefaultRole(r.Context(), *req.RoleSlug)
	if err != nil {
		return err
	}
	h.wrote(r, w, rev)
	return h.writeDefaultRole(w, r)
}

func (h *Handler) listMemberships(w http.ResponseWriter, r *http.Request) error {
	q, p, err := pageQuery(r, "organization_id", "user_id", "statuses")
	if err != nil {
		return err
	}
	// Without statuses only active memberships are listed (WorkOS's default).
	f := MembershipFilter{OrganizationID: q["organization_id"], UserID: q["user_id"], Statuses: []string{model.StatusActive}}
	if s := q["statuses"]; s != "" {
		f.Statuses = nil
		for _, st := range strings.Split(s, ",") {
			switch st {
			case model.StatusActive, model.StatusInactive, model.StatusPending:
				f.Statuses = append(f.Statuses, st)
			default:
				return badRequest("statuses", "%q is not one of active, inactive, pending", st)
			}
		}
	}
	return writePage(w, p, membershipKey, membershipOut, func(o ListOptions) ([]Membership, error) {
		return h.cfg.Store.ListMemberships(r.Context(), f, o)
	})
}

func (h *Handler) getMembership(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, membershipOut)(h.cfg.Store.GetMembership(r.Context(), r.PathValue("id")))
}

func (h *Handler) updateMembership(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RoleSlug  string    `json:"role_slug"`
		RoleSlugs *[]string `json:"role_slugs"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	roles, err := membershipRequest{RoleSlug: req.RoleSlug, RoleSlugs: req.RoleSlugs}.roles()
	if err != nil {
		return err
	}
	if roles != nil && len(*roles) == 0 { // a membership always has a role: the default
		m, err := h.cfg.Store.GetMembership(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		if *roles, err = h.orDefault(r.Context(), m.OrganizationID, roles); err != nil {
			return err
		}
	}
	return h.writeMembership(w, r, MembershipUpdate{RoleSlugs: roles})
}

func (h *Handler) setMembershipStatus(status string) route {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req struct{}
		if err := h.body(w, r, &req); err != nil {
			return err
		}
		return h.writeMembership(w, r, MembershipUpdate{Status: &status})
	}
}

func (h *Handler) writeMembership(w http.ResponseWriter, r *http.Request, u MembershipUpdate) error {
	return written(h, r, w, http.StatusOK, membershipOut)(h.cfg.Store.UpdateMembership(r.Context(), r.PathValue("id"), u))
}

func (h *Handler) deleteMembership(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteMembership(r.Context(), r.PathValue("id")))
}

// ---- Resource types ----

type resourceTypeRequest struct {
	Slug            string    `json:"slug"`
	Name            optString `json:"name"`
	Description     optString `json:"description"`
	ParentTypeSlugs *[]string `json:"parent_type_slugs"`
}

func (h *Handler) createResourceType(w http.ResponseWriter, r *http.Request) error {
	var req resourceTypeRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("slug", req.Slug); err != nil {
		return err
	}
	if err := required("name", req.Name.Value); err != nil {
		return err
	}
	in := ResourceTypeInput{Slug: req.Slug, Name: req.Name.Value, Description: req.Description.Value}
	if req.ParentTypeSlugs != nil {
		in.ParentTypeSlugs = *req.ParentTypeSlugs
	}
	if len(in.ParentTypeSlugs) == 0 {
		return Invalid("parent_type_slugs", model.CodeInvalid, "is required: name at least one parent type (%q for top-level types)", model.OrganizationType)
	}
	return written(h, r, w, http.StatusCreated, resourceTypeOut)(h.cfg.Store.CreateResourceType(r.Context(), in))
}

func (h *Handler) listResourceTypes(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, resourceTypeKey, resourceTypeOut, func(o ListOptions) ([]ResourceType, error) {
		return h.cfg.Store.ListResourceTypes(r.Context(), o)
	})
}

func (h *Handler) getResourceType(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, resourceTypeOut)(h.cfg.Store.GetResourceType(r.Context(), r.PathValue("slug")))
}

func (h *Handler) updateResourceType(w http.ResponseWriter, r *http.Request) error {
	var req resourceTypeRequest
	if err := h.patchBody(w, r, &req); err != nil {
		return err
	}
	if req.Slug != "" && req.Slug != r.PathValue("slug") {
		return Invalid("slug", model.CodeInvalid, "a resource type's slug cannot be changed")
	}
	if req.Name.Set {
		if err := required("name", req.Name.Value); err != nil {
			return err
		}
	}
	return written(h, r, w, http.StatusOK, resourceTypeOut)(h.cfg.Store.UpdateResourceType(r.Context(), r.PathValue("slug"), ResourceTypeUpdate{
		Name: req.Name.ptr(), Description: req.Description.ptr(), ParentTypeSlugs: req.ParentTypeSlugs,
	}))
}

func (h *Handler) deleteResourceType(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteResourceType(r.Context(), r.PathValue("slug")))
}

// ---- Permissions ----

type permissionRequest struct {
	Slug             string    `json:"slug"`
	Name             optString `json:"name"`
	Description      optString `json:"description"`
	ResourceTypeSlug string    `json:"resource_type_slug"`
}

// createBody reads the body of a permission or role creation: slug (with
// a "*" only where star allows it) and name required, the resource type
// the organization's by default.
func (h *Handler) createBody(w http.ResponseWriter, r *http.Request, req *permissionRequest, star bool) error {
	if err := h.body(w, r, req); err != nil {
		return err
	}
	if err := required("slug", req.Slug); err != nil {
		return err
	}
	if err := validSlug("slug", req.Slug, star); err != nil {
		return err
	}
	if err := required("name", req.Name.Value); err != nil {
		return err
	}
	if req.ResourceTypeSlug == "" {
		req.ResourceTypeSlug = model.OrganizationType
	}
	return nil
}

func (h *Handler) createPermission(w http.ResponseWriter, r *http.Request) error {
	var req permissionRequest
	if err := h.createBody(w, r, &req, true); err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, permissionOut)(h.cfg.Store.CreatePermission(r.Context(), PermissionInput{
		Slug: req.Slug, Name: req.Name.Value, Description: req.Description.Value, ResourceTypeSlug: req.ResourceTypeSlug,
	}))
}

// validSlug applies WorkOS's slug charset: lowercase letters, digits, "-",
// "_", ":" and "." (and "*" for permissions).
func validSlug(field, s string, star bool) error {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == ':', c == '.':
		case c == '*' && star:
		default:
			return Invalid(field, model.CodeInvalid, "%q may contain only lowercase letters, digits, -, _, :, .%s", s, map[bool]string{true: " and *"}[star])
		}
	}
	return nil
}

func (h *Handler) listPermissions(w http.ResponseWriter, r *http.Request) error {
	_, p, err := pageQuery(r)
	if err != nil {
		return err
	}
	return writePage(w, p, permissionKey, permissionOut, func(o ListOptions) ([]Permission, error) {
		return h.cfg.Store.ListPermissions(r.Context(), o)
	})
}

func (h *Handler) getPermission(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, permissionOut)(h.cfg.Store.GetPermission(r.Context(), r.PathValue("slug")))
}

func (h *Handler) updatePermission(w http.ResponseWriter, r *http.Request) error {
	var req permissionRequest
	if err := h.patchBody(w, r, &req); err != nil {
		return err
	}
	if req.Slug != "" || req.ResourceTypeSlug != "" {
		return Invalid("slug", model.CodeInvalid, "a permission's slug and resource type cannot be changed")
	}
	if req.Name.Set {
		if err := required("name", req.Name.Value); err != nil {
			return err
		}
	}
	return written(h, r, w, http.StatusOK, permissionOut)(h.cfg.Store.UpdatePermission(r.Context(), r.PathValue("slug"), PermissionUpdate{Name: req.Name.ptr(), Description: req.Description.ptr()}))
}

func (h *Handler) deletePermission(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeletePermission(r.Context(), r.PathValue("slug")))
}

// ---- Roles ----

func (h *Handler) createRole(w http.ResponseWriter, r *http.Request) error {
	var req permissionRequest // same fields: slug, name, description, resource_type_slug
	if err := h.createBody(w, r, &req, false); err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, roleOut)(h.cfg.Store.CreateRole(r.Context(), r.PathValue("org"), RoleInput{
		Slug: req.Slug, Name: req.Name.Value, Description: req.Description.Value, ResourceTypeSlug: req.ResourceTypeSlug,
	}))
}

func (h *Handler) listRoles(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	roles, err := h.cfg.Store.ListRoles(r.Context(), r.PathValue("org"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(mapSlice(roles, roleOut), listMetadata{}))
	return nil
}

func (h *Handler) getRole(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, roleOut)(h.cfg.Store.GetRole(r.Context(), r.PathValue("org"), r.PathValue("slug")))
}

func (h *Handler) writeRole(w http.ResponseWriter, r *http.Request, u RoleUpdate) error {
	return written(h, r, w, http.StatusOK, roleOut)(h.cfg.Store.UpdateRole(r.Context(), r.PathValue("org"), r.PathValue("slug"), u))
}

func (h *Handler) updateRole(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        optString `json:"name"`
		Description optString `json:"description"`
	}
	if err := h.patchBody(w, r, &req); err != nil {
		return err
	}
	if req.Name.Set {
		if err := required("name", req.Name.Value); err != nil {
			return err
		}
	}
	return h.writeRole(w, r, RoleUpdate{Name: req.Name.ptr(), Description: req.Description.ptr()})
}

func (h *Handler) setRolePermissions(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Permissions *[]string `json:"permissions"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if req.Permissions == nil {
		return Invalid("permissions", model.CodeInvalid, "is required (an empty list removes every permission)")
	}
	return h.writeRole(w, r, RoleUpdate{SetPermissions: req.Permissions})
}

func (h *Handler) addRolePermission(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Slug string `json:"slug"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if err := required("slug", req.Slug); err != nil {
		return err
	}
	return h.writeRole(w, r, RoleUpdate{AddPermissions: []string{req.Slug}})
}

func (h *Handler) removeRolePermission(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	_, rev, err := h.cfg.Store.UpdateRole(r.Context(), r.PathValue("org"), r.PathValue("slug"),
		RoleUpdate{RemovePermissions: []string{r.PathValue("permission")}})
	return h.deleted(r, w)(rev, err)
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	org, slug := r.PathValue("org"), r.PathValue("slug")
	def, err := h.defaultRole(r.Context(), org)
	if err != nil {
		return err
	}
	if def == slug {
		return Conflict("role %q is the default role, which every membership falls back to: make another role the default first (PUT /authorization/default_role)", slug)
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteRole(r.Context(), org, slug, def))
}

// reorderRoles sets the priority order of the environment roles or of an
// organization's custom roles: {"role_slugs": [...]}, every one of them,
// highest priority first. It answers the roles as listRoles does.
func (h *Handler) reorderRoles(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RoleSlugs []string `json:"role_slugs"`
	}
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	if req.RoleSlugs == nil {
		return Invalid("role_slugs", model.CodeInvalid, "is required: every role being ordered, highest priority first")
	}
	return written(h, r, w, http.StatusOK, func(roles []Role) list[roleJSON] {
		return newList(mapSlice(roles, roleOut), listMetadata{})
	})(h.cfg.Store.ReorderRoles(r.Context(), r.PathValue("org"), req.RoleSlugs))
}

// ---- Resources ----

type resourceRequest struct {
	OrganizationID           string    `json:"organization_id"`
	ResourceTypeSlug         string    `json:"resource_type_slug"`
	ExternalID               string    `json:"external_id"`
	Name                     optString `json:"name"`
	Description              optString `json:"description"`
	ParentResourceID         optString `json:"parent_resource_id"`
	ParentResourceExternalID string    `json:"parent_resource_external_id"`
	ParentResourceTypeSlug   string    `json:"parent_resource_type_slug"`
	// Attributes is a Trellis extension field (the SDK sends none).
	Attributes optAttributes `json:"attributes"`
}

func (h *Handler) createResource(w http.ResponseWriter, r *http.Request) error {
	var req resourceRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"organization_id", req.OrganizationID}, {"resource_type_slug", req.ResourceTypeSlug},
		{"external_id", req.ExternalID}, {"name", req.Name.Value},
	} {
		if err := required(f.name, f.v); err != nil {
			return err
		}
	}
	parent, err := refFromFields("parent_resource_", req.ParentResourceID.Value, req.ParentResourceExternalID, req.ParentResourceTypeSlug, req.OrganizationID, true)
	if err != nil {
		return err
	}
	attrs, err := req.Attributes.parse()
	if err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, resourceOut)(h.cfg.Store.CreateResource(r.Context(), ResourceInput{
		OrganizationID: req.OrganizationID, TypeSlug: req.ResourceTypeSlug, ExternalID: req.ExternalID,
		Name: req.Name.Value, Description: req.Description.Value, Parent: parent, Attributes: attrs,
	}))
}

func (h *Handler) listResources(w http.ResponseWriter, r *http.Request) error {
	q, p, err := pageQuery(r, "organization_id", "resource_type_slug", "parent_resource_id",
		"parent_resource_type_slug", "parent_external_id", "search")
	if err != nil {
		return err
	}
	f := ResourceFilter{
		OrganizationID: q["organization_id"], TypeSlug: q["resource_type_slug"], ParentID: q["parent_resource_id"],
		ParentTypeSlug: q["parent_resource_type_slug"], ParentExternalID: q["parent_external_id"], Search: q["search"],
	}
	if (f.ParentTypeSlug == "") != (f.ParentExternalID == "") {
		return badRequest("parent_external_id", "parent_external_id and parent_resource_type_slug go together")
	}
	return writePage(w, p, resourceKey, resourceOut, func(o ListOptions) ([]Resource, error) {
		return h.cfg.Store.ListResources(r.Context(), f, o)
	})
}

func (h *Handler) getResource(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return found(w, resourceOut)(h.cfg.Store.GetResource(r.Context(), pathResource(r)))
}

func (h *Handler) updateResource(w http.ResponseWriter, r *http.Request) error {
	var req resourceRequest
	if err := h.patchBody(w, r, &req); err != nil {
		return err
	}
	if req.OrganizationID != "" || req.ResourceTypeSlug != "" || req.ExternalID != "" {
		return Invalid("external_id", model.CodeInvalid, "a resource's organization, type and external id cannot be changed")
	}
	attrs, err := req.Attributes.update()
	if err != nil {
		return err
	}
	u := ResourceUpdate{Name: req.Name.ptr(), Description: req.Description.ptr(), Attributes: attrs}
	if req.Name.Set {
		if err := required("name", req.Name.Value); err != nil {
			return err
		}
	}
	switch {
	case req.ParentResourceID.Set && req.ParentResourceID.Null && req.ParentResourceExternalID == "" && req.ParentResourceTypeSlug == "":
		u.Parent = &ResourceRef{} // null: move under the organization root
	case req.ParentResourceID.Value != "" || req.ParentResourceExternalID != "" || req.ParentResourceTypeSlug != "":
		parent, err := refFromFields("parent_resource_", req.ParentResourceID.Value, req.ParentResourceExternalID, req.ParentResourceTypeSlug, "", false)
		if err != nil {
			return err
		}
		u.Parent = &parent
	}
	return written(h, r, w, http.StatusOK, resourceOut)(h.cfg.Store.UpdateResource(r.Context(), pathResource(r), u))
}

func (h *Handler) deleteResource(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "cascade_delete")
	if err != nil {
		return err
	}
	cascade := false
	switch q["cascade_delete"] {
	case "", "false":
	case "true":
		cascade = true
	default:
		return badRequest("cascade_delete", "must be true or false, not %q", q["cascade_delete"])
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteResource(r.Context(), pathResource(r), cascade))
}

// ---- Role assignments ----

type assignmentRequest struct {
	RoleSlug           string `json:"role_slug"`
	ResourceID         string `json:"resource_id"`
	ResourceExternalID string `json:"resource_external_id"`
	ResourceTypeSlug   string `json:"resource_type_slug"`
}

func (a assignmentRequest) parse() (ResourceRef, error) {
	if err := required("role_slug", a.RoleSlug); err != nil {
		return ResourceRef{}, err
	}
	return refFromFields("resource_", a.ResourceID, a.ResourceExternalID, a.ResourceTypeSlug, "", false)
}

func (h *Handler) assignRole(w http.ResponseWriter, r *http.Request) error {
	var req assignmentRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	ref, err := req.parse()
	if err != nil {
		return err
	}
	return written(h, r, w, http.StatusCreated, assignmentOut)(h.cfg.Store.CreateAssignment(r.Context(), r.PathValue("om"), req.RoleSlug, ref))
}

func (h *Handler) removeRole(w http.ResponseWriter, r *http.Request) error {
	var req assignmentRequest
	if err := h.body(w, r, &req); err != nil {
		return err
	}
	ref, err := req.parse()
	if err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteAssignmentByRole(r.Context(), r.PathValue("om"), req.RoleSlug, ref))
}

func (h *Handler) removeAssignment(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	return h.deleted(r, w)(h.cfg.Store.DeleteAssignment(r.Context(), r.PathValue("om"), r.PathValue("id")))
}

func (h *Handler) listMembershipAssignments(w http.ResponseWriter, r *http.Request) error {
	q, p, err := pageQuery(r, "resource_id", "resource_external_id", "resource_type_slug")
	if err != nil {
		return err
	}
	return h.listAssignments(w, r, p, AssignmentFilter{
		MembershipID: r.PathValue("om"), ResourceID: q["resource_id"],
		ResourceExternalID: q["resource_external_id"], ResourceTypeSlug: q["resource_type_slug"],
	})
}

func (h *Handler) listResourceAssignments(w http.ResponseWriter, r *http.Request) error {
	q, p, err := pageQuery(r, "role_slug")
	if err != nil {
		return err
	}
	return h.listAssignments(w, r, p, AssignmentFilter{Resource: pathResource(r), RoleSlug: q["role_slug"]})
}

func (h *Handler) listAssignments(w http.ResponseWriter, r *http.Request, p page, f AssignmentFilter) error {
	return writePage(w, p, assignmentKey, assignmentOut, func(o ListOptions) ([]Assignment, error) {
		return h.cfg.Store.ListAssignments(r.Context(), f, o)
	})
}
