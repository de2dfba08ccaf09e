package trellis_examples_test

import data.trellis

# The example extensions on the core's test fixture (policies/trellis).
fixture := data.trellis_test.fixture

host := {"verifies_tokens": true}

decide(names, req) := d if {
	d := trellis.check with data.trellis_host as host
		with data.trellis_data as fixture
		with data.trellis.extension_set.names as names
		with input as req
}

# om_bob holds app-deployer on app_loader (see fixture_test.rego).
deploy(ctx) := {"subject": {"organization_membership_id": "om_bob"}, "permission": "app:deploy", "resource": {"id": data.trellis_test.app_loader}, "context": ctx}

test_business_hours if {
	decide({"business_hours"}, deploy({"time": "2026-12-07T10:00:00Z"})).allowed # a Monday
	d := decide({"business_hours"}, deploy({"time": "2026-12-07T19:00:00Z"}))
	not d.allowed
	d.reason.code == "outside_business_hours"
	d.reason.rule == "data.trellis.ext.business_hours.deny"
	not decide({"business_hours"}, deploy({"time": "2026-12-06T10:00:00Z"})).allowed # a Sunday
}

globex_view(ctx) := {"subject": {"organization_membership_id": "om_erin"}, "permission": "project:view", "resource": {"id": data.trellis_test.gx_prj_api}, "context": ctx}

# globex keeps its networks in its attributes; acme has none.
networks_fixture := json.patch(fixture, [{"op": "add", "path": "/org_attributes", "value": {"org_globex": {"networks": ["10.20.0.0/16", "192.0.2.0/24"]}}}])

ip_allowlist(req) := d if {
	d := trellis.check with data.trellis_host as host
		with data.trellis_data as networks_fixture
		with data.trellis.extension_set.names as {"ip_allowlist"}
		with input as req
}

test_ip_allowlist if {
	ip_allowlist(globex_view({"ip": "10.20.3.4"})).allowed
	d := ip_allowlist(globex_view({"ip": "203.0.113.9"}))
	d.reason.code == "network_not_allowed"
	d.reason.message == "organization org_globex is reached only from its networks"
	not ip_allowlist(globex_view({})).allowed
	ip_allowlist(deploy({})).allowed # acme has no networks
	decide({"ip_allowlist"}, globex_view({"ip": "203.0.113.9"})).allowed # nor globex, without its attributes
}

suspended_token(perms) := object.union(data.trellis_test.acme_token("om_carol", perms), {"entitlements": ["subscription-suspended"]})

test_suspended if {
	decide({"suspended"}, {"token": suspended_token(["project:view", "project:edit"]), "permission": "project:view", "resource": {"id": data.trellis_test.prj_api}}).allowed
	d := decide({"suspended"}, {"token": suspended_token(["project:view", "project:edit"]), "permission": "project:edit", "resource": {"id": data.trellis_test.prj_api}})
	d.reason.code == "subscription_suspended"
}

# The fixture with prj_api marked confidential and workspace-admin (om_alice's
# role on ws_eng, above prj_api) holding project:view-confidential.
confidential_fixture := json.patch(fixture, [
	{"op": "add", "path": "/attributes", "value": {data.trellis_test.prj_api: {"confidential": true}}},
	{"op": "add", "path": "/permissions/project:view-confidential", "value": {"type": "project"}},
	{"op": "add", "path": "/roles/workspace-admin/permissions/project:view-confidential", "value": true},
])

confidential(req) := d if {
	d := trellis.check with data.trellis_host as host
		with data.trellis_data as confidential_fixture
		with data.trellis.extension_set.names as {"confidential"}
		with input as req
}

on(om, perm, rid) := {"subject": {"organization_membership_id": om}, "permission": perm, "resource": {"id": rid}}

test_confidential if {
	confidential(on("om_alice", "project:view", data.trellis_test.prj_api)).allowed # inherited from ws_eng
	d := confidential(on("om_bob", "project:view", data.trellis_test.prj_api)) # project-editor lacks it
	d.reason.code == "confidential"
	d.reason.message == "project:api is confidential: it needs project:view-confidential as well"
	not confidential(on("om_bob", "project:edit", data.trellis_test.prj_api)).allowed
	confidential(on("om_bob", "app:view", data.trellis_test.app_gw)).allowed # attributes are the resource's own
	confidential({"token": data.trellis_test.acme_token("om_carol", ["project:view", "project:view-confidential"]), "permission": "project:view", "resource": {"id": data.trellis_test.prj_api}}).allowed
	not confidential({"token": data.trellis_test.acme_token("om_carol", ["project:view"]), "permission": "project:view", "resource": {"id": data.trellis_test.prj_api}}).allowed
}

test_confidential_lists if {
	ids := trellis.list_resources.ids with data.trellis_host as host
		with data.trellis_data as confidential_fixture
		with data.trellis.extension_set.names as {"confidential"}
		with input as {"subject": {"organization_membership_id": "om_bob"}, "permission": "app:view"}
	data.trellis_test.app_gw in ids
	ids_view := trellis.list_resources.ids with data.trellis_host as host
		with data.trellis_data as confidential_fixture
		with data.trellis.extension_set.names as {"confidential"}
		with input as {"subject": {"organization_membership_id": "om_bob"}, "permission": "project:view"}
	not data.trellis_test.prj_api in ids_view
}
