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

test_ip_allowlist if {
	decide({"ip_allowlist"}, globex_view({"ip": "10.20.3.4"})).allowed
	d := decide({"ip_allowlist"}, globex_view({"ip": "203.0.113.9"}))
	d.reason.code == "network_not_allowed"
	not decide({"ip_allowlist"}, globex_view({})).allowed
	decide({"ip_allowlist"}, deploy({})).allowed # acme has no allow-list
}

suspended_token(perms) := object.union(data.trellis_test.acme_token("om_carol", perms), {"entitlements": ["subscription-suspended"]})

test_suspended if {
	decide({"suspended"}, {"token": suspended_token(["project:view", "project:edit"]), "permission": "project:view", "resource": {"id": data.trellis_test.prj_api}}).allowed
	d := decide({"suspended"}, {"token": suspended_token(["project:view", "project:edit"]), "permission": "project:edit", "resource": {"id": data.trellis_test.prj_api}})
	d.reason.code == "subscription_suspended"
}
