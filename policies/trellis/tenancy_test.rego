package trellis_test

import data.trellis

# Tenancy: a subject of one organization learns nothing about another's
# resources, and a quarantined organization answers organization_unavailable
# while every other is served as before.

# fixture_without_globex is fixture as if globex had never existed.
fixture_without_globex := json.remove(fixture, [
	"/orgs/org_globex",
	"/lookup/org_globex",
	sprintf("/resources/%s", [globex_root]),
	sprintf("/resources/%s", [gx_ws_eng]),
	sprintf("/resources/%s", [gx_prj_api]),
	sprintf("/children/%s", [globex_root]),
	sprintf("/children/%s", [gx_ws_eng]),
	sprintf("/grants/%s", [globex_root]),
	"/memberships/om_erin",
	"/memberships/om_heidi",
	"/roles/org_globex~1auditor",
])

# fixture_without_acme is fixture as if acme had never existed.
fixture_without_acme := json.remove(fixture, array.concat(
	["/orgs/org_acme", "/lookup/org_acme", "/roles/org_acme~1auditor"],
	[sprintf("/%s/%s", [section, key]) |
		some section in ["resources", "children", "grants", "memberships"]
		some key, v in fixture[section]
		acme_owned(section, key, v)
	],
))

acme_owned("resources", _, v) if v[0] == "org_acme"

acme_owned("memberships", _, v) if v.org == "org_acme"

acme_owned(section, key, _) if {
	section in {"children", "grants"}
	fixture.resources[key][0] == "org_acme"
}

test_fixture_without_an_organization if {
	not "org_globex" in {v[0] | some v in fixture_without_globex.resources}
	{v[0] | some v in fixture_without_acme.resources} == {"org_globex"}
	object.keys(fixture_without_acme.memberships) == {"om_erin", "om_heidi"}
	object.keys(fixture_without_acme.grants) == {globex_root}
}

# foreign_cases are subjects of one organization, references to another
# organization's resources, and the world in which those resources do not
# exist.
foreign_cases := {
	"acme subjects, globex resources": {
		"subjects": {
			"token": {"token": acme_token("om_alice", ["project:edit", "workspace:view"])},
			"token without a membership": {"token": acme_token("", ["project:edit"])},
			"membership": {"subject": subject("om_alice")},
			"membership with an organization role": {"subject": subject("om_grace")},
		},
		"refs": {
			"by id": {"id": gx_prj_api},
			"root by id": {"id": globex_root},
			"by type and external id": {"type": "project", "external_id": "api", "organization_id": "org_globex"},
			"root by type and external id": {"type": "organization", "external_id": "org_globex", "organization_id": "org_globex"},
		},
		"organization": "org_globex",
		"without": fixture_without_globex,
	},
	"globex subjects, acme resources": {
		"subjects": {
			"token": {"token": globex_token("om_erin", ["app:view"])},
			"token naming an acme membership": {"token": globex_token("om_alice", [])},
			"membership": {"subject": subject("om_erin")},
		},
		"refs": {
			"by id": {"id": app_gw},
			"by type and external id": {"type": "workspace", "external_id": "eng", "organization_id": "org_acme"},
		},
		"organization": "org_acme",
		"without": fixture_without_acme,
	},
}

# foreign_requests are the requests of every decision entrypoint that name
# resource ref, or organization org, for subject sub.
foreign_requests(sub, ref, org) := {
	"check": {"entrypoint": "check", "input": object.union(sub, {"permission": "project:edit", "resource": ref})},
	"check of an unknown permission": {"entrypoint": "check", "input": object.union(sub, {"permission": "nope:nope", "resource": ref})},
	"batch": {"entrypoint": "batch", "input": object.union(sub, {"checks": [
		{"permission": "workspace:view", "resource": ref},
		{"permission": "app:view", "resource": ref},
	]})},
	"effective_permissions": {"entrypoint": "effective_permissions", "input": object.union(sub, {"resource": ref})},
	"list_resources under a parent": {"entrypoint": "list_resources", "input": object.union(sub, {"permission": "workspace:view", "parent": ref})},
	"list_resources of an organization": {"entrypoint": "list_resources", "input": object.union(sub, {"permission": "workspace:view", "organization_id": org})},
}

# A subject of one organization asking about another's resource gets
# exactly the answer it would get if that organization did not exist.
test_no_existence_oracle_across_organizations[[case, sname, rname, qname]] if {
	some case, tc in foreign_cases
	some sname, sub in tc.subjects
	some rname, ref in tc.refs
	some qname, req in foreign_requests(sub, ref, tc.organization)
	got := trellis[req.entrypoint] with data.trellis_host as host with data.trellis_data as fixture with input as req.input
	want := trellis[req.entrypoint] with data.trellis_host as host with data.trellis_data as tc.without with input as req.input
	got == want
	not allows(got)
}

allows(d) if d.allowed

allows(ds) if {
	some d in ds
	d.allowed
}

allows(p) if count(p.ids) > 0

allows(p) if count(p.permissions) > 0

# The same subjects are answered in full in their own organization.
test_own_organization_is_still_answered if {
	d := trellis.check with data.trellis_host as host with data.trellis_data as fixture
		with input as {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}}
	d.allowed
	p := trellis.effective_permissions with data.trellis_host as host with data.trellis_data as fixture
		with input as {"token": globex_token("om_erin", []), "resource": {"id": gx_prj_api}}
	p.resource.organization_id == "org_globex"
	count(p.permissions) > 0
}

# fixture_quarantined is fixture with globex quarantined: its rows are gone
# and only what recognises requests about it is left (internal/index).
fixture_quarantined := object.union(fixture_without_globex, {
	"quarantined": {"org_globex": true},
	"quarantined_resources": {globex_root: "org_globex", gx_ws_eng: "org_globex", gx_prj_api: "org_globex"},
	"quarantined_memberships": {"om_erin": "org_globex", "om_heidi": "org_globex"},
})

globex_unavailable := {"code": "organization_unavailable", "organization_id": "org_globex"}

quarantine_check_cases := {
	"a membership of the quarantined organization": {
		"input": {"subject": subject("om_erin"), "permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"unavailable": true,
	},
	"a membership of the quarantined organization, by external id": {
		"input": {"subject": subject("om_heidi"), "permission": "workspace:view", "resource": {"type": "workspace", "external_id": "eng"}},
		"unavailable": true,
	},
	"a token of the quarantined organization, even one that grants": {
		"input": {"token": globex_token("om_erin", ["workspace:view"]), "permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"unavailable": true,
	},
	"a token of the quarantined organization, about another's resource": {
		"input": {"token": globex_token("", []), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"unavailable": true,
	},
	"a subject the data does not know, by id": {
		"input": {"subject": subject("om_nobody"), "permission": "workspace:view", "resource": {"id": gx_prj_api}},
		"unavailable": true,
	},
	"no subject, by type and external id": {
		"input": {"permission": "workspace:view", "resource": {"type": "workspace", "external_id": "eng", "organization_id": "org_globex"}},
		"unavailable": true,
	},
	"another organization's token learns nothing": {
		"input": {"token": acme_token("om_alice", []), "permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"want": denied_with("unknown_resource"),
	},
	"another organization's membership learns nothing": {
		"input": {"subject": subject("om_alice"), "permission": "workspace:view", "resource": {"type": "workspace", "external_id": "eng", "organization_id": "org_globex"}},
		"want": denied_with("unknown_resource"),
	},
	"another organization is served": {
		"input": {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"another organization's token is served": {
		"input": {"token": acme_token("om_carol", ["project:edit"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by_token,
	},
	"a token error is still a token error": {
		"input": {"token_error": expired, "permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"want": denied_with("token_expired"),
	},
}

test_quarantine_check[name] if {
	some name, tc in quarantine_check_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture_quarantined with input as tc.input
	quarantine_answer_matches(got, tc)
}

test_quarantine_batch if {
	checks := [c.input | some c in quarantine_check_cases; not c.input.token; not c.input.token_error; c.input.subject == subject("om_erin")]
	count(checks) > 0
	got := trellis.batch with data.trellis_host as host with data.trellis_data as fixture_quarantined
		with input as {"subject": subject("om_erin"), "checks": [object.remove(c, {"subject"}) | some c in checks]}
	every d in got {
		decision_matches(d, {"allowed": false, "decided_by": "none", "reason": globex_unavailable})
	}
}

quarantine_answer_matches(got, tc) if {
	tc.unavailable
	decision_matches(got, {"allowed": false, "decided_by": "none", "reason": globex_unavailable})
}

quarantine_answer_matches(got, tc) if {
	not tc.unavailable
	decision_matches(got, tc.want)
}

quarantine_discovery_cases := {
	"effective permissions of a quarantined membership": {
		"entrypoint": "effective_permissions",
		"input": {"subject": subject("om_erin"), "resource": {"id": gx_prj_api}},
		"unavailable": true,
	},
	"effective permissions of an unknown subject on a quarantined resource": {
		"entrypoint": "effective_permissions",
		"input": {"subject": subject("om_nobody"), "resource": {"id": gx_prj_api}},
		"unavailable": true,
	},
	"effective permissions of another organization's subject": {
		"entrypoint": "effective_permissions",
		"input": {"subject": subject("om_alice"), "resource": {"id": gx_prj_api}},
		"want": failure("unknown_resource"),
	},
	"resources of a quarantined membership": {
		"entrypoint": "list_resources",
		"input": {"subject": subject("om_erin"), "permission": "workspace:view"},
		"unavailable": true,
	},
	"resources under a quarantined parent, for an unknown subject": {
		"entrypoint": "list_resources",
		"input": {"subject": subject("om_nobody"), "permission": "workspace:view", "parent": {"id": gx_ws_eng}},
		"unavailable": true,
	},
	"resources of a quarantined organization, for an unknown subject": {
		"entrypoint": "list_resources",
		"input": {"subject": subject("om_nobody"), "permission": "workspace:view", "organization_id": "org_globex"},
		"unavailable": true,
	},
	"resources of a quarantined organization, for another organization's token": {
		"entrypoint": "list_resources",
		"input": {"token": acme_token("", ["workspace:view"]), "permission": "workspace:view", "organization_id": "org_globex"},
		"want": failure("unknown_organization"),
	},
	"resources of another organization are listed": {
		"entrypoint": "list_resources",
		"input": {"subject": subject("om_frank"), "permission": "workspace:view"},
		"want": page_of([ws_ops]),
	},
	"memberships on a quarantined resource": {
		"entrypoint": "list_memberships",
		"input": {"permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"unavailable": true,
	},
	"memberships on another organization's resource": {
		"entrypoint": "list_memberships",
		"input": {"permission": "org:billing", "resource": {"id": acme_root}},
		"want": page_of(["om_carol", "om_grace"]),
	},
}

test_quarantine_discovery[name] if {
	some name, tc in quarantine_discovery_cases
	got := trellis[tc.entrypoint] with data.trellis_host as host with data.trellis_data as fixture_quarantined with input as tc.input
	discovery_answer_matches(got, tc)
}

discovery_answer_matches(got, tc) if {
	tc.unavailable
	result_matches(got, {"reason": globex_unavailable})
}

discovery_answer_matches(got, tc) if {
	not tc.unavailable
	result_matches(got, tc.want)
}
