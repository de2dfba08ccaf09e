package workos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// The records below are what a Store keeps and returns. They carry the
// WorkOS-facing fields (ids, external ids, timestamps) next to the
// relationship data of package model; the handler turns them into the WorkOS
// JSON objects. A Store implementation owns the values it returns only until
// it returns them: the caller may keep and modify them.

// Organization is a tenant (WorkOS "organization").
type Organization struct {
	ID         string // "org_…"
	Name       string
	ExternalID string            // "" means none (JSON null)
	Metadata   map[string]string // nil means empty
	// Domains are the organization's domains, in the order they were
	// given; a domain belongs to one organization at most.
	Domains []Domain
	// StripeCustomerID is "" for none (the field is then left out).
	StripeCustomerID string
	// Attributes are the organization's facts for extensions (a Trellis
	// extension field); nil for none (the field is then left out).
	Attributes model.Attributes
	// RootResourceID is the id of the organization's root resource, of
	// resource type "organization" and external id ID.
	RootResourceID string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Domain is an organization's domain (WorkOS "organization_domain"). Its
// State is DomainPending or DomainVerified, as the caller set it: Trellis
// verifies nothing (verification_strategy "manual").
type Domain struct {
	ID        string // "org_domain_…"
	Domain    string
	State     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DomainInput is one entry of an organization's domain_data.
type DomainInput struct {
	Domain string
	State  string
}

// The states of a Domain.
const (
	DomainPending  = "pending"
	DomainVerified = "verified"
)

// PrefixDomain is WorkOS's prefix of organization domain ids.
const PrefixDomain = "org_domain_"

// SetDomains returns an organization's domains after domain_data in
// replaced cur at now: a domain already there keeps its id and creation
// time (and its update time unless its state changed); the others are new.
// The order is in's.
func SetDomains(cur []Domain, in []DomainInput, now time.Time) []Domain {
	was := make(map[string]Domain, len(cur))
	for _, d := range cur {
		was[d.Domain] = d
	}
	out := make([]Domain, len(in))
	for i, d := range in {
		old, ok := was[d.Domain]
		switch {
		case !ok:
			out[i] = Domain{ID: model.NewID(PrefixDomain), Domain: d.Domain, State: d.State, CreatedAt: now, UpdatedAt: now}
		case old.State != d.State:
			old.State, old.UpdatedAt = d.State, now
			out[i] = old
		default:
			out[i] = old
		}
	}
	return out
}

// Membership is a user in one organization (WorkOS
// "organization_membership").
type Membership struct {
	ID               string // "om_…"
	UserID           string
	OrganizationID   string
	OrganizationName string // of OrganizationID, read in the same transaction
	Status           string // model.StatusActive, StatusInactive or StatusPending
	// RoleSlugs are the membership's organization roles in priority order
	// (RoleStore.ListRoles); the first is its primary role ("role" in JSON).
	RoleSlugs []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ResourceType is a kind of resource (a Trellis extension: WorkOS manages
// types in its dashboard only).
type ResourceType struct {
	Slug            string
	Name            string
	Description     string // "" means none
	ParentTypeSlugs []string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Permission is an action on one resource type.
type Permission struct {
	ID               string // "perm_…"
	Slug             string
	Name             string
	Description      string // "" means none
	ResourceTypeSlug string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Role is a named set of permission slugs scoped to one resource type: an
// environment role when OrganizationID is empty, else a custom role of that
// organization.
type Role struct {
	ID               string // "role_…"
	Slug             string
	Name             string
	Description      string // "" means none
	ResourceTypeSlug string
	OrganizationID   string
	Permissions      []string // slugs, in the order they were added
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Resource is a node of an organization's resource tree. The organization's
// root resource is a Resource too: of type "organization", with the
// organization id as external id and no parent.
type Resource struct {
	ID             string // "authz_resource_…"
	ExternalID     string
	Name           string
	Description    string // "" means none
	TypeSlug       string
	OrganizationID string
	// ParentID is the parent resource id, or "" when the parent is the
	// organization root (and for the root itself).
	ParentID string
	// Attributes are the resource's facts for extensions (a Trellis
	// extension field); nil for none, and always for a root (an
	// organization's facts are the organization's Attributes).
	Attributes model.Attributes
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Assignment gives a membership a role on a resource: directly, or through
// a group the membership belongs to (GroupAssignmentID).
type Assignment struct {
	ID                 string // "role_assignment_…"; a group-derived one has its GroupAssignmentID
	MembershipID       string
	RoleSlug           string
	ResourceID         string
	ResourceExternalID string
	ResourceTypeSlug   string
	// GroupAssignmentID is "" for a direct assignment; else the group role
	// assignment ("gra_…") the membership holds the role through.
	GroupAssignmentID string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// ResourceRef names a resource by ID, or by (OrganizationID, TypeSlug,
// ExternalID). Type "organization" with the organization id as external id
// names the organization's root resource.
type ResourceRef struct {
	ID             string
	OrganizationID string
	TypeSlug       string
	ExternalID     string
}

// IsZero reports whether r names nothing.
func (r ResourceRef) IsZero() bool { return r == ResourceRef{} }

// String formats r for messages.
func (r ResourceRef) String() string {
	if r.ID != "" {
		return r.ID
	}
	return fmt.Sprintf("%s:%s in %s", r.TypeSlug, r.ExternalID, r.OrganizationID)
}

// ListOptions asks for one page of a list. Every list is ordered by a key
// that is unique and never changes: the object id (prefix + ULID, so id
// order is creation order, see NewID), or the slug for resource types. A
// Store returns the first Limit items whose key is strictly after After in
// that order, ascending unless Descending; After "" means from the start.
// In SQL: WHERE id > $after ORDER BY id LIMIT $limit (or < and DESC), with
// the key compared bytewise (COLLATE "C" in PostgreSQL). Because the cursor
// is a key rather than an offset, pages stay correct under concurrent
// inserts and deletes: nothing is returned twice or skipped that existed
// for the whole walk.
type ListOptions struct {
	After      string
	Descending bool
	Limit      int
}

// OrganizationFilter selects organizations: a non-empty Domains those
// with one of these domains.
type OrganizationFilter struct {
	Domains []string
}

// OrganizationInput creates an organization.
type OrganizationInput struct {
	Name             string
	ExternalID       string
	Metadata         map[string]string
	Domains          []DomainInput
	StripeCustomerID string
	// Attributes are checked by the caller (model.CheckAttributes).
	Attributes model.Attributes
}

// OrganizationUpdate changes an organization; nil fields are unchanged.
type OrganizationUpdate struct {
	Name       *string
	ExternalID *string // "" clears it
	Metadata   map[string]string
	// SetMetadata says Metadata replaces the organization's metadata.
	SetMetadata bool
	// Domains, when not nil, replaces the organization's domains (see
	// SetDomains).
	Domains          *[]DomainInput
	StripeCustomerID *string // "" clears it
	// Attributes, when not nil, replaces the organization's attributes
	// (pointing to nil clears them); checked by the caller
	// (model.CheckAttributes).
	Attributes *model.Attributes
}

// MembershipInput creates a membership (status active).
type MembershipInput struct {
	OrganizationID string
	UserID         string
	RoleSlugs      []string
}

// MembershipFilter selects memberships; empty fields match everything.
type MembershipFilter struct {
	OrganizationID string
	UserID         string
	Statuses       []string
}

// MembershipUpdate changes a membership; nil fields are unchanged.
type MembershipUpdate struct {
	RoleSlugs *[]string
	Status    *string
}

// ResourceTypeInput creates a resource type.
type ResourceTypeInput struct {
	Slug            string
	Name            string
	Description     string
	ParentTypeSlugs []string
}

// ResourceTypeUpdate changes a resource type; nil fields are unchanged.
type ResourceTypeUpdate struct {
	Name            *string
	Description     *string
	ParentTypeSlugs *[]string
}

// PermissionInput creates a permission.
type PermissionInput struct {
	Slug             string
	Name             string
	Description      string
	ResourceTypeSlug string
}

// PermissionUpdate changes a permission's name and description; nil fields
// are unchanged. Slug and resource type are immutable.
type PermissionUpdate struct {
	Name        *string
	Description *string
}

// RoleInput creates a role.
type RoleInput struct {
	Slug             string
	Name             string
	Description      string
	ResourceTypeSlug string
}

// RoleUpdate changes a role. Nil fields are unchanged. SetPermissions
// replaces the permission set, then AddPermissions are added (present ones
// are left alone) and RemovePermissions removed (an absent one is
// ErrNotFound).
type RoleUpdate struct {
	Name              *string
	Description       *string
	SetPermissions    *[]string
	AddPermissions    []string
	RemovePermissions []string
}

// ResourceInput creates a resource. A zero Parent means the organization
// root; a Parent by external id is looked up in OrganizationID.
type ResourceInput struct {
	OrganizationID string
	TypeSlug       string
	ExternalID     string
	Name           string
	Description    string
	Parent         ResourceRef
	// Attributes are checked by the caller (model.CheckAttributes).
	Attributes model.Attributes
}

// ResourceUpdate changes a resource; nil fields are unchanged. A non-nil
// Parent re-parents the resource (its whole subtree moves); a Parent by
// external id is looked up in the resource's organization.
type ResourceUpdate struct {
	Name        *string
	Description *string
	Parent      *ResourceRef
	// Attributes, when not nil, replaces the resource's attributes
	// (pointing to nil clears them); checked by the caller
	// (model.CheckAttributes).
	Attributes *model.Attributes
}

// ResourceFilter selects resources; empty fields match everything. Parent
// filters match the direct parent; ParentID may name an organization root.
// Search matches names containing it, case-insensitively. Organization root
// resources are never listed.
type ResourceFilter struct {
	OrganizationID   string
	TypeSlug         string
	ParentID         string
	ParentTypeSlug   string
	ParentExternalID string
	Search           string
}

// Group is a set of memberships of one organization (WorkOS "group"). A
// role assigned to the group on a resource (GroupAssignment) grants it to
// every active member there and below. Groups do not nest.
type Group struct {
	ID             string // "group_…"
	OrganizationID string
	Name           string
	Description    string // "" means none (JSON null)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// GroupInput creates a group.
type GroupInput struct {
	Name        string
	Description string
}

// GroupUpdate changes a group; nil fields are unchanged.
type GroupUpdate struct {
	Name        *string
	Description *string // "" clears it
}

// GroupAssignment gives a group a role on a resource (WorkOS
// "group_role_assignment").
type GroupAssignment struct {
	ID                 string // "gra_…"
	GroupID            string
	RoleSlug           string
	ResourceID         string
	ResourceExternalID string
	ResourceTypeSlug   string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// GroupAssignmentInput names a role on a resource for a group. A zero
// Resource means the root resource of the group's organization; a Resource
// by external id is looked up in the group's organization.
type GroupAssignmentInput struct {
	RoleSlug string
	Resource ResourceRef
}

// Target is the reference of the input's resource for a group of
// organization org: its root when the input names none, and a reference
// by external id looked up in org.
func (in GroupAssignmentInput) Target(org string) ResourceRef {
	ref := in.Resource
	switch {
	case ref.IsZero():
		return ResourceRef{OrganizationID: org, TypeSlug: model.OrganizationType, ExternalID: org}
	case ref.ID == "":
		ref.OrganizationID = org
	}
	return ref
}

// AssignmentFilter selects role assignments. MembershipID or Resource (or
// both) name the scope; a named membership or resource that does not exist
// is ErrNotFound. The other fields filter within it. With MembershipID the
// list also holds the roles the membership has through its groups (as
// WorkOS lists them, source "group"), which cannot be deleted as its own;
// without it, only direct assignments.
type AssignmentFilter struct {
	MembershipID       string
	Resource           ResourceRef
	ResourceID         string
	ResourceExternalID string
	ResourceTypeSlug   string
	RoleSlug           string
}

// Store is the relationship data the WorkOS-compatible routes read and
// write: PostgreSQL in production. It is composed of one small interface per
// entity.
//
// Contract for every method:
//   - Each call is one transaction: a write either happens entirely or not
//     at all (a failed call changes nothing), and a read sees one snapshot.
//   - Every write returns the revision it produced (the change-log revision
//     that decisions must reach to reflect it), or an error.
//   - Errors: an entity named by the caller's key (the path of the request)
//     that does not exist wraps ErrNotFound; a uniqueness or "still in use"
//     violation wraps ErrConflict; data that breaks a rule of the data model
//     (DESIGN.md §1) is a *ValidationError or a *model.ValidationError (a
//     problem with model.CodeDuplicate in it is then a conflict); a
//     reference in the input that does not resolve is such a validation
//     problem with model.CodeUnknownReference. The Error() text of these
//     errors is shown to API clients, so it must describe the request, never
//     the database. Anything else is an internal failure, logged and
//     answered with 500.
//   - Implementations are safe for concurrent use.
type Store interface {
	OrganizationStore
	MembershipStore
	ResourceTypeStore
	PermissionStore
	RoleStore
	ResourceStore
	AssignmentStore
	GroupStore
}

// OrganizationStore keeps organizations.
type OrganizationStore interface {
	// CreateOrganization creates an organization and its root resource. A
	// used ExternalID, or a domain of another organization, is
	// ErrConflict.
	CreateOrganization(ctx context.Context, in OrganizationInput) (Organization, int64, error)
	// GetOrganization returns the organization id.
	GetOrganization(ctx context.Context, id string) (Organization, error)
	// GetOrganizationByExternalID returns the organization with that
	// external id.
	GetOrganizationByExternalID(ctx context.Context, externalID string) (Organization, error)
	// ListOrganizations returns one page of organizations (ListOptions).
	ListOrganizations(ctx context.Context, f OrganizationFilter, opts ListOptions) ([]Organization, error)
	// UpdateOrganization changes organization id.
	UpdateOrganization(ctx context.Context, id string, u OrganizationUpdate) (Organization, int64, error)
	// DeleteOrganization deletes organization id with its memberships,
	// custom roles, resources and role assignments.
	DeleteOrganization(ctx context.Context, id string) (int64, error)
}

// MembershipStore keeps organization memberships.
type MembershipStore interface {
	// CreateMembership creates an active membership. A user already in the
	// organization is ErrConflict; an unknown organization or role is a
	// validation problem.
	CreateMembership(ctx context.Context, in MembershipInput) (Membership, int64, error)
	// GetMembership returns membership id.
	GetMembership(ctx context.Context, id string) (Membership, error)
	// GetMemberships returns the memberships among ids that exist, in the
	// order of ids, leaving out the others.
	GetMemberships(ctx context.Context, ids []string) ([]Membership, error)
	// ListMemberships returns one page of memberships (ListOptions).
	ListMemberships(ctx context.Context, f MembershipFilter, opts ListOptions) ([]Membership, error)
	// UpdateMembership changes membership id.
	UpdateMembership(ctx context.Context, id string, u MembershipUpdate) (Membership, int64, error)
	// DeleteMembership deletes membership id and its role assignments.
	DeleteMembership(ctx context.Context, id string) (int64, error)
}

// ResourceTypeStore keeps resource types, ordered by slug.
type ResourceTypeStore interface {
	// CreateResourceType creates a type; a used slug is ErrConflict.
	CreateResourceType(ctx context.Context, in ResourceTypeInput) (ResourceType, int64, error)
	// GetResourceType returns the type slug.
	GetResourceType(ctx context.Context, slug string) (ResourceType, error)
	// ListResourceTypes returns one page of types, by slug (ListOptions).
	ListResourceTypes(ctx context.Context, opts ListOptions) ([]ResourceType, error)
	// UpdateResourceType changes type slug.
	UpdateResourceType(ctx context.Context, slug string, u ResourceTypeUpdate) (ResourceType, int64, error)
	// DeleteResourceType deletes type slug. A type that is a parent type of
	// another, or has resources, permissions or roles, is ErrConflict.
	DeleteResourceType(ctx context.Context, slug string) (int64, error)
}

// PermissionStore keeps permissions.
type PermissionStore interface {
	// CreatePermission creates a permission; a used slug is ErrConflict.
	CreatePermission(ctx context.Context, in PermissionInput) (Permission, int64, error)
	// GetPermission returns permission slug.
	GetPermission(ctx context.Context, slug string) (Permission, error)
	// GetPermissions returns the permissions among slugs that exist, in the
	// order of slugs, leaving out the others.
	GetPermissions(ctx context.Context, slugs []string) ([]Permission, error)
	// ListPermissions returns one page of permissions (ListOptions).
	ListPermissions(ctx context.Context, opts ListOptions) ([]Permission, error)
	// UpdatePermission changes permission slug.
	UpdatePermission(ctx context.Context, slug string, u PermissionUpdate) (Permission, int64, error)
	// DeletePermission deletes permission slug and removes it from every
	// role.
	DeletePermission(ctx context.Context, slug string) (int64, error)
}

// RoleStore keeps environment roles (orgID "") and custom organization
// roles. For a non-empty orgID the organization must exist (ErrNotFound).
type RoleStore interface {
	// CreateRole creates a role in orgID ("" for an environment role). A
	// slug used by an environment role, or by a custom role of orgID, is
	// ErrConflict.
	CreateRole(ctx context.Context, orgID string, in RoleInput) (Role, int64, error)
	// GetRole returns the role slug: for orgID "" the environment role; else
	// orgID's custom role, falling back to the environment role.
	GetRole(ctx context.Context, orgID, slug string) (Role, error)
	// ListRoles returns every environment role, then (orgID non-empty)
	// orgID's custom roles, each in priority order: a new role goes to the
	// bottom of its own.
	ListRoles(ctx context.Context, orgID string) ([]Role, error)
	// ReorderRoles sets the priority order of the environment roles (orgID
	// "") or of orgID's custom roles: slugs names each of them once (see
	// CheckOrder), highest priority first. It returns ListRoles(orgID).
	ReorderRoles(ctx context.Context, orgID string, slugs []string) ([]Role, int64, error)
	// UpdateRole changes the role slug of orgID: an environment role for
	// orgID "", else only a custom role of orgID.
	UpdateRole(ctx context.Context, orgID, slug string, u RoleUpdate) (Role, int64, error)
	// DeleteRole deletes the role (as UpdateRole names it), its role
	// assignments, and removes it from memberships' organization roles; a
	// membership left without any gets role fallback ("": none). The role
	// SetDefaultRole set is ErrConflict, checked in the same transaction.
	DeleteRole(ctx context.Context, orgID, slug, fallback string) (int64, error)
	// DefaultRole returns the slug of the environment's default role as
	// SetDefaultRole set it, or "" when none is set.
	DefaultRole(ctx context.Context) (string, error)
	// SetDefaultRole makes environment role slug, which must be of resource
	// type organization, the environment's default role ("": none).
	SetDefaultRole(ctx context.Context, slug string) (int64, error)
}

// CheckOrder checks that slugs, a new priority order of roles, names each
// of roles exactly once.
func CheckOrder(roles []Role, slugs []string) error {
	have := make(map[string]bool, len(roles))
	for _, r := range roles {
		have[r.Slug] = true
	}
	seen := make(map[string]bool, len(slugs))
	for _, s := range slugs {
		switch {
		case !have[s]:
			return Invalid("role_slugs", model.CodeUnknownReference, "role %q is not one of the roles being ordered", s)
		case seen[s]:
			return Invalid("role_slugs", model.CodeInvalid, "role %q is listed twice", s)
		}
		seen[s] = true
	}
	for _, r := range roles {
		if !seen[r.Slug] {
			return Invalid("role_slugs", model.CodeInvalid, "role %q is missing: list every role being ordered, highest priority first", r.Slug)
		}
	}
	return nil
}

// ResourceStore keeps resources.
type ResourceStore interface {
	// CreateResource creates a resource. A used (organization, type,
	// external id) is ErrConflict.
	CreateResource(ctx context.Context, in ResourceInput) (Resource, int64, error)
	// GetResource returns the resource ref names (root resources
	// included).
	GetResource(ctx context.Context, ref ResourceRef) (Resource, error)
	// GetResources returns the resources among ids that exist, in the order
	// of ids, leaving out the others.
	GetResources(ctx context.Context, ids []string) ([]Resource, error)
	// ListResources returns one page of resources (ListOptions).
	ListResources(ctx context.Context, f ResourceFilter, opts ListOptions) ([]Resource, error)
	// UpdateResource changes the resource ref names. Root resources cannot
	// be changed (a validation problem).
	UpdateResource(ctx context.Context, ref ResourceRef, u ResourceUpdate) (Resource, int64, error)
	// DeleteResource deletes the resource ref names. Without cascade, a
	// resource with children or role assignments is ErrConflict; with it,
	// the whole subtree and its assignments go. Root resources cannot be
	// deleted (a validation problem).
	DeleteResource(ctx context.Context, ref ResourceRef, cascade bool) (int64, error)
}

// AssignmentStore keeps role assignments.
type AssignmentStore interface {
	// CreateAssignment gives membership membershipID role roleSlug on the
	// resource ref names; a ref by external id is looked up in the
	// membership's organization. An existing identical assignment is
	// ErrConflict.
	CreateAssignment(ctx context.Context, membershipID, roleSlug string, ref ResourceRef) (Assignment, int64, error)
	// ListAssignments returns one page of assignments (ListOptions).
	ListAssignments(ctx context.Context, f AssignmentFilter, opts ListOptions) ([]Assignment, error)
	// DeleteAssignment deletes assignment id of membership membershipID.
	DeleteAssignment(ctx context.Context, membershipID, id string) (int64, error)
	// DeleteAssignmentByRole deletes membershipID's assignment of roleSlug
	// on the resource ref names; none is ErrNotFound.
	DeleteAssignmentByRole(ctx context.Context, membershipID, roleSlug string, ref ResourceRef) (int64, error)
}

// GroupStore keeps groups, their members and their role assignments. A
// group is named by its organization and id: a group of another
// organization is ErrNotFound.
type GroupStore interface {
	// CreateGroup creates a group in organization orgID.
	CreateGroup(ctx context.Context, orgID string, in GroupInput) (Group, int64, error)
	// GetGroup returns group id of orgID.
	GetGroup(ctx context.Context, orgID, id string) (Group, error)
	// ListGroups returns one page of orgID's groups (ListOptions).
	ListGroups(ctx context.Context, orgID string, opts ListOptions) ([]Group, error)
	// UpdateGroup changes group id of orgID.
	UpdateGroup(ctx context.Context, orgID, id string, u GroupUpdate) (Group, int64, error)
	// DeleteGroup deletes group id of orgID with its members and role
	// assignments.
	DeleteGroup(ctx context.Context, orgID, id string) (int64, error)
	// AddGroupMember makes membership membershipID a member of group
	// groupID of orgID and returns the group. A membership of another
	// organization, or an unknown one, is a validation problem; one that
	// is a member already is ErrConflict.
	AddGroupMember(ctx context.Context, orgID, groupID, membershipID string) (Group, int64, error)
	// RemoveGroupMember removes membershipID from the group; a membership
	// that is not a member is ErrNotFound.
	RemoveGroupMember(ctx context.Context, orgID, groupID, membershipID string) (int64, error)
	// ListGroupMembers returns one page of the group's members, by
	// membership id (ListOptions).
	ListGroupMembers(ctx context.Context, orgID, groupID string, opts ListOptions) ([]Membership, error)
	// ListMembershipGroups returns one page of the groups membershipID is
	// a member of (ListOptions).
	ListMembershipGroups(ctx context.Context, membershipID string, opts ListOptions) ([]Group, error)
	// CreateGroupAssignment gives group groupID a role on a resource. An
	// identical assignment is ErrConflict; a role whose type is not the
	// resource's is a validation problem.
	CreateGroupAssignment(ctx context.Context, groupID string, in GroupAssignmentInput) (GroupAssignment, int64, error)
	// GetGroupAssignment returns assignment id of group groupID.
	GetGroupAssignment(ctx context.Context, groupID, id string) (GroupAssignment, error)
	// ListGroupAssignments returns one page of the group's assignments
	// (ListOptions).
	ListGroupAssignments(ctx context.Context, groupID string, opts ListOptions) ([]GroupAssignment, error)
	// ReplaceGroupAssignments makes the group's assignments exactly in
	// (a set: order and repeats do not matter). Assignments already there
	// are kept as they are, with their ids; the others are removed or
	// created. It returns every assignment of the group, by id.
	ReplaceGroupAssignments(ctx context.Context, groupID string, in []GroupAssignmentInput) ([]GroupAssignment, int64, error)
	// DeleteGroupAssignment deletes assignment id of group groupID.
	DeleteGroupAssignment(ctx context.Context, groupID, id string) (int64, error)
	// DeleteGroupAssignmentByRole deletes the group's assignment of the
	// role on the resource in names; none is ErrNotFound.
	DeleteGroupAssignmentByRole(ctx context.Context, groupID string, in GroupAssignmentInput) (int64, error)
}

// ErrNotFound is wrapped by Store errors for an entity that does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by Store errors for a write that clashes with
// existing data: a used unique key, or an entity still in use.
var ErrConflict = errors.New("conflict")

// ErrUnavailable is wrapped by Store errors for a call the store's database
// cannot serve now but may later: it is unreachable, out of connection
// slots or shutting down, or a write kept conflicting with concurrent
// writes. A write that fails so has changed nothing, unless the
// connection broke during its commit. Answered 503 with Retry-After.
var ErrUnavailable = errors.New("store unavailable")

// ErrReadOnly is wrapped by Store errors for a write to a store whose
// database takes no writes (a hot standby). Nothing was written. Answered
// 421 read_only: the write belongs to a node on the primary.
var ErrReadOnly = errors.New("store is read-only")

// ValidationError is a request whose data breaks a rule. Problems are
// answered as the "errors" of a WorkOS 422 body.
type ValidationError struct {
	Problems []Problem
}

// Problem is one broken rule: the request field, a stable code (the
// model.Code… constants where one fits) and a message for humans.
type Problem struct {
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error joins the problems' messages.
func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
		if p.Field != "" {
			msgs[i] = p.Field + ": " + p.Message
		}
	}
	return strings.Join(msgs, "; ")
}

// Invalid returns a *ValidationError with one problem.
func Invalid(field, code, format string, args ...any) *ValidationError {
	return &ValidationError{Problems: []Problem{{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}}}
}

// NotFound returns an error wrapping ErrNotFound whose message names what
// was not found, e.g. NotFound("organization", "org_1").
func NotFound(kind, key string) error {
	return fmt.Errorf("%w: %s %q", ErrNotFound, kind, key)
}

// Conflict returns an error wrapping ErrConflict with a message for clients.
func Conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// ID prefixes of the WorkOS objects (model's).
const (
	PrefixOrganization    = model.PrefixOrganization
	PrefixMembership      = model.PrefixMembership
	PrefixPermission      = model.PrefixPermission
	PrefixRole            = model.PrefixRole
	PrefixResource        = model.PrefixResource
	PrefixAssignment      = model.PrefixAssignment
	PrefixGroup           = model.PrefixGroup
	PrefixGroupAssignment = model.PrefixGroupAssignment
)
