package workos

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// timeFormat is how WorkOS writes timestamps: ISO 8601 in UTC with
// milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

// nullable returns nil for "", so the field encodes as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optString is a request field that may be absent, null or a string.
// Absent leaves Set false; null sets it with Null true.
type optString struct {
	Set   bool
	Null  bool
	Value string
}

// UnmarshalJSON reads null or a string.
func (o *optString) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// ptr returns nil when o is absent, else a pointer to its value ("" for
// null).
func (o optString) ptr() *string {
	if !o.Set {
		return nil
	}
	v := o.Value
	return &v
}

// optAttributes is the attributes request field (a Trellis extension):
// absent, null, or a JSON object kept as sent until parse checks it.
type optAttributes struct {
	Set bool
	Raw json.RawMessage
}

// UnmarshalJSON keeps the value for parse.
func (o *optAttributes) UnmarshalJSON(b []byte) error {
	o.Set, o.Raw = true, append(json.RawMessage(nil), b...)
	return nil
}

// parse returns the attributes the field gives: nil for null (or {}), the
// object's members (numbers as json.Number) otherwise. Anything but an
// object or null is a 400 naming the field; an object model.CheckAttributes
// refuses is a 422.
func (o optAttributes) parse() (model.Attributes, error) {
	if !o.Set {
		return nil, nil
	}
	var a model.Attributes
	if err := json.Unmarshal(o.Raw, &a); err != nil {
		return nil, badRequest("attributes", "must be a JSON object or null")
	}
	if err := model.CheckAttributes(a); err != nil {
		return nil, Invalid("attributes", model.CodeInvalid, "attributes%s", err)
	}
	return a, nil
}

// update is parse for an update: nil when the field is absent (unchanged),
// else a pointer to the attributes (to nil for null: cleared).
func (o optAttributes) update() (*model.Attributes, error) {
	if !o.Set {
		return nil, nil
	}
	a, err := o.parse()
	if err != nil {
		return nil, err
	}
	return &a, nil
}

type organizationJSON struct {
	Object                           string            `json:"object"`
	ID                               string            `json:"id"`
	Name                             string            `json:"name"`
	AllowProfilesOutsideOrganization bool              `json:"allow_profiles_outside_organization"`
	Domains                          []domainJSON      `json:"domains"`
	StripeCustomerID                 *string           `json:"stripe_customer_id,omitempty"`
	ExternalID                       *string           `json:"external_id"`
	Metadata                         map[string]string `json:"metadata"`
	// Attributes is a Trellis extension field, left out when none.
	Attributes model.Attributes `json:"attributes,omitempty"`
	CreatedAt  string           `json:"created_at"`
	UpdatedAt  string           `json:"updated_at"`
}

func organizationOut(o Organization) organizationJSON {
	md := o.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return organizationJSON{
		Object: "organization", ID: o.ID, Name: o.Name,
		Domains:          mapSlice(o.Domains, func(d Domain) domainJSON { return domainOut(o.ID, d) }),
		StripeCustomerID: nullable(o.StripeCustomerID),
		ExternalID:       nullable(o.ExternalID), Metadata: md, Attributes: o.Attributes,
		CreatedAt: ts(o.CreatedAt), UpdatedAt: ts(o.UpdatedAt),
	}
}

type domainJSON struct {
	Object               string `json:"object"`
	ID                   string `json:"id"`
	OrganizationID       string `json:"organization_id"`
	Domain               string `json:"domain"`
	State                string `json:"state"`
	VerificationStrategy string `json:"verification_strategy"`
	CreatedAt            string `json:"created_at"`
	UpdatedAt            string `json:"updated_at"`
}

func domainOut(org string, d Domain) domainJSON {
	return domainJSON{Object: "organization_domain", ID: d.ID, OrganizationID: org, Domain: d.Domain, State: d.State,
		VerificationStrategy: "manual", CreatedAt: ts(d.CreatedAt), UpdatedAt: ts(d.UpdatedAt)}
}

type roleRefJSON struct {
	Slug string `json:"slug"`
}

type membershipJSON struct {
	Object           string         `json:"object"`
	ID               string         `json:"id"`
	UserID           string         `json:"user_id"`
	OrganizationID   string         `json:"organization_id"`
	OrganizationName string         `json:"organization_name"`
	Status           string         `json:"status"`
	Role             *roleRefJSON   `json:"role"`
	Roles            []roleRefJSON  `json:"roles"`
	DirectoryManaged bool           `json:"directory_managed"`
	CustomAttributes map[string]any `json:"custom_attributes"`
	CreatedAt        string         `json:"created_at"`
	UpdatedAt        string         `json:"updated_at"`
}

func membershipOut(m Membership) membershipJSON {
	out := membershipJSON{
		Object: "organization_membership", ID: m.ID, UserID: m.UserID,
		OrganizationID: m.OrganizationID, OrganizationName: m.OrganizationName, Status: m.Status,
		Roles: []roleRefJSON{}, CustomAttributes: map[string]any{},
		CreatedAt: ts(m.CreatedAt), UpdatedAt: ts(m.UpdatedAt),
	}
	for _, s := range m.RoleSlugs {
		out.Roles = append(out.Roles, roleRefJSON{Slug: s})
	}
	if len(m.RoleSlugs) > 0 {
		out.Role = &roleRefJSON{Slug: m.RoleSlugs[0]}
	}
	return out
}

type resourceTypeJSON struct {
	Object          string   `json:"object"`
	Slug            string   `json:"slug"`
	Name            string   `json:"name"`
	Description     *string  `json:"description"`
	ParentTypeSlugs []string `json:"parent_type_slugs"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
}

func resourceTypeOut(t ResourceType) resourceTypeJSON {
	parents := t.ParentTypeSlugs
	if parents == nil {
		parents = []string{}
	}
	return resourceTypeJSON{
		Object: "resource_type", Slug: t.Slug, Name: t.Name, Description: nullable(t.Description),
		ParentTypeSlugs: parents, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
	}
}

type permissionJSON struct {
	Object           string  `json:"object"`
	ID               string  `json:"id"`
	Slug             string  `json:"slug"`
	Name             string  `json:"name"`
	Description      *string `json:"description"`
	ResourceTypeSlug string  `json:"resource_type_slug"`
	System           bool    `json:"system"`
	CreatedAt        string  `json:"created_at"`
	UpdatedAt        string  `json:"updated_at"`
}

func permissionOut(p Permission) permissionJSON {
	return permissionJSON{
		Object: "permission", ID: p.ID, Slug: p.Slug, Name: p.Name, Description: nullable(p.Description),
		ResourceTypeSlug: p.ResourceTypeSlug, CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt),
	}
}

type roleJSON struct {
	Object           string   `json:"object"`
	ID               string   `json:"id"`
	Slug             string   `json:"slug"`
	Name             string   `json:"name"`
	Description      *string  `json:"description"`
	Permissions      []string `json:"permissions"`
	ResourceTypeSlug string   `json:"resource_type_slug"`
	Type             string   `json:"type"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
}

// Role types (the "type" field of a role).
const (
	TypeEnvironmentRole  = "EnvironmentRole"
	TypeOrganizationRole = "OrganizationRole"
)

func roleOut(r Role) roleJSON {
	typ := TypeEnvironmentRole
	if r.OrganizationID != "" {
		typ = TypeOrganizationRole
	}
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return roleJSON{
		Object: "role", ID: r.ID, Slug: r.Slug, Name: r.Name, Description: nullable(r.Description),
		Permissions: perms, ResourceTypeSlug: r.ResourceTypeSlug, Type: typ,
		CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
	}
}

type resourceJSON struct {
	Object           string  `json:"object"`
	ID               string  `json:"id"`
	ExternalID       string  `json:"external_id"`
	Name             string  `json:"name"`
	Description      *string `json:"description"`
	ResourceTypeSlug string  `json:"resource_type_slug"`
	OrganizationID   string  `json:"organization_id"`
	ParentResourceID *string `json:"parent_resource_id"`
	// Attributes is a Trellis extension field, left out when none.
	Attributes model.Attributes `json:"attributes,omitempty"`
	CreatedAt  string           `json:"created_at"`
	UpdatedAt  string           `json:"updated_at"`
}

func resourceOut(r Resource) resourceJSON {
	return resourceJSON{
		Object: "authorization_resource", ID: r.ID, ExternalID: r.ExternalID, Name: r.Name,
		Description: nullable(r.Description), ResourceTypeSlug: r.TypeSlug, OrganizationID: r.OrganizationID,
		ParentResourceID: nullable(r.ParentID), Attributes: r.Attributes, CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
	}
}

type assignmentResourceJSON struct {
	ID               string `json:"id"`
	ExternalID       string `json:"external_id"`
	ResourceTypeSlug string `json:"resource_type_slug"`
}

type assignmentSourceJSON struct {
	Type                  string  `json:"type"`
	GroupRoleAssignmentID *string `json:"group_role_assignment_id"`
}

type assignmentJSON struct {
	Object                   string                 `json:"object"`
	ID                       string                 `json:"id"`
	OrganizationMembershipID string                 `json:"organization_membership_id"`
	Role                     roleRefJSON            `json:"role"`
	Resource                 assignmentResourceJSON `json:"resource"`
	Source                   assignmentSourceJSON   `json:"source"`
	CreatedAt                string                 `json:"created_at"`
	UpdatedAt                string                 `json:"updated_at"`
}

func assignmentOut(a Assignment) assignmentJSON {
	src := assignmentSourceJSON{Type: "direct"}
	if a.GroupAssignmentID != "" {
		src = assignmentSourceJSON{Type: "group", GroupRoleAssignmentID: &a.GroupAssignmentID}
	}
	return assignmentJSON{
		Object: "role_assignment", ID: a.ID, OrganizationMembershipID: a.MembershipID,
		Role:      roleRefJSON{Slug: a.RoleSlug},
		Resource:  assignmentResourceJSON{ID: a.ResourceID, ExternalID: a.ResourceExternalID, ResourceTypeSlug: a.ResourceTypeSlug},
		Source:    src,
		CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt),
	}
}

type groupJSON struct {
	Object         string  `json:"object"`
	ID             string  `json:"id"`
	OrganizationID string  `json:"organization_id"`
	Name           string  `json:"name"`
	Description    *string `json:"description"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
}

func groupOut(g Group) groupJSON {
	return groupJSON{Object: "group", ID: g.ID, OrganizationID: g.OrganizationID, Name: g.Name,
		Description: nullable(g.Description), CreatedAt: ts(g.CreatedAt), UpdatedAt: ts(g.UpdatedAt)}
}

type groupAssignmentJSON struct {
	Object    string                 `json:"object"`
	ID        string                 `json:"id"`
	GroupID   string                 `json:"group_id"`
	Role      roleRefJSON            `json:"role"`
	Resource  assignmentResourceJSON `json:"resource"`
	CreatedAt string                 `json:"created_at"`
	UpdatedAt string                 `json:"updated_at"`
}

func groupAssignmentOut(a GroupAssignment) groupAssignmentJSON {
	return groupAssignmentJSON{
		Object: "group_role_assignment", ID: a.ID, GroupID: a.GroupID, Role: roleRefJSON{Slug: a.RoleSlug},
		Resource:  assignmentResourceJSON{ID: a.ResourceID, ExternalID: a.ResourceExternalID, ResourceTypeSlug: a.ResourceTypeSlug},
		CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt),
	}
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// Keys of the list orders.
func organizationKey(o Organization) string       { return o.ID }
func membershipKey(m Membership) string           { return m.ID }
func resourceTypeKey(t ResourceType) string       { return t.Slug }
func permissionKey(p Permission) string           { return p.ID }
func resourceKey(r Resource) string               { return r.ID }
func assignmentKey(a Assignment) string           { return a.ID }
func groupKey(g Group) string                     { return g.ID }
func groupAssignmentKey(a GroupAssignment) string { return a.ID }
