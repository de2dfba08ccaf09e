package model

import (
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Problem codes: the Code of a Problem, one per kind of rule a Dataset can
// break. They are stable strings meant for programs (API error bodies,
// tests); the Message is for humans.
const (
	// CodeInvalid: a required field is empty or a value is out of range.
	CodeInvalid = "invalid"
	// CodeDuplicate: an id, slug or key that must be unique is used twice.
	CodeDuplicate = "duplicate"
	// CodeUnknownReference: a field names an entity that does not exist.
	CodeUnknownReference = "unknown_reference"
	// CodeParentTypeNotAllowed: a resource's parent is of a type that is not
	// among the parent types of the resource's type.
	CodeParentTypeNotAllowed = "parent_type_not_allowed"
	// CodeCycle: parent links (of resources, or of resource types) loop.
	CodeCycle = "cycle"
	// CodeDepthExceeded: a resource is deeper than Dataset.Depth().
	CodeDepthExceeded = "depth_exceeded"
	// CodeCrossOrganization: a link joins entities of two organizations.
	CodeCrossOrganization = "cross_organization"
	// CodeRoleTypeMismatch: a role is used on a resource (or as a membership
	// role) whose type is not the role's resource type.
	CodeRoleTypeMismatch = "role_type_mismatch"
	// CodePermissionTypeNotAllowed: a role lists a permission whose type is
	// neither the role's type nor a descendant of it.
	CodePermissionTypeNotAllowed = "permission_type_not_allowed"
)

// Entity kinds: the first word of Problem.Entity.
const (
	KindDataset      = "dataset" // the Dataset itself (e.g. its MaxDepth)
	KindOrganization = "organization"
	KindMembership   = "membership"
	KindResourceType = "resource_type"
	KindPermission   = "permission"
	KindRole         = "role"
	KindResource     = "resource"
	KindAssignment   = "assignment"
	KindGroup        = "group"
	KindGroupMember  = "group_member"
)

// maxShownProblems bounds the problems ValidationError.Error spells out.
const maxShownProblems = 20

// Problem is one broken rule in a Dataset.
type Problem struct {
	// Entity names the offending entity as "<kind> <id>": one of the Kind
	// constants, then the organization, membership, resource or assignment
	// id, the resource type or permission slug, or Role.Key() of a role
	// ("role workspace-admin", "role org_acme/billing-admin"). When the id
	// is empty it is "<kind> #<index>" instead; KindDataset has no id.
	Entity string
	// Field is the offending field, named as in the entity's JSON form
	// ("parent_id", "permissions"); empty when the problem is the entity as
	// a whole.
	Field string
	// Code is one of the Code constants.
	Code string
	// Message describes the problem for humans, naming the values involved.
	Message string
	// Index is the entity's position in its Dataset slice (Resources for
	// KindResource, and so on), or -1 for KindDataset.
	Index int
	// Line is the 1-based line of the entity in the source file, or 0 when
	// unknown. Validate never sets it; data-file loaders may.
	Line int
	// Organizations are the organizations whose data the problem is in,
	// sorted: the entity's own, and the other one's of a link or a
	// duplicate id that joins two. Empty means the problem is in data every
	// organization shares (resource types, permissions, environment roles,
	// the dataset itself) or in an entity of no known organization. See
	// Dataset.Attribute.
	Organizations []string
}

// String formats the problem as "[line N: ]entity: field: message (code)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	b.WriteString(p.Entity)
	if p.Field != "" {
		b.WriteString(": ")
		b.WriteString(p.Field)
	}
	fmt.Fprintf(&b, ": %s (%s)", p.Message, p.Code)
	return b.String()
}

// ValidationError is the error Validate returns: every problem found, in a
// deterministic order. Use errors.As to get it from a wrapped error.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line after the first, spelling out at
// most 20 of them and counting the rest.
func (e *ValidationError) Error() string {
	var b strings.Builder
	switch n := len(e.Problems); n {
	case 0:
		return "invalid dataset"
	case 1:
		b.WriteString("invalid dataset: ")
		b.WriteString(e.Problems[0].String())
	default:
		fmt.Fprintf(&b, "invalid dataset: %d problems:", n)
		for i, p := range e.Problems {
			if i == maxShownProblems {
				fmt.Fprintf(&b, "\n\tand %d more", n-i)
				break
			}
			b.WriteString("\n\t")
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// ResolveRole returns the role that slug names in organization orgID: the
// organization role of that slug if orgID has one, else the environment role
// of that slug. The returned Role shares its Permissions with d. It scans
// d.Roles, so it costs O(len(d.Roles)); use NewRoleIndex for many lookups.
func (d *Dataset) ResolveRole(orgID, slug string) (Role, bool) {
	return NewRoleIndex(d.Roles).Resolve(orgID, slug)
}

// RoleIndex resolves role slugs in constant time. Build it with
// NewRoleIndex; it is safe for concurrent use once built and does not see
// later changes to the roles it was built from.
type RoleIndex struct {
	env map[string]Role // slug → environment role
	org map[string]Role // RoleKey(org, slug) → organization role
}

// NewRoleIndex indexes roles. When two roles share a key (which Validate
// reports as a problem) the first wins.
func NewRoleIndex(roles []Role) *RoleIndex {
	x := &RoleIndex{env: make(map[string]Role), org: make(map[string]Role)}
	for _, r := range roles {
		m := x.env
		if r.OrganizationID != "" {
			m = x.org
		}
		if _, dup := m[r.Key()]; !dup {
			m[r.Key()] = r
		}
	}
	return x
}

// Resolve returns the role slug names in organization orgID: the
// organization's own role first, then the environment role.
func (x *RoleIndex) Resolve(orgID, slug string) (Role, bool) {
	if orgID != "" {
		if r, ok := x.org[RoleKey(orgID, slug)]; ok {
			return r, true
		}
	}
	r, ok := x.env[slug]
	return r, ok
}

// Validate checks every rule of the data model (DESIGN.md §1) and returns
// nil, or a *ValidationError listing every problem found, each attributed
// to its organizations (Attribute). It does not modify d. It runs in O(n log n) time and O(n) memory in the size of d, without
// recursion, so it is fit for millions of resources.
//
// Rules, by entity:
//   - every string field is text CheckText accepts: valid UTF-8 without a
//     NUL byte.
//   - ids and slugs are non-empty and unique per kind; organization root
//     resource ids (Organization.RootID) are unique and no resource uses one.
//   - resource types: slug is not "organization"; parent types are at least
//     one, each "organization" or a declared type; the type graph is acyclic.
//   - permissions: resource type is "organization" or a declared type.
//   - roles: environment role slugs are unique; an organization role's
//     organization exists, its slug is unique in it and is not an
//     environment role's; resource type known; every permission exists and
//     its type is the role's type or a descendant of it.
//   - memberships: organization exists; status is active, inactive or
//     pending; every role slug resolves (ResolveRole) to a role of type
//     organization.
//   - resources: organization exists; type declared (not "organization");
//     external_id non-empty and unique per (organization, type); the parent
//     (ParentID "" = the organization root, or a resource id, or a root id)
//     exists, is in the same organization and of an allowed parent type;
//     parent links have no cycle; depth (root = 1) ≤ d.Depth().
//   - assignments: membership and resource (or root) exist, in the same
//     organization; the role resolves in the membership's organization and
//     its resource type is the resource's type; (membership, role, resource)
//     is unique.
func (d *Dataset) Validate() error { return d.validate(false) }

// ValidateKnownText is Validate for a dataset whose every string is known
// to be text (CheckText), as a JSON data file's are once its bytes passed
// the decoder's check: it does not check them again.
func (d *Dataset) ValidateKnownText() error { return d.validate(true) }

func (d *Dataset) validate(knownText bool) error {
	v := &validator{d: d, knownText: knownText}
	if d.MaxDepth < 0 {
		v.add(KindDataset, "", -1, "max_depth", CodeInvalid, "max_depth %d is negative (0 means the default, %d)", d.MaxDepth, DefaultMaxDepth)
	}
	v.texts()
	v.organizations()
	v.resourceTypes()
	v.permissions()
	v.roles()
	v.defaultRole()
	v.memberships()
	v.resources()
	v.groups()
	v.assignments()
	if len(v.problems) == 0 {
		return nil
	}
	d.Attribute(v.problems)
	return &ValidationError{Problems: v.problems}
}

// validator holds the indexes Validate builds as it goes. Each map holds the
// first entity of a key only, so later checks resolve references the same
// way whatever duplicates exist.
type validator struct {
	d         *Dataset
	problems  []Problem
	knownText bool // every string is text: see ValidateKnownText

	orgs        map[string]string // organization id → its root resource id
	rootOrgs    map[string]string // root resource id → organization id
	types       map[string]int    // declared resource type slug → index
	parents     map[string][]string
	descMemo    map[[2]string]bool
	perms       map[string]string // permission slug → resource type
	envRoles    map[string]int    // slug → index in d.Roles
	orgRoles    map[[2]string]int // {organization, slug} → index in d.Roles
	memberIdx   map[string]int    // membership id → index
	resourceIdx map[string]int    // resource id → index
	groupIdx    map[string]int    // group id → index
}

func (v *validator) add(kind, id string, index int, field, code, format string, args ...any) {
	entity := kind
	switch {
	case kind == KindDataset:
	case id == "":
		entity = fmt.Sprintf("%s #%d", kind, index)
	default:
		entity = kind + " " + id
	}
	v.problems = append(v.problems, Problem{
		Entity:  entity,
		Field:   field,
		Code:    code,
		Message: fmt.Sprintf(format, args...),
		Index:   index,
	})
}

// typeKnown reports whether t is the organization type or a declared type.
func (v *validator) typeKnown(t string) bool {
	if t == OrganizationType {
		return true
	}
	_, ok := v.types[t]
	return ok
}

func (v *validator) organizations() {
	orgs := v.d.Organizations
	v.orgs = make(map[string]string, len(orgs))
	v.rootOrgs = make(map[string]string, len(orgs))
	for i, o := range orgs {
		if o.ID == "" {
			v.add(KindOrganization, "", i, "id", CodeInvalid, "id is required")
			continue
		}
		if _, dup := v.orgs[o.ID]; dup {
			v.add(KindOrganization, o.ID, i, "id", CodeDuplicate, "organization id %q is used more than once", o.ID)
			continue
		}
		root := o.RootID()
		v.orgs[o.ID] = root
		if other, dup := v.rootOrgs[root]; dup {
			v.add(KindOrganization, o.ID, i, "root_resource_id", CodeDuplicate, "root resource id %q is also the root of organization %q", root, other)
			continue
		}
		v.rootOrgs[root] = o.ID
	}
}

func (v *validator) resourceTypes() {
	types := v.d.ResourceTypes
	v.types = make(map[string]int, len(types))
	v.parents = make(map[string][]string, len(types))
	v.descMemo = make(map[[2]string]bool)
	for i, t := range types {
		switch _, dup := v.types[t.Slug]; {
		case t.Slug == "":
			v.add(KindResourceType, "", i, "slug", CodeInvalid, "slug is required")
		case t.Slug == OrganizationType:
			v.add(KindResourceType, t.Slug, i, "slug", CodeInvalid, "slug %q is reserved for the implicit root type", t.Slug)
		case dup:
			v.add(KindResourceType, t.Slug, i, "slug", CodeDuplicate, "resource type slug %q is used more than once", t.Slug)
		default:
			v.types[t.Slug] = i
		}
	}
	for i, t := range types {
		if j, ok := v.types[t.Slug]; !ok || j != i {
			continue // reported above
		}
		if len(t.ParentTypes) == 0 {
			v.add(KindResourceType, t.Slug, i, "parent_types", CodeInvalid, "at least one parent type is required (%q for top-level types)", OrganizationType)
		}
		seen := make(map[string]bool, len(t.ParentTypes))
		for _, p := range t.ParentTypes {
			switch {
			case seen[p]:
				v.add(KindResourceType, t.Slug, i, "parent_types", CodeDuplicate, "parent type %q is listed more than once", p)
			case !v.typeKnown(p):
				v.add(KindResourceType, t.Slug, i, "parent_types", CodeUnknownReference, "unknown parent type %q", p)
			default:
				seen[p] = true
				if p != OrganizationType {
					v.parents[t.Slug] = append(v.parents[t.Slug], p)
				}
			}
		}
	}
	v.typeCycles()
}

// typeCycles reports each cycle of the type graph once, by an iterative
// depth-first search over the declared parent edges.
func (v *validator) typeCycles() {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(v.types))
	type frame struct {
		slug string
		next int // index of the next parent edge to follow
	}
	var stack []frame
	for _, t := range v.d.ResourceTypes {
		if _, ok := v.types[t.Slug]; !ok || color[t.Slug] != white {
			continue
		}
		color[t.Slug] = grey
		stack = append(stack[:0], frame{slug: t.Slug})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			ps := v.parents[top.slug]
			if top.next == len(ps) {
				color[top.slug] = black
				stack = stack[:len(stack)-1]
				continue
			}
			p := ps[top.next]
			top.next++
			switch color[p] {
			case white:
				color[p] = grey
				stack = append(stack, frame{slug: p})
			case grey:
				// Back edge: each stack entry has the next as a parent
				// type, and top has p, so the cycle is top → p → … → top.
				from := top.slug
				chain := []string{from}
				for k := slices.IndexFunc(stack, func(f frame) bool { return f.slug == p }); k < len(stack); k++ {
					chain = append(chain, stack[k].slug)
				}
				v.add(KindResourceType, from, v.types[from], "parent_types", CodeCycle,
					"parent types form a cycle (each type lists the next as a parent type): %s", cycleString(chain))
			}
		}
	}
}

// descends reports whether resource type t is anc or a descendant of anc in
// the type graph. Every type descends from the organization type.
func (v *validator) descends(t, anc string) bool {
	if t == anc || anc == OrganizationType {
		return true
	}
	key := [2]string{t, anc}
	if r, ok := v.descMemo[key]; ok {
		return r
	}
	found := false
	seen := map[string]bool{t: true}
	queue := []string{t}
	for len(queue) > 0 && !found {
		cur := queue[0]
		queue = queue[1:]
		for _, p := range v.parents[cur] {
			if p == anc {
				found = true
				break
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	v.descMemo[key] = found
	return found
}

func (v *validator) permissions() {
	perms := v.d.Permissions
	v.perms = make(map[string]string, len(perms))
	for i, p := range perms {
		if p.Slug == "" {
			v.add(KindPermission, "", i, "slug", CodeInvalid, "slug is required")
			continue
		}
		if _, dup := v.perms[p.Slug]; dup {
			v.add(KindPermission, p.Slug, i, "slug", CodeDuplicate, "permission slug %q is used more than once", p.Slug)
			continue
		}
		v.perms[p.Slug] = p.ResourceType
		switch {
		case p.ResourceType == "":
			v.add(KindPermission, p.Slug, i, "resource_type", CodeInvalid, "resource_type is required")
		case !v.typeKnown(p.ResourceType):
			v.add(KindPermission, p.Slug, i, "resource_type", CodeUnknownReference, "unknown resource type %q", p.ResourceType)
		}
	}
}

func (v *validator) roles() {
	roles := v.d.Roles
	v.envRoles = make(map[string]int)
	v.orgRoles = make(map[[2]string]int)
	registered := make([]bool, len(roles))
	// Environment roles first: an organization role may not reuse their
	// slugs, wherever they appear in the slice.
	for i, r := range roles {
		if r.OrganizationID != "" {
			continue
		}
		switch _, dup := v.envRoles[r.Slug]; {
		case r.Slug == "":
			v.add(KindRole, "", i, "slug", CodeInvalid, "slug is required")
		case dup:
			v.add(KindRole, r.Key(), i, "slug", CodeDuplicate, "environment role slug %q is used more than once", r.Slug)
		default:
			v.envRoles[r.Slug] = i
			registered[i] = true
		}
	}
	for i, r := range roles {
		if r.OrganizationID == "" {
			continue
		}
		if r.Slug == "" {
			v.add(KindRole, "", i, "slug", CodeInvalid, "slug is required")
			continue
		}
		if _, ok := v.orgs[r.OrganizationID]; !ok {
			v.add(KindRole, r.Key(), i, "organization_id", CodeUnknownReference, "unknown organization %q", r.OrganizationID)
		}
		if _, clash := v.envRoles[r.Slug]; clash {
			v.add(KindRole, r.Key(), i, "slug", CodeDuplicate, "organization role slug %q is already an environment role's", r.Slug)
			continue
		}
		if _, dup := v.orgRoles[[2]string{r.OrganizationID, r.Slug}]; dup {
			v.add(KindRole, r.Key(), i, "slug", CodeDuplicate, "role slug %q is used more than once in organization %q", r.Slug, r.OrganizationID)
			continue
		}
		v.orgRoles[[2]string{r.OrganizationID, r.Slug}] = i
		registered[i] = true
	}
	for i, r := range roles {
		if !registered[i] {
			continue
		}
		typeOK := false
		switch {
		case r.ResourceType == "":
			v.add(KindRole, r.Key(), i, "resource_type", CodeInvalid, "resource_type is required")
		case !v.typeKnown(r.ResourceType):
			v.add(KindRole, r.Key(), i, "resource_type", CodeUnknownReference, "unknown resource type %q", r.ResourceType)
		default:
			typeOK = true
		}
		seen := make(map[string]bool, len(r.Permissions))
		for _, p := range r.Permissions {
			pt, ok := v.perms[p]
			switch {
			case seen[p]:
				v.add(KindRole, r.Key(), i, "permissions", CodeDuplicate, "permission %q is listed more than once", p)
			case !ok:
				v.add(KindRole, r.Key(), i, "permissions", CodeUnknownReference, "unknown permission %q", p)
			case typeOK && v.typeKnown(pt) && !v.descends(pt, r.ResourceType):
				v.add(KindRole, r.Key(), i, "permissions", CodePermissionTypeNotAllowed,
					"permission %q is on type %q, which is neither the role's type %q nor a descendant of it", p, pt, r.ResourceType)
			}
			seen[p] = true
		}
	}
}

func (v *validator) defaultRole() {
	slug := v.d.DefaultRole
	if slug == "" {
		return
	}
	i, ok := v.envRoles[slug]
	switch {
	case !ok:
		v.add(KindDataset, "", -1, "default_role", CodeUnknownReference, "default_role %q is not an environment role", slug)
	case v.d.Roles[i].ResourceType != OrganizationType:
		v.add(KindDataset, "", -1, "default_role", CodeInvalid,
			"default_role %q is a %s role; the default role must be an organization-level role", slug, v.d.Roles[i].ResourceType)
	}
}

// resolveRole is ResolveRole on the validator's indexes.
func (v *validator) resolveRole(orgID, slug string) (Role, bool) {
	if orgID != "" {
		if i, ok := v.orgRoles[[2]string{orgID, slug}]; ok {
			return v.d.Roles[i], true
		}
	}
	if i, ok := v.envRoles[slug]; ok {
		return v.d.Roles[i], true
	}
	return Role{}, false
}

func (v *validator) memberships() {
	ms := v.d.Memberships
	v.memberIdx = make(map[string]int, len(ms))
	for i, m := range ms {
		if m.ID == "" {
			v.add(KindMembership, "", i, "id", CodeInvalid, "id is required")
		} else if _, dup := v.memberIdx[m.ID]; dup {
			v.add(KindMembership, m.ID, i, "id", CodeDuplicate, "membership id %q is used more than once", m.ID)
			continue
		} else {
			v.memberIdx[m.ID] = i
		}
		if m.UserID == "" {
			v.add(KindMembership, m.ID, i, "user_id", CodeInvalid, "user_id is required")
		}
		orgOK := false
		switch _, ok := v.orgs[m.OrganizationID]; {
		case m.OrganizationID == "":
			v.add(KindMembership, m.ID, i, "organization_id", CodeInvalid, "organization_id is required")
		case !ok:
			v.add(KindMembership, m.ID, i, "organization_id", CodeUnknownReference, "unknown organization %q", m.OrganizationID)
		default:
			orgOK = true
		}
		switch m.Status {
		case StatusActive, StatusInactive, StatusPending:
		default:
			v.add(KindMembership, m.ID, i, "status", CodeInvalid, "status %q is not one of %q, %q, %q", m.Status, StatusActive, StatusInactive, StatusPending)
		}
		seen := make(map[string]bool, len(m.RoleSlugs))
		for _, slug := range m.RoleSlugs {
			if seen[slug] {
				v.add(KindMembership, m.ID, i, "role_slugs", CodeDuplicate, "role %q is listed more than once", slug)
				continue
			}
			seen[slug] = true
			if !orgOK {
				continue
			}
			r, ok := v.resolveRole(m.OrganizationID, slug)
			switch {
			case !ok:
				v.add(KindMembership, m.ID, i, "role_slugs", CodeUnknownReference, "unknown role %q in organization %q", slug, m.OrganizationID)
			case r.ResourceType != OrganizationType:
				v.add(KindMembership, m.ID, i, "role_slugs", CodeRoleTypeMismatch,
					"role %q is of resource type %q; organization roles must be of type %q", slug, r.ResourceType, OrganizationType)
			}
		}
	}
}

// Parent link markers in validator.resources.
const (
	parentRoot    = -1 // the organization root: depth 1
	parentInvalid = -2 // unknown or broken: depth unknown, not reported again
)

func (v *validator) resources() {
	rs := v.d.Resources
	v.resourceIdx = make(map[string]int, len(rs))
	extRepeats := repeats(len(rs), func(i int) bool { return rs[i].ExternalID != "" },
		func(h *maphash.Hash, i int) { writeStrings(h, rs[i].OrganizationID, rs[i].Type, rs[i].ExternalID) },
		func(i, j int) bool {
			return rs[i].OrganizationID == rs[j].OrganizationID && rs[i].Type == rs[j].Type && rs[i].ExternalID == rs[j].ExternalID
		})
	typeOK := make([]bool, len(rs))
	again := make([]bool, len(rs)) // a later entry of an id used before
	for i, r := range rs {
		switch _, dup := v.resourceIdx[r.ID]; {
		case r.ID == "":
			v.add(KindResource, "", i, "id", CodeInvalid, "id is required")
		case dup:
			again[i] = true
			v.add(KindResource, r.ID, i, "id", CodeDuplicate, "resource id %q is used more than once", r.ID)
		case v.rootOrgs[r.ID] != "":
			v.add(KindResource, r.ID, i, "id", CodeDuplicate, "resource id %q is the root resource id of organization %q", r.ID, v.rootOrgs[r.ID])
		default:
			v.resourceIdx[r.ID] = i
		}
		if _, ok := v.orgs[r.OrganizationID]; !ok {
			if r.OrganizationID == "" {
				v.add(KindResource, r.ID, i, "organization_id", CodeInvalid, "organization_id is required")
			} else {
				v.add(KindResource, r.ID, i, "organization_id", CodeUnknownReference, "unknown organization %q", r.OrganizationID)
			}
		}
		switch _, ok := v.types[r.Type]; {
		case r.Type == "":
			v.add(KindResource, r.ID, i, "type", CodeInvalid, "type is required")
		case r.Type == OrganizationType:
			v.add(KindResource, r.ID, i, "type", CodeInvalid, "resources of type %q are implied by organizations and may not be listed", OrganizationType)
		case !ok:
			v.add(KindResource, r.ID, i, "type", CodeUnknownReference, "unknown resource type %q", r.Type)
		default:
			typeOK[i] = true
		}
		if r.ExternalID == "" {
			v.add(KindResource, r.ID, i, "external_id", CodeInvalid, "external_id is required")
		} else {
			if extRepeats[i] {
				v.add(KindResource, r.ID, i, "external_id", CodeDuplicate,
					"external_id %q is used by another resource of type %q in organization %q", r.ExternalID, r.Type, r.OrganizationID)
			}
		}
	}

	// Resolve each parent link to an index, parentRoot or parentInvalid.
	parent := make([]int, len(rs))
	for i, r := range rs {
		parent[i] = parentInvalid
		if again[i] {
			continue // a duplicate: its links would be ambiguous
		}
		var pOrg, pType string
		if r.ParentID == "" {
			parent[i] = parentRoot
			pOrg, pType = r.OrganizationID, OrganizationType
		} else if org, ok := v.rootOrgs[r.ParentID]; ok {
			parent[i] = parentRoot
			pOrg, pType = org, OrganizationType
		} else if j, ok := v.resourceIdx[r.ParentID]; ok {
			parent[i] = j
			pOrg, pType = rs[j].OrganizationID, rs[j].Type
		} else {
			v.add(KindResource, r.ID, i, "parent_id", CodeUnknownReference, "unknown parent resource %q", r.ParentID)
			continue
		}
		if _, known := v.orgs[r.OrganizationID]; known && pOrg != r.OrganizationID {
			v.add(KindResource, r.ID, i, "parent_id", CodeCrossOrganization,
				"parent %q is in organization %q, not %q", r.ParentID, pOrg, r.OrganizationID)
			parent[i] = parentInvalid
			continue
		}
		if typeOK[i] && !slices.Contains(v.d.ResourceTypes[v.types[r.Type]].ParentTypes, pType) {
			what := fmt.Sprintf("parent %q", r.ParentID)
			if r.ParentID == "" {
				what = "the organization root (the default parent)"
			}
			v.add(KindResource, r.ID, i, "parent_id", CodeParentTypeNotAllowed,
				"%s is of type %q; resources of type %q may only be placed under %s", what, pType, r.Type, quoteList(v.d.ResourceTypes[v.types[r.Type]].ParentTypes))
		}
	}
	v.resourceDepths(parent)
}

// resourceDepths finds parent-link cycles and resources deeper than the
// maximum depth. Each resource is pushed on the walk stack once, so the
// whole pass is O(n) however deep or shuffled the trees are.
func (v *validator) resourceDepths(parent []int) {
	const (
		unseen = iota
		onPath
		done
	)
	rs := v.d.Resources
	limit := v.d.Depth()
	state := make([]uint8, len(rs))
	depth := make([]int, len(rs)) // 0 = unknown (under a cycle or a broken link)
	var path []int
	for i := range rs {
		if state[i] != unseen {
			continue
		}
		path = path[:0]
		base := 0 // depth of the node above the top of path; 0 = unknown
		for j := i; ; {
			if state[j] == done {
				base = depth[j]
				break
			}
			if state[j] == onPath {
				start := slices.Index(path, j)
				cycle := path[start:]
				ids := make([]string, 0, min(len(cycle), maxCycleShown)+2)
				for _, n := range cycle[:min(len(cycle), maxCycleShown)] {
					ids = append(ids, rs[n].ID)
				}
				if len(cycle) > maxCycleShown {
					ids = append(ids, fmt.Sprintf("(%d more)", len(cycle)-maxCycleShown))
				}
				ids = append(ids, rs[j].ID)
				v.add(KindResource, rs[j].ID, j, "parent_id", CodeCycle, "parent links form a cycle: %s", strings.Join(ids, " → "))
				for _, n := range cycle {
					state[n] = done
				}
				break
			}
			state[j] = onPath
			path = append(path, j)
			p := parent[j]
			if p == parentRoot {
				base = 1
				break
			}
			if p == parentInvalid {
				break
			}
			j = p
		}
		for k := len(path) - 1; k >= 0; k-- {
			n := path[k]
			if state[n] == done {
				continue // on a cycle
			}
			state[n] = done
			if base != 0 {
				base++
			}
			depth[n] = base
			// Report only the shallowest offenders: their descendants are
			// too deep for the same reason.
			if base == limit+1 {
				v.add(KindResource, rs[n].ID, n, "parent_id", CodeDepthExceeded,
					"resource is at depth %d (the organization root is 1), deeper than the maximum %d; so is everything below it", base, limit)
			}
		}
	}
}

func (v *validator) assignments() {
	as := v.d.Assignments
	idRepeats := repeats(len(as), nil, func(h *maphash.Hash, i int) { h.WriteString(as[i].ID) },
		func(i, j int) bool { return as[i].ID == as[j].ID })
	// A repeated id's entry is not checked further, as if it were not there.
	tripleRepeats := repeats(len(as), func(i int) bool { return as[i].ID == "" || !idRepeats[i] },
		func(h *maphash.Hash, i int) { writeStrings(h, as[i].Principal(), as[i].RoleSlug, as[i].ResourceID) },
		func(i, j int) bool {
			return as[i].Principal() == as[j].Principal() && as[i].RoleSlug == as[j].RoleSlug && as[i].ResourceID == as[j].ResourceID
		})
	// Each assignment's checks only read the validator's indexes, so they
	// run in parallel: a part of the list a goroutine, with problems of its
	// own, appended in list order.
	parts := make([]validator, min(runtime.GOMAXPROCS(0), max(1, len(as)/minPart)))
	var wg sync.WaitGroup
	for p := range parts {
		parts[p] = *v
		parts[p].problems = nil
		wg.Go(func() {
			for i := p * len(as) / len(parts); i < (p+1)*len(as)/len(parts); i++ {
				parts[p].assignment(i, as[i], idRepeats[i], tripleRepeats[i])
			}
		})
	}
	wg.Wait()
	for _, part := range parts {
		v.problems = append(v.problems, part.problems...)
	}
}

// minPart is the fewest entries worth a goroutine of their own.
const minPart = 1 << 14

// assignment checks assignment a, entry i, whose id repeats an earlier
// entry's (idRepeat) or whose principal, role and resource do (tripleRepeat).
func (v *validator) assignment(i int, a Assignment, idRepeat, tripleRepeat bool) {
	switch {
	case a.ID == "":
		v.add(KindAssignment, "", i, "id", CodeInvalid, "id is required")
	case idRepeat:
		v.add(KindAssignment, a.ID, i, "id", CodeDuplicate, "assignment id %q is used more than once", a.ID)
		return
	}

	var mOrg string
	if gi, ok := v.groupIdx[a.GroupID]; ok && a.MembershipID == "" {
		mOrg = v.d.Groups[gi].OrganizationID
	} else if a.GroupID != "" && a.MembershipID != "" {
		v.add(KindAssignment, a.ID, i, "group_id", CodeInvalid, "an assignment names a membership or a group, not both")
	} else if a.GroupID != "" {
		v.add(KindAssignment, a.ID, i, "group_id", CodeUnknownReference, "unknown group %q", a.GroupID)
	} else if mi, ok := v.memberIdx[a.MembershipID]; ok {
		mOrg = v.d.Memberships[mi].OrganizationID
	} else if a.MembershipID == "" {
		v.add(KindAssignment, a.ID, i, "membership_id", CodeInvalid, "membership_id is required")
	} else {
		v.add(KindAssignment, a.ID, i, "membership_id", CodeUnknownReference, "unknown membership %q", a.MembershipID)
	}

	var resOrg, resType string
	if org, ok := v.rootOrgs[a.ResourceID]; ok {
		resOrg, resType = org, OrganizationType
	} else if ri, ok := v.resourceIdx[a.ResourceID]; ok {
		resOrg, resType = v.d.Resources[ri].OrganizationID, v.d.Resources[ri].Type
	} else if a.ResourceID == "" {
		v.add(KindAssignment, a.ID, i, "resource_id", CodeInvalid, "resource_id is required")
	} else {
		v.add(KindAssignment, a.ID, i, "resource_id", CodeUnknownReference, "unknown resource %q", a.ResourceID)
	}

	if mOrg != "" && resOrg != "" && mOrg != resOrg {
		v.add(KindAssignment, a.ID, i, "resource_id", CodeCrossOrganization,
			"resource %q is in organization %q but %s %q is in %q", a.ResourceID, resOrg, principalKind(a), a.Principal(), mOrg)
	}

	org := mOrg
	if org == "" {
		org = resOrg
	}
	switch r, ok := v.resolveRole(org, a.RoleSlug); {
	case a.RoleSlug == "":
		v.add(KindAssignment, a.ID, i, "role", CodeInvalid, "role is required")
	case !ok && org != "":
		v.add(KindAssignment, a.ID, i, "role", CodeUnknownReference, "unknown role %q in organization %q", a.RoleSlug, org)
	case !ok:
		v.add(KindAssignment, a.ID, i, "role", CodeUnknownReference, "unknown role %q", a.RoleSlug)
	case resType != "" && r.ResourceType != resType:
		v.add(KindAssignment, a.ID, i, "role", CodeRoleTypeMismatch,
			"role %q is of resource type %q but resource %q is of type %q", a.RoleSlug, r.ResourceType, a.ResourceID, resType)
	}

	if tripleRepeat {
		v.add(KindAssignment, a.ID, i, "", CodeDuplicate,
			"%s %q already has role %q on resource %q", principalKind(a), a.Principal(), a.RoleSlug, a.ResourceID)
	}
}

// principalKind names who assignment a grants: "membership" or "group".
func principalKind(a Assignment) string {
	if a.MembershipID == "" && a.GroupID != "" {
		return KindGroup
	}
	return KindMembership
}

// groups checks groups and their members: a group's id is unique and its
// organization exists; a member is a membership of the group's
// organization, listed once.
func (v *validator) groups() {
	v.groupIdx = make(map[string]int, len(v.d.Groups))
	for i, g := range v.d.Groups {
		_, dup := v.groupIdx[g.ID]
		switch {
		case g.ID == "":
			v.add(KindGroup, "", i, "id", CodeInvalid, "id is required")
			continue
		case dup:
			v.add(KindGroup, g.ID, i, "id", CodeDuplicate, "group id %q is used more than once", g.ID)
			continue
		}
		v.groupIdx[g.ID] = i
		if _, ok := v.orgs[g.OrganizationID]; !ok {
			v.add(KindGroup, g.ID, i, "organization_id", CodeUnknownReference, "unknown organization %q", g.OrganizationID)
		}
		if g.Name == "" {
			v.add(KindGroup, g.ID, i, "name", CodeInvalid, "name is required")
		}
	}
	seen := make(map[GroupMember]bool, len(v.d.GroupMembers))
	for i, gm := range v.d.GroupMembers {
		id := gm.GroupID + " " + gm.MembershipID
		gi, gok := v.groupIdx[gm.GroupID]
		mi, mok := v.memberIdx[gm.MembershipID]
		switch {
		case !gok:
			v.add(KindGroupMember, id, i, "group_id", CodeUnknownReference, "unknown group %q", gm.GroupID)
		case !mok:
			v.add(KindGroupMember, id, i, "membership_id", CodeUnknownReference, "unknown membership %q", gm.MembershipID)
		case v.d.Groups[gi].OrganizationID != v.d.Memberships[mi].OrganizationID:
			v.add(KindGroupMember, id, i, "membership_id", CodeCrossOrganization,
				"membership %q is in organization %q but group %q is in %q", gm.MembershipID, v.d.Memberships[mi].OrganizationID, gm.GroupID, v.d.Groups[gi].OrganizationID)
		case seen[gm]:
			v.add(KindGroupMember, id, i, "", CodeDuplicate, "membership %q is already a member of group %q", gm.MembershipID, gm.GroupID)
		}
		seen[gm] = true
	}
}

// maxCycleShown bounds the members of a cycle that a message spells out.
const maxCycleShown = 6

// cycleString joins a closed chain a, b, …, a, eliding the middle of a long one.
func cycleString(chain []string) string {
	if len(chain) <= maxCycleShown+1 {
		return strings.Join(chain, " → ")
	}
	short := append(slices.Clone(chain[:maxCycleShown]), fmt.Sprintf("(%d more)", len(chain)-1-maxCycleShown), chain[len(chain)-1])
	return strings.Join(short, " → ")
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
