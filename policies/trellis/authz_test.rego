package trellis_test

import data.trellis

# decision_matches holds when got is a decision with want's allowed and
# decided_by, whose reason holds every field of want.reason and always has a
# non-empty message.
decision_matches(got, want) if {
	object.keys(got) == {"allowed", "decided_by", "reason"}
	got.allowed == want.allowed
	got.decided_by == want.decided_by
	every key, value in want.reason {
		got.reason[key] == value
	}
	is_string(got.reason.message)
	got.reason.message != ""
}

allowed_by_token := {
	"allowed": true,
	"decided_by": "token",
	"reason": {"code": "token_permission"},
}

allowed_by(role, ref) := {
	"allowed": true,
	"decided_by": "assignment",
	"reason": {"code": "role_assignment", "role": role, "resource": ref},
}

denied_with(code) := {"allowed": false, "decided_by": "none", "reason": {"code": code}}

check_cases := {
	# Token layer.
	"token grants in its own organization": {
		"input": {"token": acme_token("om_carol", ["project:edit"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": {
			"allowed": true,
			"decided_by": "token",
			"reason": {
				"code": "token_permission",
				"message": "the token grants project:edit in organization org_acme",
			},
		},
	},
	"token grants on the organization root": {
		"input": {"token": acme_token("om_carol", ["workspace:manage"]), "permission": "workspace:manage", "resource": {"id": acme_root}},
		"want": allowed_by_token,
	},
	"another organization's resource is unknown to a token": {
		"input": {"token": acme_token("om_carol", ["project:edit"]), "permission": "project:edit", "resource": {"id": gx_prj_api}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {
				"code": "unknown_resource",
				"message": "resource authz_resource_gx_prj_api does not exist",
			},
		},
	},
	"another organization's resource is unknown to a token without a membership": {
		"input": {"token": acme_token("", ["project:edit"]), "permission": "project:edit", "resource": {"id": gx_prj_api}},
		"want": denied_with("unknown_resource"),
	},
	"token without the permission falls through to data": {
		"input": {"token": acme_token("om_alice", ["workspace:view"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"token without the permission, data without a grant": {
		"input": {"token": acme_token("om_carol", ["workspace:view"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {
				"code": "no_grant",
				"message": "membership om_carol holds no role granting project:edit on project:api or its ancestors",
			},
		},
	},
	"stale token grants what data does not give": {
		# om_alice holds app:view but not app:deploy in data.
		"input": {"token": acme_token("om_alice", ["app:deploy"]), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": allowed_by_token,
	},
	"token grants even with a membership of another organization": {
		# Token-first: the membership claim only matters on fall-through.
		"input": {"token": acme_token("om_erin", ["app:view"]), "permission": "app:view", "resource": {"id": app_gw}},
		"want": allowed_by_token,
	},
	"token membership of another organization, resource of the token's": {
		"input": {"token": acme_token("om_erin", []), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {
				"code": "token_membership_mismatch",
				"message": "the token's membership om_erin does not belong to its organization org_acme",
			},
		},
	},
	"token membership of another organization, resource of the membership's": {
		# om_alice is in acme, the token is globex's: never usable, even on
		# acme resources where om_alice holds grants, which the token does
		# not even see.
		"input": {"token": globex_token("om_alice", []), "permission": "workspace:manage", "resource": {"id": ws_eng}},
		"want": denied_with("unknown_resource"),
	},
	"token with an empty membership claim": {
		"input": {"token": acme_token("", []), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {
				"code": "no_membership",
				"message": "no membership subject and the token does not grant the permission",
			},
		},
	},
	"token without a membership claim": {
		"input": {"token": {"org_id": "org_acme", "permissions": []}, "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("no_membership"),
	},
	"token naming an unknown membership": {
		"input": {"token": acme_token("om_nobody", []), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("unknown_membership"),
	},
	"token naming an inactive membership": {
		"input": {"token": acme_token("om_dave", []), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("membership_inactive"),
	},
	"token that is not an object is ignored": {
		"input": {"token": "eyJhbGciOi.forged.jwt", "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("no_membership"),
	},
	"token error denies with its code": {
		"input": {"token_error": expired, "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "token_expired", "message": "the token has expired"},
		},
	},
	"token error denies even when data would allow": {
		"input": {"token_error": expired, "subject": subject("om_grace"), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("token_expired"),
	},
	"token error comes before an unknown permission": {
		"input": {"token_error": expired, "permission": "nope:nope", "resource": {"id": "authz_resource_nope"}},
		"want": denied_with("token_expired"),
	},
	# Resolving resources.
	"resource by type and external id in the token's organization": {
		"input": {"token": acme_token("om_bob", []), "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}},
		"want": allowed_by("project-editor", prj_api_ref),
	},
	"same external id resolves in the other token's organization": {
		"input": {"token": globex_token("om_erin", []), "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}},
		"want": allowed_by("admin", globex_root_ref),
	},
	"resource by type and external id with its organization": {
		"input": {"subject": subject("om_erin"), "permission": "project:edit", "resource": {"type": "project", "external_id": "api", "organization_id": "org_globex"}},
		"want": allowed_by("admin", globex_root_ref),
	},
	"reference into another organization than the token's is unknown": {
		"input": {"token": acme_token("om_bob", []), "permission": "project:edit", "resource": {"type": "project", "external_id": "api", "organization_id": "org_globex"}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource project:api does not exist"},
		},
	},
	"organization root by type and external id": {
		"input": {"subject": subject("om_grace"), "permission": "org:billing", "resource": {"type": "organization", "external_id": "org_acme", "organization_id": "org_acme"}},
		"want": allowed_by("admin", acme_root_ref),
	},
	"unknown resource by id": {
		"input": {"subject": subject("om_grace"), "permission": "workspace:view", "resource": {"id": "authz_resource_nope"}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource authz_resource_nope does not exist"},
		},
	},
	"unknown resource by type and external id": {
		"input": {"subject": subject("om_grace"), "permission": "workspace:view", "resource": {"type": "workspace", "external_id": "nope", "organization_id": "org_acme"}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource workspace:nope does not exist"},
		},
	},
	"external id of another organization's resource": {
		# app "gateway" exists only in acme.
		"input": {"subject": subject("om_erin"), "permission": "app:view", "resource": {"type": "app", "external_id": "gateway", "organization_id": "org_globex"}},
		"want": denied_with("unknown_resource"),
	},
	"type and external id in the membership's organization": {
		"input": {"subject": subject("om_bob"), "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}},
		"want": allowed_by("project-editor", prj_api_ref),
	},
	"type and external id without any organization": {
		"input": {"subject": subject("om_nobody"), "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource project:api does not exist"},
		},
	},
	"resource reference naming nothing": {
		"input": {"subject": subject("om_grace"), "permission": "workspace:view", "resource": {}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource (no id, nor type and external_id) does not exist"},
		},
	},
	"unknown permission": {
		"input": {"subject": subject("om_grace"), "permission": "project:delete", "resource": {"id": prj_api}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_permission", "message": "permission \"project:delete\" does not exist"},
		},
	},
	"unknown permission in the token is still unknown": {
		"input": {"token": acme_token("om_grace", ["project:delete"]), "permission": "project:delete", "resource": {"id": prj_api}},
		"want": denied_with("unknown_permission"),
	},
	"unknown permission comes before unknown resource": {
		"input": {"subject": subject("om_grace"), "permission": "project:delete", "resource": {"id": "authz_resource_nope"}},
		"want": denied_with("unknown_permission"),
	},
	# Subjects.
	"no subject at all": {
		"input": {"permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("no_membership"),
	},
	"unknown membership": {
		"input": {"subject": subject("om_nobody"), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_membership", "message": "membership om_nobody does not exist"},
		},
	},
	"inactive membership is denied despite its grants": {
		"input": {"subject": subject("om_dave"), "permission": "workspace:manage", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "membership_inactive", "message": "membership om_dave is not active"},
		},
	},
	"another organization's resource is unknown to a membership": {
		"input": {"subject": subject("om_erin"), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": {
			"allowed": false,
			"decided_by": "none",
			"reason": {"code": "unknown_resource", "message": "resource authz_resource_ws_eng does not exist"},
		},
	},
	# Inheritance; the reason names the nearest grant.
	"inherited from the organization root": {
		"input": {"subject": subject("om_grace"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": {
			"allowed": true,
			"decided_by": "assignment",
			"reason": {
				"code": "role_assignment",
				"role": "admin",
				"resource": acme_root_ref,
				"message": "role admin on organization:org_acme grants app:deploy",
			},
		},
	},
	"granted on the organization root itself": {
		"input": {"subject": subject("om_grace"), "permission": "org:billing", "resource": {"id": acme_root}},
		"want": allowed_by("admin", acme_root_ref),
	},
	"organization role of the membership's organization": {
		"input": {"subject": subject("om_carol"), "permission": "project:view", "resource": {"id": app_auth}},
		"want": allowed_by("auditor", acme_root_ref),
	},
	"organization role of another organization does not apply": {
		# globex's auditor has workspace:view; acme's does not.
		"input": {"subject": subject("om_carol"), "permission": "workspace:view", "resource": {"id": ws_eng}},
		"want": denied_with("no_grant"),
	},
	"organization role in its own organization": {
		"input": {"subject": subject("om_heidi"), "permission": "workspace:view", "resource": {"id": gx_ws_eng}},
		"want": allowed_by("auditor", globex_root_ref),
	},
	"inherited from a workspace": {
		"input": {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": {
			"allowed": true,
			"decided_by": "assignment",
			"reason": {
				"code": "role_assignment",
				"role": "workspace-admin",
				"resource": ws_eng_ref,
				"message": "role workspace-admin on workspace:eng grants project:edit",
			},
		},
	},
	"inherited from a workspace by a leaf project": {
		"input": {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_web}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"nearest grant wins over the organization root": {
		# member on the root and workspace-admin on ws_eng both give it.
		"input": {"subject": subject("om_alice"), "permission": "workspace:view", "resource": {"id": app_gw}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"outside the workspace only the root grant applies": {
		"input": {"subject": subject("om_alice"), "permission": "workspace:view", "resource": {"id": ws_ops}},
		"want": allowed_by("member", acme_root_ref),
	},
	"inherited from a project": {
		"input": {"subject": subject("om_bob"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": {
			"allowed": true,
			"decided_by": "assignment",
			"reason": {
				"code": "role_assignment",
				"role": "project-editor",
				"resource": prj_api_ref,
				"message": "role project-editor on project:api grants app:deploy",
			},
		},
	},
	"granted on the resource itself": {
		"input": {"subject": subject("om_bob"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by("project-editor", prj_api_ref),
	},
	"granted on a leaf": {
		"input": {"subject": subject("om_frank"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": allowed_by("app-deployer", app_gw_ref),
	},
	"a leaf grant does not reach its sibling": {
		"input": {"subject": subject("om_frank"), "permission": "app:deploy", "resource": {"id": app_auth}},
		"want": denied_with("no_grant"),
	},
	"grants do not flow up the tree": {
		# om_bob's project-editor is on prj_api, below ws_eng.
		"input": {"subject": subject("om_bob"), "permission": "project:view", "resource": {"id": ws_eng}},
		"want": denied_with("no_grant"),
	},
	"role holding a descendant-type permission": {
		# workspace-admin (a workspace role) lists app:view.
		"input": {"subject": subject("om_alice"), "permission": "app:view", "resource": {"id": app_auth}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"descendant-type permission checked on the role's own resource": {
		# No type(P) == type(R) requirement.
		"input": {"subject": subject("om_alice"), "permission": "app:view", "resource": {"id": ws_eng}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"permission the role does not hold": {
		"input": {"subject": subject("om_alice"), "permission": "app:deploy", "resource": {"id": app_gw}},
		"want": denied_with("no_grant"),
	},
	"organization without grants for the membership": {
		"input": {"subject": subject("om_frank"), "permission": "workspace:view", "resource": {"id": ws_data}},
		"want": denied_with("no_grant"),
	},
}

test_check[name] if {
	some name, tc in check_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as tc.input
	decision_matches(got, tc.want)
}

# The data layer is always current, whatever a token still says: once om_alice
# loses workspace-admin on ws_eng, only a token that still lists the
# permission allows.
data_currency_cases := {
	"before the revocation, data allows": {
		"data": fixture,
		"input": {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by("workspace-admin", ws_eng_ref),
	},
	"after the revocation, data denies": {
		"data": fixture_revoked,
		"input": {"subject": subject("om_alice"), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": denied_with("no_grant"),
	},
	"after the revocation, a token without the permission denies": {
		"data": fixture_revoked,
		"input": {"token": acme_token("om_alice", ["workspace:view"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": denied_with("no_grant"),
	},
	"after the revocation, the stale token still allows": {
		"data": fixture_revoked,
		"input": {"token": acme_token("om_alice", ["project:edit"]), "permission": "project:edit", "resource": {"id": prj_api}},
		"want": allowed_by_token,
	},
	"after the revocation, the organization role still applies": {
		"data": fixture_revoked,
		"input": {"subject": subject("om_alice"), "permission": "workspace:view", "resource": {"id": prj_api}},
		"want": allowed_by("member", acme_root_ref),
	},
	"a grant across organizations in data is still refused": {
		"data": fixture_cross_org,
		"input": {"subject": subject("om_erin"), "permission": "workspace:manage", "resource": {"id": ws_eng}},
		"want": denied_with("unknown_resource"),
	},
}

test_check_reads_current_data[name] if {
	some name, tc in data_currency_cases
	got := trellis.check with data.trellis_host as host with data.trellis_data as tc.data with input as tc.input
	decision_matches(got, tc.want)
}

batch_cases := {
	"one decision per check, in order": {
		"input": {
			"token": acme_token("om_bob", ["org:billing"]),
			"checks": [
				{"permission": "app:deploy", "resource": {"id": app_gw}},
				{"permission": "org:billing", "resource": {"id": acme_root}},
				{"permission": "project:edit", "resource": {"id": ws_eng}},
				{"permission": "nope:nope", "resource": {"id": ws_eng}},
				{"permission": "app:view", "resource": {"type": "app", "external_id": "nope"}},
				{"permission": "project:edit", "resource": {"type": "project", "external_id": "api"}},
				{"permission": "project:edit", "resource": {"id": gx_prj_api}},
			],
		},
		"want": [
			allowed_by("project-editor", prj_api_ref),
			allowed_by_token,
			denied_with("no_grant"),
			denied_with("unknown_permission"),
			denied_with("unknown_resource"),
			allowed_by("project-editor", prj_api_ref),
			denied_with("unknown_resource"),
		],
	},
	"the same check twice gives two decisions": {
		"input": {
			"subject": subject("om_frank"),
			"checks": [
				{"permission": "app:deploy", "resource": {"id": app_gw}},
				{"permission": "app:deploy", "resource": {"id": app_gw}},
			],
		},
		"want": [
			allowed_by("app-deployer", app_gw_ref),
			allowed_by("app-deployer", app_gw_ref),
		],
	},
	"token error denies every check": {
		"input": {
			"token_error": expired,
			"checks": [
				{"permission": "app:deploy", "resource": {"id": app_gw}},
				{"permission": "nope:nope", "resource": {"id": app_gw}},
			],
		},
		"want": [denied_with("token_expired"), denied_with("token_expired")],
	},
	"no checks": {
		"input": {"subject": subject("om_frank"), "checks": []},
		"want": [],
	},
}

test_batch[name] if {
	some name, tc in batch_cases
	got := trellis.batch with data.trellis_host as host with data.trellis_data as fixture with input as tc.input
	count(got) == count(tc.want)
	every i, want in tc.want {
		decision_matches(got[i], want)
	}
}

# BUG (policy): batch drops a check whose permission or resource is missing,
# because decide() is undefined for an undefined argument and the array
# comprehension skips it. Every later decision then shifts one index up, so a
# caller reading decisions by position (the OPA Data API and stock-OPA edges
# pass input unvalidated) can read the next check's allow as this check's.
# Each check must yield a decision, a deny for a malformed one.
test_batch_answers_malformed_checks_in_place[name] if {
	some name, checks in {
		"check without a resource": [
			{"permission": "app:deploy"},
			{"permission": "app:deploy", "resource": {"id": app_gw}},
		],
		"check without a permission": [
			{"resource": {"id": app_gw}},
			{"permission": "app:deploy", "resource": {"id": app_gw}},
		],
	}
	got := trellis.batch with data.trellis_host as host with data.trellis_data as fixture with input as {"subject": subject("om_frank"), "checks": checks}
	count(got) == 2
	got[0].allowed == false
	got[0].decided_by == "none"
	decision_matches(got[1], allowed_by("app-deployer", app_gw_ref))
}

test_batch_agrees_with_check if {
	checks := [{"permission": perm, "resource": {"id": rid}} |
		some perm, _ in fixture.permissions
		some rid, _ in fixture.resources
	]
	sub := {"token": acme_token("om_bob", ["org:billing"])}
	got := trellis.batch with data.trellis_host as host with data.trellis_data as fixture with input as object.union(sub, {"checks": checks})
	count(got) == count(checks)
	every i, c in checks {
		got[i] == trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as object.union(sub, c)
	}
}

test_revision if {
	trellis.revision == 42 with data.trellis_host as host with data.trellis_data as fixture
}

test_revision_follows_data if {
	trellis.revision == 43 with data.trellis_host as host with data.trellis_data as object.union(fixture, {"revision": 43})
}

# Without a host that vouches for it (a stock OPA queried on this package
# directly), a claims object in input.token is ignored: it can never allow.
untrusted_token_cases := {
	"no host document": {"host": {}},
	"host that does not verify": {"host": {"verifies_tokens": false}},
	"host flag that is not the boolean true": {"host": {"verifies_tokens": "true"}},
}

test_claims_are_ignored_unless_the_host_verifies_tokens[name] if {
	some name, tc in untrusted_token_cases
	forged := acme_token("om_carol", ["project:edit"])
	got := trellis.check with data.trellis_host as tc.host with data.trellis_data as fixture
		with input as {"token": forged, "permission": "project:edit", "resource": {"id": prj_api}}
	decision_matches(got, denied_with("no_membership"))
	perms := trellis.effective_permissions with data.trellis_host as tc.host with data.trellis_data as fixture
		with input as {"token": forged, "resource": {"id": prj_api}}
	perms.permissions == []
	listed := trellis.list_resources with data.trellis_host as tc.host with data.trellis_data as fixture
		with input as {"token": forged, "permission": "project:edit", "organization_id": "org_acme"}
	listed.ids == []
}

# With explain, an allow by assignment names the path from the role's
# resource down to the one checked; without, it does not.
test_explain_names_the_path if {
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as {"token": acme_token("om_alice", []), "permission": "project:edit", "resource": {"id": prj_api}, "explain": true}
	got.reason.path == [
		{"id": ws_eng, "type": "workspace", "external_id": "eng"},
		{"id": prj_api, "type": "project", "external_id": "api"},
	]
	plain := trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as {"token": acme_token("om_alice", []), "permission": "project:edit", "resource": {"id": prj_api}}
	not plain.reason.path
}

test_explain_on_the_resource_itself if {
	got := trellis.check with data.trellis_host as host with data.trellis_data as fixture with input as {"token": acme_token("om_alice", []), "permission": "workspace:view", "resource": {"id": ws_eng}, "explain": true}
	got.reason.path == [{"id": ws_eng, "type": "workspace", "external_id": "eng"}]
}
