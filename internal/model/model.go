// Package model holds Trellis's domain types: the relationship data that
// authorization decisions are made from, in the WorkOS Authorization API
// vocabulary. It imports only the standard library; every data source
// (data file, PostgreSQL) produces these types and every adapter consumes them.
package model

// OrganizationType is the slug of the implicit root resource type. Every
// organization has exactly one resource of this type, its root resource.
const OrganizationType = "organization"

// DefaultMaxDepth is the default limit on the number of levels in a resource
// tree, the organization root included (WorkOS's soft limit).
const DefaultMaxDepth = 5

// Membership statuses. Only active memberships are granted anything.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusPending  = "pending"
)

// Organization is a tenant.
type Organization struct {
	ID   string `json:"id"   yaml:"id"`
	Name string `json:"name" yaml:"name"`
	// RootResourceID is the id of the organization's root resource. Empty
	// means "derive it" (see RootResourceID).
	RootResourceID string `json:"root_resource_id,omitempty" yaml:"root_resource_id,omitempty"`
	// Attributes are the organization's own facts for extensions.
	Attributes Attributes `json:"attributes,omitempty" yaml:"attributes,omitempty"`
}

// RootID returns the id of the organization's root resource: RootResourceID
// when set, otherwise the id derived from the organization id.
func (o Organization) RootID() string {
	if o.RootResourceID != "" {
		return o.RootResourceID
	}
	return RootResourceID(o.ID)
}

// RootResourceID derives the id of an organization's root resource from the
// organization id, so every data source names it the same way.
func RootResourceID(orgID string) string { return "authz_resource_root_" + orgID }

// Membership is a user in one organization, with that organization's roles
// (role slugs assigned on the organization root resource).
type Membership struct {
	ID             string   `json:"id"              yaml:"id"`
	UserID         string   `json:"user_id"         yaml:"user_id"`
	OrganizationID string   `json:"organization_id" yaml:"organization_id"`
	Status         string   `json:"status"          yaml:"status"`
	RoleSlugs      []string `json:"role_slugs"      yaml:"role_slugs"`
}

// ResourceType is a kind of resource and the types its instances may have as
// parent. The organization type is implicit and never listed.
type ResourceType struct {
	Slug        string   `json:"slug"                  yaml:"slug"`
	Name        string   `json:"name"                  yaml:"name"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	ParentTypes []string `json:"parent_types"          yaml:"parent_types"`
}

// Permission is an action on one resource type. Slug and type are immutable.
type Permission struct {
	Slug         string `json:"slug"                  yaml:"slug"`
	Name         string `json:"name"                  yaml:"name"`
	Description  string `json:"description,omitempty" yaml:"description,omitempty"`
	ResourceType string `json:"resource_type"         yaml:"resource_type"`
}

// Role is a named set of permissions scoped to one resource type. An
// environment role (OrganizationID empty) exists in every organization; an
// organization role exists in one. Permissions may be of the role's own type
// or of any descendant type.
type Role struct {
	Slug           string   `json:"slug"                      yaml:"slug"`
	Name           string   `json:"name"                      yaml:"name"`
	Description    string   `json:"description,omitempty"     yaml:"description,omitempty"`
	ResourceType   string   `json:"resource_type"             yaml:"resource_type"`
	OrganizationID string   `json:"organization_id,omitempty" yaml:"organization_id,omitempty"`
	Permissions    []string `json:"permissions"               yaml:"permissions"`
}

// Key returns the role's identity in the index: the slug for an environment
// role, "org_id/slug" for an organization role.
func (r Role) Key() string { return RoleKey(r.OrganizationID, r.Slug) }

// RoleKey returns the index key of the role named slug in organization orgID
// ("" for an environment role).
func RoleKey(orgID, slug string) string {
	if orgID == "" {
		return slug
	}
	return orgID + "/" + slug
}

// Resource is a node of an organization's resource tree. ParentID empty means
// the organization root (for every resource but the root itself).
type Resource struct {
	ID             string `json:"id"                    yaml:"id"`
	OrganizationID string `json:"organization_id"       yaml:"organization_id"`
	Type           string `json:"type"                  yaml:"type"`
	ExternalID     string `json:"external_id"           yaml:"external_id"`
	Name           string `json:"name"                  yaml:"name"`
	Description    string `json:"description,omitempty" yaml:"description,omitempty"`
	ParentID       string `json:"parent_id,omitempty"   yaml:"parent_id,omitempty"`
	// Attributes are the resource's own facts for extensions.
	Attributes Attributes `json:"attributes,omitempty" yaml:"attributes,omitempty"`
}

// Assignment gives a membership, or a group (GroupID set, MembershipID
// empty: a group role assignment), a role on a resource of the role's type.
// Exactly one of MembershipID and GroupID is set.
type Assignment struct {
	ID           string `json:"id"                 yaml:"id"`
	MembershipID string `json:"membership_id"      yaml:"membership_id"`
	GroupID      string `json:"group_id,omitempty" yaml:"group_id,omitempty"`
	RoleSlug     string `json:"role"               yaml:"role"`
	ResourceID   string `json:"resource_id"        yaml:"resource_id"`
}

// Principal returns who the assignment grants: its membership, else its
// group.
func (a Assignment) Principal() string {
	if a.MembershipID != "" {
		return a.MembershipID
	}
	return a.GroupID
}

// Group is a set of memberships of one organization (GroupMember). A role
// assigned to a group on a resource (Assignment.GroupID) grants every
// active member that role there and below, exactly as if assigned to each
// member. Groups do not nest: a group's members are memberships only, so a
// membership's grants are its own and those of its groups, one level, and
// no cycle can arise.
type Group struct {
	ID             string `json:"id"                    yaml:"id"`
	OrganizationID string `json:"organization_id"       yaml:"organization_id"`
	Name           string `json:"name"                  yaml:"name"`
	Description    string `json:"description,omitempty" yaml:"description,omitempty"`
}

// GroupMember makes a membership a member of a group of the same
// organization. The pair is its identity.
type GroupMember struct {
	GroupID      string `json:"group_id"      yaml:"group_id"`
	MembershipID string `json:"membership_id" yaml:"membership_id"`
}

// Dataset is the whole relationship data of one environment at one
// revision. Resources never contain organization root resources: those are
// implied by Organizations.
//
// Quarantined lists organizations held out of the dataset because their
// data breaks a rule (Isolate): none of their rows are in the other
// slices, and decisions about them answer organization_unavailable.
type Dataset struct {
	Revision int64
	MaxDepth int // 0 means DefaultMaxDepth
	// DefaultRole is the slug of the environment's default role, which
	// the WorkOS-compatible API gives memberships without one: an
	// environment role of resource type organization, or "" for none.
	// Decisions never read it.
	DefaultRole   string
	Organizations []Organization
	Memberships   []Membership
	ResourceTypes []ResourceType
	Permissions   []Permission
	Roles         []Role
	Resources     []Resource
	Assignments   []Assignment
	Groups        []Group
	GroupMembers  []GroupMember
	Quarantined   []Quarantine
}

// Depth returns the configured maximum tree depth.
func (d *Dataset) Depth() int {
	if d.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return d.MaxDepth
}

// Op is the kind of a Change.
type Op string

// Change operations.
const (
	OpUpsert Op = "upsert" // the entity now exists with exactly these fields
	OpDelete Op = "delete" // the entity no longer exists (only its key fields are read)
)

// Change is one committed change to the relationship data. Exactly one
// entity pointer is set. An upsert carries the entity's whole state after the
// change (a role with all its permissions, a membership with all its role
// slugs); a delete needs only the key: ID, or Slug (+ OrganizationID for a
// role) for permissions, roles and resource types, ID for a group, the
// pair for a group member.
type Change struct {
	Op           Op
	Organization *Organization
	Membership   *Membership
	ResourceType *ResourceType
	Permission   *Permission
	Role         *Role
	Resource     *Resource
	Assignment   *Assignment
	Group        *Group
	GroupMember  *GroupMember
}
