# Group grants. fixture_groups is fixture with groups, in the shape
# internal/index builds:
#
#   group_platform  acme    "platform-eng"  project-editor on prj_api,
#                                           workspace-viewer on ws_data;
#                   members om_bob, om_frank, om_ivan, om_judy
#   group_idle      acme    "idle"          no grants; member om_ivan
#   group_gx        globex  "gx-admins"     admin on globex's root; member om_erin
#
#   om_ivan  acme  active    no grants of its own
#   om_judy  acme  inactive  no grants of its own
package trellis_test

import data.trellis

group_platform := "group_platform"

fixture_groups := json.patch(fixture, [
	{"op": "add", "path": "/memberships/om_ivan", "value": {"org": "org_acme", "active": true, "anchors": []}},
	{"op": "add", "path": "/memberships/om_judy", "value": {"org": "org_acme", "active": false, "anchors": []}},
	{"op": "add", "path": "/groups", "value": {
		group_platform: {"org": "org_acme", "name": "platform-eng", "anchors": [prj_api, ws_data], "members": ["om_bob", "om_frank", "om_ivan", "om_judy"]},
		"group_idle": {"org": "org_acme", "name": "idle", "anchors": [], "members": ["om_ivan"]},
		"group_gx": {"org": "org_globex", "name": "gx-admins", "anchors": [globex_root], "members": ["om_erin"]},
	}},
	{"op": "add", "path": "/member_groups", "value": {
		"om_bob": [group_platform],
		"om_frank": [group_platform],
		"om_ivan": ["group_idle", group_platform],
		"om_judy": [group_platform],
		"om_erin": ["group_gx"],
	}},
	{"op": "add", "path": sprintf("/grants/%s/%s", [prj_api, group_platform]), "value": ["project-editor"]},
	{"op": "add", "path": sprintf("/grants/%s", [ws_data]), "value": {group_platform: ["workspace-viewer"]}},
	{"op": "add", "path": sprintf("/grants/%s/group_gx", [globex_root]), "value": ["admin"]},
])

# fixture_groups_member_removed is the next revision after om_ivan left
# group_platform.
fixture_groups_member_removed := json.patch(fixture_groups, [
	{"op": "replace", "path": "/revision", "value": 43},
	{"op": "replace", "path": "/member_groups/om_ivan", "value": ["group_idle"]},
	{"op": "replace", "path": "/groups/group_platform/members", "value": ["om_bob", "om_frank", "om_judy"]},
])

# fixture_groups_deleted is the next revision after group_platform was
# deleted, read while its grants and member entries are still there (the
# data sources remove them too; the policy must not need them to).
fixture_groups_deleted := json.patch(fixture_groups, [{"op": "remove", "path": "/groups/group_platform"}])

# fixture_groups_cross_org is fixture_groups with what the data sources
# never produce: acme's om_ivan in globex's group_gx, which holds a grant
# on acme's ws_ops.
fixture_groups_cross_org := json.patch(fixture_groups, [
	{"op": "replace", "path": "/member_groups/om_ivan", "value": ["group_gx"]},
	{"op": "add", "path": sprintf("/grants/%s/group_gx", [ws_ops]), "value": ["workspace-viewer"]},
])

allowed_via_group(role, ref, group) := {
	"allowed": true,
	"decided_by": "assignment",
	"reason": {"code": "role_assignment", "role": role, "resource": ref, "group": group},
}

platform := {"id": group_platform, "name": "platform-eng"}

group_check_cases := {
	"grant via a group": {
		"input": {"subject": subject("om_ivan"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": {
			"allowed": true,
			"decided_by": "assignment",
			"reason": {
				"code": "role_assignment",
				"role": "project-editor",
				"resource": prj_api_ref,
				"group": platform,
				"message": "role project-editor on project:api via group platform-eng grants project:edit",
			},
		},
	},
	"inherited via a group": {
		"input": {"subject": subject("om_ivan"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": allowed_via_group("project-editor", prj_api_ref, platform),
	},
	"inherited via a group with a token": {
		"input": {"token": acme_token("om_ivan", []), "permission": "app:view", "resource": {"id": app_loader}},
		"want": allowed_via_group("workspace-viewer", {"id": ws_data, "type": "workspace", "external_id": "data", "organization_id": "org_acme"}, platform),
	},
	"a group grant does not reach outside its subtree": {
		"input": {"subject": subject("om_ivan"), "permission": "project:view", "resource": {"id": prj_web}},
		"want": denied_with("no_grant"),
	},
	"an inactive member is denied": {
		"input": {"subject": subject("om_judy"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": denied_with("membership_inactive"),
	},
	"the membership's own grant is named before its group's": {
		"input": {"subject": subject("om_bob"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by("project-editor", prj_api_ref),
	},
	"the nearest grant wins over a group's above it": {
		"input": {"subject": subject("om_frank"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": allowed_by("app-deployer", app_gw_ref),
	},
	"a group without grants grants nothing": {
		"input": {"subject": subject("om_ivan"), "permission": "workspace:view", "resource": {"id": ws_ops}},
		"want": denied_with("no_grant"),
	},
	"a group's grant in its own organization": {
		"input": {"subject": subject("om_erin"), "permission": "project:edit", "resource": {"id": gx_prj_api}},
		"want": allowed_by("admin", globex_root_ref),
	},
}

test_group_check[name] if {
	some name, tc in group_check_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture_groups with input as tc.input
	decision_matches(got, tc.want)
}

# A group reason is exactly the assignment reason and the group.
test_group_reason_fields if {
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture_groups
		with input as {"subject": subject("om_ivan"), "permission": "project:edit", "resource": {"id": prj_api}}
	object.keys(got.reason) == {"code", "role", "resource", "group", "message"}
}

test_group_direct_reason_has_no_group if {
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture_groups
		with input as {"subject": subject("om_bob"), "permission": "project:edit", "resource": {"id": prj_api}}
	not got.reason.group
}

group_change_cases := {
	"a removed member is denied at the next revision": {
		"data": fixture_groups_member_removed,
		"input": {"subject": subject("om_ivan"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": denied_with("no_grant"),
	},
	"a removed member's other groups still count": {
		"data": fixture_groups_member_removed,
		"input": {"subject": subject("om_frank"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_via_group("project-editor", prj_api_ref, platform),
	},
	"a deleted group grants nothing": {
		"data": fixture_groups_deleted,
		"input": {"subject": subject("om_ivan"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": denied_with("no_grant"),
	},
	"a group of another organization cannot grant": {
		"data": fixture_groups_cross_org,
		"input": {"subject": subject("om_ivan"), "permission": "workspace:view", "resource": {"id": ws_ops}},
		"want": denied_with("no_grant"),
	},
}

test_group_changes[name] if {
	some name, tc in group_change_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as tc.data with input as tc.input
	decision_matches(got, tc.want)
}

test_group_batch if {
	got := trellis.batch with data.trellis_host as host with data.trellis_data as fixture_groups with input as {
		"subject": subject("om_ivan"),
		"checks": [
			{"permission": "project:edit", "resource": {"id": prj_api}},
			{"permission": "project:edit", "resource": {"id": prj_web}},
			{"permission": "app:view", "resource": {"id": app_cli}},
		],
	}
	[d.allowed | some d in got] == [true, false, true]
	got[0].reason.group == platform
}

test_group_effective_permissions if {
	got := trellis.effective_permissions with data.trellis_host as host with data.trellis_data as fixture_groups
		with input as {"subject": subject("om_ivan"), "resource": {"id": app_gw}}
	got.permissions == ["app:deploy", "app:view", "project:edit", "project:view"]
}

test_group_list_resources if {
	got := trellis.list_resources with data.trellis_host as host with data.trellis_data as fixture_groups
		with input as {"subject": subject("om_ivan"), "permission": "project:view", "resource_type": "project"}
	got.ids == [prj_etl, prj_api] # tree order: ws_data before ws_eng
}

group_list_memberships_cases := {
	"members through a group, inherited": {
		"input": {"permission": "project:edit", "resource": {"id": app_gw}},
		"want": {"ids": ["om_alice", "om_bob", "om_frank", "om_grace", "om_ivan"], "has_more": false},
	},
	"direct includes a group's assignment on the resource itself": {
		"input": {"permission": "project:edit", "resource": {"id": prj_api}, "direct": true},
		"want": {"ids": ["om_bob", "om_frank", "om_ivan"], "has_more": false},
	},
	"a group's grant reaches only its own organization's members": {
		"input": {"permission": "workspace:view", "resource": {"id": ws_ops}},
		"data": fixture_groups_cross_org,
		"want": {"ids": ["om_alice", "om_bob", "om_frank", "om_grace"], "has_more": false},
	},
}

test_group_list_memberships[name] if {
	some name, tc in group_list_memberships_cases
	got := trellis.list_memberships with data.trellis_host as host with data.trellis_data as object.get(tc, "data", fixture_groups) with input as tc.input
	got == tc.want
}

# A group the store names as a membership's principal must be one of its
# organization it is a member of.
test_group_list_memberships_checks_the_store_group if {
	query := json.marshal({
		"resource": prj_api, "direct": true, "permission": "project:edit",
		"after": "", "desc": false, "limit": 101,
	})
	store_page := {
		"ids": ["om_alice", "om_erin", "om_frank"],
		"principals": [group_platform, group_platform, group_platform],
		"anchors": [prj_api, prj_api, prj_api],
	}
	got := trellis.list_memberships with data.trellis_host as host
		with data.trellis_data as object.union(fixture_groups, {"member_page": {query: store_page}})
		with input as {"permission": "project:edit", "resource": {"id": prj_api}, "direct": true}
	got.ids == ["om_frank"]
}

# The oracles of discovery_test.rego, over fixture_groups: lists and
# effective permissions agree with checks, group grants included.
group_subjects := {om: {"subject": subject(om)} | some om, _ in fixture_groups.memberships}

group_list_memberships_disagreements := {[perm, rid] |
	decisions := oracle_decisions(group_subjects)
	some p, perm in oracle_permissions
	some r, rid in oracle_resources
	got := trellis.list_memberships with input as {"permission": perm, "resource": {"id": rid}, "limit": 1000}
	got.ids != [om | some om in sort(object.keys(decisions)); decisions[om][oracle_index(p, r)].allowed]
}

test_group_lists_agree_with_check if {
	list_resources_disagreements(group_subjects) == set() with data.trellis_host as host with data.trellis_data as fixture_groups
	effective_permissions_disagreements(group_subjects) == set() with data.trellis_host as host with data.trellis_data as fixture_groups
	group_list_memberships_disagreements == set() with data.trellis_host as host with data.trellis_data as fixture_groups
}
