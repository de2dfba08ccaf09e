# METADATA
# title: Minimal hierarchical RBAC, written by hand
# description: |
#   The rule a team would write for itself on stock OPA, which `trellis bench
#   http` loads as the system opa-minimal to measure Trellis against: a
#   boolean allow and no explanation. A verified session token allows by its
#   own permissions in its organization; otherwise the token's membership
#   must be active, of the resource's organization, and hold a role with the
#   permission on the resource or one of its ancestors. It is not part of
#   Trellis (no bundle ships it). Data, a plain data.json (internal/loadtest
#   WriteMinimal): issuer, jwks (a JWKS as a string), resources[id] =
#   {organization, parent} (roots have no parent), memberships[id] =
#   {organization, active}, role_assignments[membership] = [{role,
#   resource}] (a membership's organization roles are assignments on the
#   organization root) and roles[role] = [permission]. Input: token (the raw
#   JWT), permission, resource (an id).
package baseline

# claims are the payload of input.token when its RS256 signature verifies
# against data.jwks, its issuer is data.issuer and it has not expired.
claims := payload if {
	[valid, _, payload] := io.jwt.decode_verify(input.token, {"cert": data.jwks, "iss": data.issuer, "alg": "RS256"})
	valid
}

resource := data.resources[input.resource]

# METADATA
# title: allow
# description: Whether input.token may do input.permission on input.resource.
# entrypoint: true
default allow := false

allow if {
	claims.org_id == resource.organization
	input.permission in claims.permissions
}

allow if {
	member := data.memberships[claims.organization_membership_id]
	member.active
	member.organization == resource.organization
	member.organization == claims.org_id
	some grant in data.role_assignments[claims.organization_membership_id]
	grant.resource in lineage
	input.permission in data.roles[grant.role]
}

# lineage is the resource and its ancestors: one rule per level, as deep as
# the deepest tree (6 levels, the organization root included).
lineage contains input.resource if resource

lineage contains level2

lineage contains level3

lineage contains level4

lineage contains level5

lineage contains level6

level2 := resource.parent

level3 := data.resources[level2].parent

level4 := data.resources[level3].parent

level5 := data.resources[level4].parent

level6 := data.resources[level5].parent
