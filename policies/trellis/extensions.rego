package trellis

# Extensions are a team's own Rego modules, in packages trellis.ext.<name>
# (loaded with --policy-dir; see README "Extensions"). Trellis adds to them
# the module of package trellis.extension_set, whose set names holds each
# <name>: without extensions it is undefined, and nothing here costs more
# than that lookup. The core decides
# first; then an extension may deny an allow, with a reason:
#
#   deny contains {"code": "outside_business_hours", "message": "…"} if …
#
# Each deny rule sees, as input, the check it is about (see
# extension_input), never the request's own input. An extension never
# grants: a core deny stays a deny.
#
# An extension may also hold conditions on grants: a deny_grant set,
#
#   deny_grant contains {"code": "…", "message": "…"} if {
#       input.grant.role == "app-deployer"
#       …
#   }
#
# evaluated for each grant that would allow (input is extension_input's
# plus grant: the role's slug, the resource it is assigned on, and the
# group it comes through, if any). A grant held back counts for nothing:
# another grant may still allow; when none does, the answer is the denial
# of the nearest grant held back. The module extension_set names these
# extensions in its set conditions.

# held_to_conditions(d, perm, rid) is the core's decision d, or, for an
# allow by a role with grant conditions loaded, the decision by the
# nearest grant no condition holds back.
held_to_conditions(d, perm, rid) := d if {
	d.decided_by != "assignment"
} else := granted(perm, anc[i], key, ps[j]) if {
	[org, _, _, anc] := data.trellis_data.resources[rid]
	om := usable_membership(org)
	ps := principals(om, org)
	[i, j, key] := conditional_nearest_grant(ps, perm, anc)
} else := unmet_condition(perm, rid)

# conditional_nearest_grant is nearest_grant among the grants no
# deny_grant holds back.
conditional_nearest_grant(ps, perm, anc) := min([[i, j, key] |
	some i, anchor in anc
	some j, p in ps
	some key in data.trellis_data.grants[anchor][p]
	data.trellis_data.roles[key].permissions[perm]
	not grant_held_back(perm, anc[0], ps[0], anchor, key, p)
])

# extension_denied is the answer of the denial [name, code, message] of
# extension name.
extension_denied([name, code, message]) := denial_by(name, "deny", code, message)

# denial_by is the answer of a denial by rule of extension name.
denial_by(name, rule, code, message) := {
	"allowed": false,
	"decided_by": "extension",
	"reason": {
		"code": code,
		"message": message,
		"rule": concat("", ["data.trellis.ext.", name, ".", rule]),
	},
}

# extension_denials(x) is the set of [name, code, message] of every
# element of every extension's deny set for input x. An element that is not
# {"code": string, "message": string} still denies, with the code
# invalid_extension_denial.
extension_denials(x) := {[name, code, message] |
	some name in data.trellis.extension_set.names
	some e in data.trellis.ext[name].deny with input as x
	[code, message] := denial_fields(e)
}

denial_fields(e) := [e.code, e.message] if {
	is_string(e.code)
	is_string(e.message)
} else := ["invalid_extension_denial", sprintf("the extension's denial is not {code, message}: %v", [e])]

# extension_denies(perm, rid, om) holds when an extension denies membership
# om (or "" for a token without one) perm on rid, had the core allowed it.
extension_denies(perm, rid, om) if {
	extensions_loaded
	count(extension_denials(extension_input({"allowed": true}, perm, resource_ref(rid), om))) > 0
}

# With grant conditions, a resource the core finds a grant on (or the
# token allows) is listed only if a grant no condition holds back allows.
extension_denies(perm, rid, om) if {
	conditions_loaded
	not conditionally_allowed(perm, rid, om)
}

conditionally_allowed(perm, rid, _) if token_grants(perm, data.trellis_data.resources[rid][0])

conditionally_allowed(perm, rid, om) if {
	[org, _, _, anc] := data.trellis_data.resources[rid]
	conditional_nearest_grant(principals(om, org), perm, anc)
}

conditions_loaded if data.trellis.extension_set.conditions

# grant_held_back(perm, rid, om, anchor, key, p) holds when an extension's
# deny_grant holds back the grant of role key on anchor to principal p
# (om, or a group of om's) for membership om's check of perm on rid.
grant_held_back(perm, rid, om, anchor, key, p) if {
	count(grant_denials(grant_input(perm, rid, om, anchor, key, p))) > 0
}

# grant_denials(x) is extension_denials(x) of the deny_grant rules.
grant_denials(x) := {[name, code, message] |
	some name in data.trellis.extension_set.conditions
	some e in data.trellis.ext[name].deny_grant with input as x
	[code, message] := denial_fields(e)
}

# grant_input is what a deny_grant rule sees: extension_input without the
# decision, with the grant.
grant_input(perm, rid, om, anchor, key, p) := object.union(object.remove(extension_input({}, perm, resource_ref(rid), om), ["decision"]), {"grant": object.union(
	{"role": data.trellis_data.roles[key].slug, "resource": resource_ref(anchor)},
	group_of(p),
)})

group_of(p) := {"group": {"id": p, "name": name}} if {
	name := data.trellis_data.groups[p].name
} else := {}

# unmet_condition(perm, rid) is the answer when every grant of perm on
# rid is held back: the denial of the nearest one, naming its role.
unmet_condition(perm, rid) := object.union(denial_by(name, "deny_grant", code, message), {"reason": {"role": data.trellis_data.roles[key].slug}}) if {
	[org, _, _, anc] := data.trellis_data.resources[rid]
	om := usable_membership(org)
	ps := principals(om, org)
	[i, j, key] := nearest_grant(ps, perm, anc)
	[name, code, message] := min(grant_denials(grant_input(perm, anc[0], om, anc[i], key, ps[j])))
}

# extension_input is what an extension's rules see as input: the
# permission, the resource (id, type, external_id, organization_id,
# attributes), its organization (id, attributes), the core's decision, the
# subject (its membership; the verified token's claims, or {}) and the
# request's context object (or {}). Attributes are {} when none are set.
extension_input(d, perm, res, om) := {
	"permission": perm,
	"resource": {
		"id": res.id, "type": res.type, "external_id": res.external_id, "organization_id": res.organization_id,
		"attributes": {k: v | some k, v in data.trellis_data.attributes[res.id]},
	},
	"organization": {"id": res.organization_id, "attributes": {k: v | some k, v in data.trellis_data.org_attributes[res.organization_id]}},
	"decision": d,
	"subject": {"organization_membership_id": om},
	"token": extension_token,
	"context": request_context,
}

extension_token := token if {
	token
} else := {}

membership_id_or_none := membership_id if {
	membership_id
} else := ""

request_context := input.context if {
	is_object(input.context)
} else := {}

extensions_loaded if data.trellis.extension_set.names

# core_allows(perm) holds when the core's rules alone (the token, then
# roles) allow the subject of an extension's input perm on its resource:
# for an extension that requires a second permission (see
# policies/examples/confidential.rego).
core_allows(perm) if {
	rid := input.resource.id
	[org, _, _, anc] := data.trellis_data.resources[rid]
	decide_on(perm, rid, org, anc).allowed
}
