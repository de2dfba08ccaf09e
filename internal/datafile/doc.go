// Package datafile reads Trellis relationship data from a YAML or JSON data
// file: the declarative source for resource types, permissions and roles,
// and the file-backed data source (including the embedded demo, see Demo)
// for organizations, memberships, resources and role assignments.
//
// # Format
//
// A data file is one YAML document (or one JSON object) with these
// top-level keys, all optional; each list may be empty or absent:
//
//	max_depth: 5            # levels in a resource tree, the organization root
//	                        # included; absent or 0 means the default, 5
//	default_role: member    # the WorkOS-compatible API's default role of
//	                        # memberships (trellis load): an environment role
//	                        # of type organization; absent: none set
//	resource_types:         # the types below the implicit "organization" type
//	  - slug: workspace     # required, unique, not "organization"
//	    name: Workspace
//	    description: …
//	    parent_types: [organization]   # absent means [organization]; each is
//	                                   # "organization" or a declared type, and
//	                                   # the types may not form a cycle
//	permissions:
//	  - slug: "workspace:view"         # required, unique
//	    name: View workspace
//	    description: …
//	    resource_type: workspace       # "organization" or a declared type
//	roles:
//	  - slug: workspace-admin          # required
//	    name: Workspace admin
//	    description: …
//	    resource_type: workspace       # the type of resource it is assigned on
//	    organization_id: org_acme      # absent: an environment role (every
//	                                   # organization); present: that
//	                                   # organization's own role
//	    permissions: ["workspace:view", "project:edit"]  # of the role's type or
//	                                   # of a type below it
//	organizations:
//	  - id: org_acme                   # required, unique
//	    name: Acme Corp
//	    root_resource_id: …            # rarely needed: the root resource's id,
//	                                   # default authz_resource_root_<id>
//	memberships:
//	  - id: om_alice                   # required, unique
//	    user_id: user_alice            # required
//	    organization_id: org_acme
//	    status: active                 # active (default), inactive or pending
//	    roles: [org-admin]             # roles of type organization
//	resources:
//	  - id: authz_resource_acme_eng    # optional, see below
//	    organization_id: org_acme
//	    type: workspace
//	    external_id: acme-eng          # required, unique per organization and type
//	    name: Engineering
//	    description: …
//	    parent: "workspace:acme-eng"   # see below; absent: the organization root
//	assignments:
//	  - id: role_assignment_1          # optional, see below
//	    membership: om_bob
//	    role: workspace-admin          # the role's type must be the resource's
//	    resource: "workspace:acme-eng" # see below
//	  - group: group_platform          # instead of membership: a group role
//	    role: project-editor           # assignment, granting every active
//	    resource: "project:api"        # member of the group
//	groups:                            # groups do not nest
//	  - id: group_platform             # required, unique
//	    organization_id: org_acme
//	    name: Platform Engineering     # required
//	    description: …
//	group_members:                     # a membership of the group's organization,
//	  - group: group_platform          # once per group
//	    membership: om_bob
//
// Unknown keys, keys repeated in one mapping, values of the wrong type and a
// second YAML document are errors that name the line and the key. JSON keys
// match exactly, as YAML keys do.
//
// # References
//
// A resource's parent and an assignment's resource are written as one of:
//
//   - a resource id, e.g. authz_resource_acme_eng (an organization's root
//     resource id too);
//   - type:external_id, e.g. workspace:acme-eng, looked up in the
//     organization of the resource (for a parent) or of the membership (for
//     an assignment);
//   - organization: the organization root. For a parent this is the same as
//     leaving parent out.
//
// Entries may refer to entries further down the file.
//
// A role slug (in a membership's roles or an assignment's role) names the
// organization's own role of that slug if there is one, else the
// environment role.
//
// # Derived ids
//
// A resource without an id gets DeriveResourceID(organization_id, type,
// external_id); an assignment without an id gets DeriveAssignmentID(
// membership, role, resolved resource id). Derived ids are deterministic, so
// reloading the same file yields the same ids.
//
// # Validation
//
// Parse and Load check every rule of the data model (model.Dataset.Validate)
// and report all problems at once as a *model.ValidationError: each
// problem names the entity, the key as written in the file, a code and the
// line of the entry. ParseIsolated and LoadIsolated, for serving a file,
// hold out an organization whose entries break a rule instead
// (model.Dataset.Quarantined), and fail only on problems in what every
// organization shares.
package datafile
