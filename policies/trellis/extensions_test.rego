package trellis_test

import data.trellis

# ext is the extension set naming the test extension network
# (extensions_fixture_test.rego), as Trellis adds it when it loads one.
ext := {"names": {"network"}}

bob_edit(ctx) := {"subject": subject("om_bob"), "permission": "project:edit", "resource": {"id": prj_api}, "context": ctx}

denied_by_network(code) := {
	"allowed": false,
	"decided_by": "extension",
	"reason": {"code": code, "rule": "data.trellis.ext.network.deny"},
}

extension_cases := {
	"an extension denies an allow": {
		"input": bob_edit({"network": "public"}),
		"want": denied_by_network("outside_network"),
	},
	"a request without context is denied too": {
		"input": object.remove(bob_edit({}), ["context"]),
		"want": denied_by_network("outside_network"),
	},
	"an allow the extension lets through": {
		"input": bob_edit({"network": "office"}),
		"want": allowed_by("project-editor", prj_api_ref),
	},
	"a core deny stays the core's": {
		"input": {"subject": subject("om_carol"), "permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}},
		"want": denied_with("no_grant"),
	},
	"a malformed denial still denies": {
		"input": bob_edit({"network": "office", "malformed": true}),
		"want": denied_by_network("invalid_extension_denial"),
	},
	"the extension sees the check, not the request": {
		"input": bob_edit({"network": "office", "probe": true}),
		"want": denied_by_network("saw_the_check"),
	},
	"a token's allow is denied as well": {
		"input": {"token": acme_token("om_carol", ["project:edit"]), "permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}},
		"want": denied_by_network("outside_network"),
	},
}

test_extension_check[name] if {
	some name, tc in extension_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as tc.input
	decision_matches(got, tc.want)
}

test_without_the_extension_set_extensions_are_not_consulted if {
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as bob_edit({"network": "public"})
	got.allowed
}

test_extension_batch if {
	req := {"subject": subject("om_bob"), "context": {"network": "public"}, "checks": [
		{"permission": "project:view", "resource": {"id": prj_api}},
		{"permission": "project:edit", "resource": {"id": prj_api}},
	]}
	[view, edit] := trellis.batch with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as req
	view.allowed
	decision_matches(edit, denied_by_network("outside_network"))
}

test_extension_filters_lists_and_permissions if {
	public := {"subject": subject("om_bob"), "permission": "project:edit", "context": {"network": "public"}}
	office := object.union(public, {"context": {"network": "office"}})
	denied := trellis.list_resources with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as public
	denied.ids == []
	allowed := trellis.list_resources with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as office
	prj_api in allowed.ids
	perms := trellis.effective_permissions with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as object.union(public, {"resource": {"id": prj_api}})
	not "project:edit" in perms.permissions
	"project:view" in perms.permissions
	members := trellis.list_memberships with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as {"permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}}
	members.ids == []
	office_members := trellis.list_memberships with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as ext with input as {"permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "office"}}
	"om_bob" in office_members.ids
}

# Grant conditions: office_editors (conditions_fixture_test.rego) holds
# back project-editor's grants outside the office. om_bob is
# project-editor on prj_api; om_alice is workspace-admin on ws_eng above it.
conditions := {"names": {"office_editors"}, "conditions": {"office_editors"}}

conditional(req) := d if {
	d := trellis.check with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as conditions with input as req
}

test_grant_condition_holds_back_its_role_only if {
	d := conditional(bob_edit({"network": "public"}))
	decision_matches(d, {
		"allowed": false,
		"decided_by": "extension",
		"reason": {"code": "editor_outside_office", "rule": "data.trellis.ext.office_editors.deny_grant", "role": "project-editor"},
	})
	decision_matches(conditional(bob_edit({"network": "office"})), allowed_by("project-editor", prj_api_ref))

	# Another role still grants: alice's workspace-admin is not held back.
	alice := {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}}
	conditional(alice).allowed

	# A deny without any grant stays the core's.
	carol := {"subject": subject("om_carol"), "permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}}
	decision_matches(conditional(carol), denied_with("no_grant"))
}

test_grant_condition_in_lists_and_permissions if {
	public := {"subject": subject("om_bob"), "permission": "project:edit", "context": {"network": "public"}}
	office := object.union(public, {"context": {"network": "office"}})
	denied := trellis.list_resources with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as conditions with input as public
	denied.ids == []
	allowed := trellis.list_resources with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as conditions with input as office
	prj_api in allowed.ids
	perms := trellis.effective_permissions with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as conditions with input as object.union(public, {"resource": {"id": prj_api}})
	not "project:edit" in perms.permissions
	not "project:view" in perms.permissions # project-editor's too
	members := trellis.list_memberships with data.trellis_host as host with data.trellis_data as fixture with data.trellis.extension_set as conditions with input as {"permission": "project:edit", "resource": {"id": prj_api}, "context": {"network": "public"}}
	not "om_bob" in members.ids
	"om_alice" in members.ids
}
