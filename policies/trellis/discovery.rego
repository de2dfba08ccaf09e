package trellis

# METADATA
# title: effective_permissions
# description: |
#   The permissions the subject holds on input.resource, from the token and
#   from data, sorted.
# entrypoint: true
effective_permissions := failed(input.token_error.code, input.token_error.message) if {
	input.token_error
} else := failed_unavailable(org) if {
	org := quarantined_org(input.resource)
} else := failed("unknown_resource", sprintf("resource %s does not exist", [ref_label(input.resource)])) if {
	not resolve(input.resource)
} else := effective_on(resolve(input.resource))

effective_on(rid) := {"resource": resource_ref(rid), "permissions": sort(extended)} if {
	[org, _, _, anc] := data.trellis_data.resources[rid]
	token_perms := {p | token.org_id == org; some p in token.permissions; known_permission(p)}
	data_perms := {p |
		om := usable_membership(org)
		some who in principals(om, org)
		some anchor in anc
		some key in data.trellis_data.grants[anchor][who]
		some p, _ in data.trellis_data.roles[key].permissions
	}
	extended := {p | some p in (token_perms | data_perms); not extension_denies(p, rid, membership_id_or_none)}
}

# METADATA
# title: list_resources
# description: |
#   The resources on which the subject has input.permission, of
#   input.resource_type when given, under input.parent when given, in tree
#   order (depth first from the organization root, children by id; reversed
#   when input.order is "desc"), paged by input.after (a path, as the
#   answer's paths give it) and input.limit. paths[i] is ids[i]'s path: the
#   ids from the organization root down to it. has_more says more
#   resources may follow: ask again with input.after set to resume (an
#   extension's denials can leave a page short of the limit).
# entrypoint: true
list_resources := failed(input.token_error.code, input.token_error.message) if {
	input.token_error
} else := failed_unavailable(org) if {
	org := list_quarantined_org
} else := failed("unknown_permission", input_permission_problem) if {
	not known_input_permission
} else := failed("unknown_resource", sprintf("resource %s does not exist", [ref_label(input.parent)])) if {
	input.parent
	not resolve(input.parent)
} else := failed("unknown_organization", "no organization: give organization_id, a parent, a token or a membership") if {
	not known_list_org
} else := failed("unknown_resource_type", sprintf("resource type %q does not exist", [list_type])) if {
	not known_list_type
} else := tree_page(list_candidates)

known_list_type if list_type == ""

known_list_type if list_type == "organization"

known_list_type if data.trellis_data.resource_types[list_type]

list_org := data.trellis_data.resources[resolve(input.parent)][0] if {
	input.parent
} else := input.organization_id if {
	input.organization_id
} else := token.org_id if {
	token.org_id
} else := data.trellis_data.memberships[membership_id].org

known_list_org if {
	data.trellis_data.orgs[list_org]
	in_scope(list_org)
}

# list_quarantined_org is the quarantined organization a listing is about:
# the subject's, or, without a scope, the parent's or the one given.
list_quarantined_org := org if {
	input.parent
	org := quarantined_org(input.parent)
} else := subject_org if {
	is_quarantined(subject_org)
} else := input.organization_id if {
	not scoped
	is_quarantined(input.organization_id)
}

known_input_permission if known_permission(input.permission)

input_permission_problem := sprintf("permission %q does not exist", [input.permission]) if {
	input.permission
} else := "a permission is required"

# anchors are the resources on which the subject holds the permission; it
# then holds it on their whole subtrees.
anchors := {data.trellis_data.orgs[list_org].root} if {
	token_grants(input.permission, list_org)
} else := {anchor |
	om := usable_membership(list_org)
	some who in principals(om, list_org)
	some anchor in principal_anchors(who)
	data.trellis_data.resources[anchor][0] == list_org
	some key in data.trellis_data.grants[anchor][who]
	data.trellis_data.roles[key].permissions[input.permission]
}

# list_starts are the roots of the subtrees to list: with a parent, the parent
# itself if an anchor is above it, otherwise the anchors below it.
list_starts := anchors if {
	not input.parent
} else := {rid} if {
	rid := resolve(input.parent)
	some anchor in anchors
	anchor in data.trellis_data.resources[rid][3]
} else := {anchor |
	rid := resolve(input.parent)
	some anchor in anchors
	rid in data.trellis_data.resources[anchor][3]
}

list_parent := resolve(input.parent) if input.parent

else := ""

list_type := input.resource_type if is_string(input.resource_type)

else := ""

list_after := input.after if is_array(input.after)

else := []

default list_desc := false

list_desc if input.order == "desc"

# list_candidates are at most page_limit + 1 resources in the subtrees of
# list_starts, in tree order after list_after: "paths", and for each the
# index in it of its start, "starts". From the served store, which keeps
# resources in tree order (tree_page, see internal/relstore), without
# reading any subtree whole; from a plain document (a bundle's), by
# walking and sorting the subtrees.
list_candidates := page if {
	page := data.trellis_data.tree_page[json.marshal({
		"starts": sort(list_starts), "type": list_type, "after": list_after,
		"desc": list_desc, "limit": page_limit + 1, "exclude": list_parent,
	})]
} else := with_starts(array.slice(ordered_paths, 0, page_limit + 1))

with_starts(paths) := {"paths": paths, "starts": [min([i | some i, id in path; id in list_starts]) | some path in paths]}

ordered_paths := array.reverse(sort(paths_after)) if list_desc

else := sort(paths_after)

paths_after := [path |
	some rid in subtree(list_starts)
	rid != list_parent
	of_list_type(rid)
	path := resource_path(rid)
	after_position(path)
]

after_position(_) if list_after == []

after_position(path) if {
	list_after != []
	not list_desc
	path > list_after
}

after_position(path) if {
	list_after != []
	list_desc
	path < list_after
}

# resource_path(rid) is the ids from rid's organization root down to rid.
resource_path(rid) := array.reverse(data.trellis_data.resources[rid][3])

# tree_page is the answer of a page of candidates c: the first page_limit
# of them the subject may see, whatever the store returned: in the subtree
# of a start (at the index c names), not the parent itself, of the listed
# type, not denied by an extension.
tree_page(c) := object.union(
	{"ids": [path[count(path) - 1] | some path in visible], "paths": visible, "has_more": more},
	resume(window, more),
) if {
	window := array.slice(c.paths, 0, page_limit)
	more := count(c.paths) > page_limit
	anchored := [path |
		some i, path in window
		path[c.starts[i]] in list_starts
		path[count(path) - 1] != list_parent
	]
	visible := extension_kept_paths(of_list_type_paths(anchored))
}

of_list_type_paths(paths) := paths if list_type == ""

else := [path | some path in paths; data.trellis_data.resources[path[count(path) - 1]][1] == list_type]

extension_kept_paths(paths) := paths if not extensions_loaded

else := [path | some path in paths; not extension_denies(input.permission, path[count(path) - 1], membership_id_or_none)]

of_list_type(_) if list_type == ""

of_list_type(rid) if data.trellis_data.resources[rid][1] == list_type

resume(window, true) := {"resume": window[count(window) - 1]}

resume(_, false) := {}

# subtree returns starts and all their descendants, walking children:
# graph.reachable returns only nodes that are keys of the graph, and leaves
# are not keys of children, so the leaves are added as the children of what
# it returns.
subtree(starts) := starts | {child |
	some r in graph.reachable(data.trellis_data.children, starts)
	some child in data.trellis_data.children[r]
}

# METADATA
# title: list_memberships
# description: |
#   The active memberships that have input.permission on input.resource from
#   data (tokens are not known here), through an assignment to the
#   membership or to one of its groups, on the resource itself when
#   input.direct is true, else on it or any ancestor. Sorted by id
#   (reversed when input.order is "desc"), paged by input.after (an id)
#   and input.limit. has_more says more memberships may follow: ask again
#   with input.after set to resume (an extension's denials can leave a
#   page short of the limit).
# entrypoint: true
list_memberships := failed_unavailable(org) if {
	org := quarantined_org(input.resource)
} else := failed("unknown_permission", input_permission_problem) if {
	not known_input_permission
} else := failed("unknown_resource", sprintf("resource %s does not exist", [ref_label(input.resource)])) if {
	not resolve(input.resource)
} else := member_page(members_resource)

# member_candidates(rid) are at most page_limit + 1 memberships that may
# have the permission on rid, in order after page_after, "ids", with, for
# each, where to find its grant: "principals" (the membership itself, or
# the group) and "anchors" (rid or the ancestor the grant is on). The
# store keeps grants and group members in id order (member_page, see
# internal/relstore) and reads no grant list whole; from a plain document
# (a bundle's), the memberships are collected and sorted.
member_candidates(rid) := page if {
	page := data.trellis_data.member_page[json.marshal({
		"resource": rid, "direct": direct_only, "permission": input.permission,
		"after": page_after, "desc": list_desc, "limit": page_limit + 1,
	})]
} else := with_grants(array.slice(ordered_members, 0, page_limit + 1))

# with_grants(ids) is the candidates ids with where each one's grant is,
# as the store answers them.
with_grants(ids) := {"ids": ids, "principals": [g[0] | some g in grants], "anchors": [g[1] | some g in grants]} if {
	grants := [min({[who, anchor] |
		some who in principals(om, members_org)
		some anchor in members_anchors
		some key in data.trellis_data.grants[anchor][who]
		data.trellis_data.roles[key].permissions[input.permission]
	}) |
		some om in ids
	]
}

ordered_members := array.reverse(sort([om | some om in granted_members; om < page_after])) if {
	list_desc
	page_after != ""
} else := array.reverse(sort(granted_members)) if {
	list_desc
} else := sort([om | some om in granted_members; om > page_after])

granted_members := {om |
	some anchor in members_anchors
	some who, keys in data.trellis_data.grants[anchor]
	some key in keys
	data.trellis_data.roles[key].permissions[input.permission]
	some om in grant_members(who, members_org)
	data.trellis_data.memberships[om].active
	data.trellis_data.memberships[om].org == members_org
}

# grant_members(who, org) are the memberships a grant to principal who
# reaches: who itself, or a group of org's members.
grant_members(who, _) := [who] if {
	data.trellis_data.memberships[who].org
}

grant_members(who, org) := members if {
	data.trellis_data.groups[who].org == org
	members := data.trellis_data.groups[who].members
}

# member_page(rid) is the answer of a page of candidates: the first
# page_limit of them that have the permission on rid, whatever the store
# returned, less those an extension denies.
member_page(rid) := object.union(
	{"ids": extension_kept(granted, rid), "has_more": more},
	resume(window, more),
) if {
	c := member_candidates(rid)
	window := array.slice(c.ids, 0, page_limit)
	more := count(c.ids) > page_limit
	granted := granted_members_of(c, window)
}

# granted_members_of(c, window) are the memberships of window, candidates
# of c, that are active, of rid's organization, and hold the permission
# on an anchor of rid through the grant c names: to the membership or a
# group of its organization it is a member of. rid is members_resource,
# whose organization and anchors are read once a query.
granted_members_of(c, window) := [om |
	some i, om in window
	who := c.principals[i]
	anchor := c.anchors[i]
	data.trellis_data.memberships[om].active
	data.trellis_data.memberships[om].org == members_org
	members_anchor_set[anchor]
	count([key |
		some key in data.trellis_data.grants[anchor][who]
		data.trellis_data.roles[key].permissions[input.permission]
	]) > 0
	principal_of(om, who)
]

principal_of(om, om)

principal_of(om, group) if {
	data.trellis_data.groups[group].org == members_org
	group in data.trellis_data.member_groups[om]
}

# extension_kept(ids, rid) are the ids of the memberships whose permission
# on rid no extension denies.
extension_kept(ids, rid) := ids if not extensions_loaded

else := [om | some om in ids; not extension_denies(input.permission, rid, om)]

members_resource := resolve(input.resource)

members_org := data.trellis_data.resources[members_resource][0]

members_anchors := grant_anchors(members_resource)

members_anchor_set := {a | some a in members_anchors}

grant_anchors(rid) := [rid] if direct_only

else := data.trellis_data.resources[rid][3]

default direct_only := false

direct_only if input.direct == true

page_after := input.after if is_string(input.after)

else := ""

page_limit := input.limit if input.limit > 0

else := 100

failed(code, message) := {"ids": [], "permissions": [], "reason": {"code": code, "message": message}}

failed_unavailable(org) := {"ids": [], "permissions": [], "reason": unavailable(org).reason}
