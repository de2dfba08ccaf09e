# METADATA
# title: Trellis authorization
# description: |
#   The two layers of Trellis decisions. A verified token's organization
#   permissions allow at once (token-first rule); otherwise a membership has a
#   permission on a resource iff it is active, belongs to the resource's
#   organization and holds a role containing the permission on the resource or
#   one of its ancestors (decision rule), assigned to it or to a group of
#   its organization it is a member of (groups do not nest). A subject of an organization sees
#   only that organization: another's resources answer exactly as resources
#   that do not exist. An organization whose data breaks a rule is
#   quarantined: its decisions answer organization_unavailable. Data:
#   data.trellis_data, built by internal/index. Input: see README ("Policy
#   input").
package trellis

# The data document is data.trellis_data (internal/index). resources[rid]
# is the array [org, type, external_id, ancestors], ancestors nearest
# first. Rules read it key by key, data.trellis_data.<collection>[key], never
# a whole collection nor the document through a variable: the served store
# (internal/relstore) materializes only what a query reads and refuses a
# whole collection. A value read more than once in a rule is bound to a
# local variable once.

# METADATA
# title: revision
# description: The data revision every answer of this package reflects.
# entrypoint: true
revision := data.trellis_data.revision

# METADATA
# title: check
# description: One decision for input.permission on input.resource.
# entrypoint: true
check := explained(decide(input.permission, input.resource), input.resource) if {
	input.explain == true
} else := decide(input.permission, input.resource)

# METADATA
# title: batch
# description: One decision per element of input.checks, in order.
# entrypoint: true
batch := [decide_each(c) | some c in input.checks]

# decide_each answers every check in place, a malformed one with a deny, so a
# caller reading answers by position never reads another check's answer.
decide_each(c) := decide(c.permission, c.resource) if {
	is_string(c.permission)
	is_object(c.resource)
} else := denied("invalid_check", "a check needs a string permission and a resource object")

# The subject. `input.token` holds claims the host has already verified;
# `input.token_error` says why a token failed verification. The claims are
# trusted only when data.trellis_host.verifies_tokens says a host vouches for
# them: the embedded engine writes it (its Go host verifies every token and
# rejects a client-supplied object), the edge package (trellis.edge) sets it
# with `with` after verifying the raw JWT itself, and bundles never carry it.
# So a client querying this package on a stock OPA cannot allow itself with a
# forged claims object.
token := input.token if {
	is_object(input.token)
	data.trellis_host.verifies_tokens == true
}

membership_id := id if {
	id := input.subject.organization_membership_id
} else := id if {
	id := token.membership_id
	id != ""
}

# subject_org is the organization the subject acts in: the token's, else
# its membership's, a quarantined one's included.
subject_org := token.org_id if {
	token.org_id != ""
} else := org if {
	org := data.trellis_data.memberships[membership_id].org
} else := data.trellis_data.quarantined_memberships[membership_id]

# scoped holds when the subject belongs to an organization, or is a token:
# then only subject_org's resources resolve, and another organization's are
# as unknown as resources that do not exist, so no answer can tell a tenant
# whether another tenant's resource exists (no existence oracle). A request
# without a known subject comes with an API key (a membership subject, the
# membership listing), whose holder may read every organization.
scoped if token

scoped if subject_org

in_scope(org) if org == subject_org

in_scope(_) if not scoped

# quarantined_org(ref) is the quarantined organization a request about ref
# is about, if any: the subject's, or, without a scope, ref's. Quarantined
# organizations' resources are not in data.trellis_data.resources, so nothing of theirs
# resolves, and the decisions that find no resource ask this first.
quarantined_org(ref) := subject_org if {
	is_quarantined(subject_org)
} else := org if {
	not scoped
	org := data.trellis_data.quarantined_resources[ref.id]
} else := org if {
	not scoped
	org := ref_org(ref)
	is_quarantined(org)
}

# is_quarantined(org) holds when organization org is quarantined. A
# function, so that OPA's rule indexer never keys a rule on it: for an
# expression data.trellis_data.quarantined[input.x] (or a local bound to
# an input ref) the indexer reads the whole collection to find the rules
# that may match, which the served store refuses.
is_quarantined(org) if data.trellis_data.quarantined[org]

# unavailable is the answer about a quarantined organization org. The host
# answers it 503 organization_unavailable, not as a deny.
unavailable(org) := {
	"allowed": false,
	"decided_by": "none",
	"reason": {
		"code": "organization_unavailable",
		"organization_id": org,
		"message": sprintf("organization %s is unavailable: its data breaks a rule of the data model; retry later", [org]),
	},
}

# decide answers one check. The allow paths come first and build little;
# the reasons for a deny are worked out only once no grant was found.
decide(perm, ref) := decide_on(perm, rid, org, anc) if {
	not extensions_loaded
	not input.token_error
	known_permission(perm)
	rid := resolve(ref)
	[org, _, _, anc] := data.trellis_data.resources[rid]
} else := object.get({true: extension_denied(min(ds)) | count(ds) > 0}, true, d) if {
	# With extensions: the core's decision d (held to grant conditions,
	# when loaded), unless an extension denies it: then the first of the
	# denials, sorted. Spelled out here, not in functions: a call copies
	# its arguments and result, which on this path, every check's, cost a
	# fifth of the evaluation's allocations.
	extensions_loaded
	not input.token_error
	known_permission(perm)
	rid := resolve(ref)
	[org, typ, ext, anc] := data.trellis_data.resources[rid]
	core := decide_on(perm, rid, org, anc)
	d := object.get({true: held | conditions_loaded; held := held_to_conditions(core, perm, rid)}, true, core)
	ds := {[name, code, message] |
		d.allowed
		x := {
			"permission": perm,
			"resource": {
				"id": rid, "type": typ, "external_id": ext, "organization_id": org,
				"attributes": {k: v | some k, v in data.trellis_data.attributes[rid]},
			},
			"organization": {"id": org, "attributes": {k: v | some k, v in data.trellis_data.org_attributes[org]}},
			"decision": d,
			"subject": {"organization_membership_id": membership_id_or_none},
			"token": extension_token,
			"context": request_context,
		}
		some name in data.trellis.extension_set.names
		some e in data.trellis.ext[name].deny with input as x
		[code, message] := denial_fields(e)
	}
} else := denied(input.token_error.code, input.token_error.message) if {
	input.token_error
} else := unavailable(org) if {
	org := quarantined_org(ref)
} else := denied("unknown_permission", sprintf("permission %q does not exist", [perm])) if {
	not known_permission(perm)
} else := denied("unknown_resource", sprintf("resource %s does not exist", [ref_label(ref)]))

# decide_on decides perm on resource rid of organization org, whose
# ancestors are anc (nearest first).
decide_on(perm, rid, org, anc) := {
	"allowed": true,
	"decided_by": "token",
	"reason": {
		"code": "token_permission",
		"message": concat("", ["the token grants ", perm, " in organization ", org]),
	},
} if {
	token.org_id == org
	perm in token.permissions
} else := granted(perm, anc[i], key, ps[j]) if {
	om := usable_membership(org)
	ps := principals(om, org)
	[i, j, key] := nearest_grant(ps, perm, anc)
} else := denied(code, msg) if {
	[code, msg] := subject_problem
} else := denied("no_grant", sprintf("membership %s holds no role granting %s on %s or its ancestors", [membership_id, perm, label(rid)]))

token_grants(perm, org) if {
	token.org_id == org
	perm in token.permissions
}

# usable_membership(org) is the subject's membership when it may be granted
# anything in org: it exists, is active, belongs to org and, with a token, to
# the token's organization. It reads the membership's fields, not its entry
# (whose anchors may be long).
usable_membership(org) := membership_id if {
	data.trellis_data.memberships[membership_id].org == org
	data.trellis_data.memberships[membership_id].active
	not token_mismatch(org)
}

# token_mismatch(org) holds when a token names another organization than
# org, that of the subject's membership.
token_mismatch(org) if org != token.org_id

# subject_problem is defined, as [code, message], when the subject cannot be
# granted anything from data. (A known membership of another organization
# than the resource's never gets here: that resource does not resolve for
# it.)
subject_problem := ["no_membership", "no membership subject and the token does not grant the permission"] if {
	not membership_id
} else := ["unknown_membership", sprintf("membership %s does not exist", [membership_id])] if {
	not data.trellis_data.memberships[membership_id].org
} else := ["token_membership_mismatch", sprintf("the token's membership %s does not belong to its organization %s", [membership_id, token.org_id])] if {
	token_mismatch(data.trellis_data.memberships[membership_id].org)
} else := ["membership_inactive", sprintf("membership %s is not active", [membership_id])] if {
	not data.trellis_data.memberships[membership_id].active
}

# principals(om, org) are whose grants membership om holds: om itself
# first, then each group of organization org om is a member of, sorted.
# Groups do not nest, so this is one keyed lookup and one per group; a
# group's members are never read. A group of another organization, or
# one deleted (no entry in groups), grants nothing.
principals(om, org) := array.concat([om], [g |
	some g in data.trellis_data.member_groups[om]
	data.trellis_data.groups[g].org == org
])

# nearest_grant is [i, j, key]: the role key of a grant giving principal
# ps[j] perm on anc[i], the nearest such anchor along the ancestor chain
# anc, the membership's own grant (j = 0) before a group's. (Extensions'
# grant conditions are applied after: extensions.rego.)
nearest_grant(ps, perm, anc) := min([[i, j, key] |
	some i, anchor in anc
	some j, p in ps
	some key in data.trellis_data.grants[anchor][p]
	data.trellis_data.roles[key].permissions[perm]
])

# granted is the allow of role key on rid for perm, assigned to principal
# p: the subject's membership, or a group, which the reason then names.
granted(perm, rid, key, p) := {
	"allowed": true,
	"decided_by": "assignment",
	"reason": object.union(
		{
			"code": "role_assignment",
			"role": role,
			"resource": {"id": rid, "type": typ, "external_id": ext, "organization_id": org},
			"message": concat("", ["role ", role, " on ", typ, ":", ext, via, " grants ", perm]),
		},
		group,
	),
} if {
	role := data.trellis_data.roles[key].slug
	[org, typ, ext, _] := data.trellis_data.resources[rid]
	[via, group] := via_group(p)
}

# via_group(p) is [the explanation's words, the reason's group field] for
# a grant to principal p: nothing for the membership itself.
via_group(p) := [concat("", [" via group ", name]), {"group": {"id": p, "name": name}}] if {
	name := data.trellis_data.groups[p].name
} else := ["", {}]

# principal_anchors(p) are the resources principal p (a membership or a
# group) holds grants on.
principal_anchors(p) := anchors if {
	anchors := data.trellis_data.memberships[p].anchors
}

principal_anchors(p) := anchors if {
	anchors := data.trellis_data.groups[p].anchors
}

# explained(d, ref) is decision d about the resource ref names with, for an
# allow by assignment, the path from the role's resource down to that
# resource: reason.path, each {id, type, external_id}. Only asked for
# (input.explain): a check without it costs nothing more.
explained(d, ref) := object.union(d, {"reason": {"path": [r |
	some k in numbers.range(i, 0)
	[_, typ, ext, _] := data.trellis_data.resources[anc[k]]
	r := {"id": anc[k], "type": typ, "external_id": ext}
]}}) if {
	d.decided_by == "assignment"
	anc := data.trellis_data.resources[resolve(ref)][3]
	some i, anchor in anc
	anchor == d.reason.resource.id
} else := d

denied(code, message) := {
	"allowed": false,
	"decided_by": "none",
	"reason": {"code": code, "message": message},
}

# resolve returns the id of the resource ref names, {"id"} or
# {"type", "external_id", "organization_id"} (the organization defaults to
# the token's), when it is in scope. The first two clauses are in_scope
# spelled out for a resource by id, the common case on the check path: one
# comparison, no function call.
resolve(ref) := ref.id if {
	data.trellis_data.resources[ref.id][0] == subject_org
} else := ref.id if {
	not scoped
	data.trellis_data.resources[ref.id]
} else := rid if {
	org := ref_org(ref)
	in_scope(org)
	rid := data.trellis_data.lookup[org][ref.type][ref.external_id]
}

# ref_org is the organization a type+external_id reference is looked up in:
# the reference's own, else the request's, else the subject's (a check only
# ever allows within the subject's organization).
ref_org(ref) := ref.organization_id if {
	ref.organization_id
} else := input.organization_id if {
	input.organization_id
} else := token.org_id if {
	token.org_id
} else := data.trellis_data.memberships[membership_id].org

known_permission(perm) if data.trellis_data.permissions[perm]

ref_label(ref) := ref.id if {
	ref.id
} else := sprintf("%s:%s", [ref.type, ref.external_id]) if {
	ref.type
	ref.external_id
} else := "(no id, nor type and external_id)"

label(rid) := sprintf("%s:%s", [typ, ext]) if [_, typ, ext, _] := data.trellis_data.resources[rid]

resource_ref(rid) := {"id": rid, "type": typ, "external_id": ext, "organization_id": org} if [org, typ, ext, _] := data.trellis_data.resources[rid]
