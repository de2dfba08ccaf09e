package trellis.edge_test

import data.trellis.edge
import data.trellis_test

# Test keys, generated once for these tests only (never used elsewhere).

rsa_private := {
	"d": "Eb3KAAMVACUD6aDaV6T3iEY-KE81h6IlaXmzWunPaD-43qVHK0rFX5TUutxa2dS7GVGV5xAcYl-vxYtiZEpysxOsyx3BRULBan-V1ip-ZPcLYTTMRVuy8yIb8tGdOdZNYzB91t9EoRy2GYdcMgrrxXpw3YivE38yDX9MTmNnsZ7nuAPQRgaTzlWZgl7-rc-k6tO9zkU9oSDqM2NdoFIA2vZvqLg9wmkEdOIGsMaQYJ8DDMmtm5KWm-RdRXFvEqF5f6H0CMSEbvBuPaEW_Uk4v2UCkR6I_vftvLelxUVIeMiDTrep8ralkQrhdz2At2oFC6dkLyX2YWNO9OkyTBIwzQ",
	"dp": "nkJgPF8kD8mpHNdNJEEB0pLoOSWQVD3K8g5JTE5lcMqjirpSV0hn54YlbPWY7hlYxYx97jdQFpAVqGf5U6wp4XD7ZQaiF0NeL7-wAumwBOMNTPp2Do5CFN2jXWqK_LL7MdTqvq_jVY8MOMI9-0gPzC9TTcaGWQvWLK3xCBViZME",
	"dq": "V_-VbaPC1l4V2czalTGhRSpuCftpw4n6Bd1JpxgtpJ9es3nDhlrM4jBAqzBgWWLK4l1GFWIXFBxhEPNeXS5HXsG3b7cBJKK-TpBGQztBsmqAqJ5QRVKZxKGwqOCh5dB9etjbvoDaJWGeBNFshD9xKtGMoazuGWmGzXLswmk3NlE",
	"e": "AQAB",
	"kid": "test-rsa",
	"kty": "RSA",
	"n": "uddbv83LeKVPDvIbedgnVN_BF3CzVbA2fI6sFT4v6q_zKr6LgspIO9RlDbC7KfwRralDmgjGTkcpUMxB3SG8bQT3VmDzAmUNiJpatCxLrNUxqeBEgI-29Jtd7E0CKqhX86NSusBqEtYBxO8cOqOz_eGH0w3gIfj8FG6h-rW3vam_Ql-cPjlIRUKLSRYiVjnn977dHEFynIMDmV8cGcZdj7wwssURO8N4plQgNxmHUO7Cgvdcs_wddMkLFKqlPz1az61Y1dWuEG0EgBGn-EgOQOvbNWp5TnUpox2p-T9Cesj_29sCwGPZ8DaX__Lw7opDrMM-bzFXhRXVg3G3yceKcw",
	"p": "5AM7sXoDr5OLhHWn6Qcl1uAvQHXVSJD4EztQYWH6xdS2X2-68ac12NGzB0QEhekqw_gYdnCMMHIREQFcRbnuP1z_2o1pboROzrunaN4oyF54ZCyuBOMCRMsZdIHkqrcbfbRXooCYv4ppCYlEgsfIpVGrKR29AOmqDePkkekB26U",
	"q": "0Kb8ycXp3Xrjsce6XoLDrNMzr3i8fUGNTHXOsWbQeaMdcTjlZptVjWv7zvVc7p3c7S5jUAZW5bpl7kIWO9aMdSeyzkR44izt29QILtep4SQc7Ribol6vhnD4d05FQ9HLf0fcDsmesjwMgfVXtSBIHanSYxSFuh_c8X5Hej0k0jc",
	"qi": "Nu3k_O75vM_9cos2iwfEkYAqRtEIQkiDtXx37qMyk1H7951UkLalXY8blVM9TFGNApX8bhoxnnzKEGj0NRg_IJoDdz3s5ZB4Y4K_vrgKhym408w3-sY_9ZzV-Afuoh_rTiwkHn4GvKl7gyqCi3wFRQ86P2Xz429ULmJFFlSmOKk",
}

rsa_public := {
	"e": "AQAB",
	"kid": "test-rsa",
	"kty": "RSA",
	"n": "uddbv83LeKVPDvIbedgnVN_BF3CzVbA2fI6sFT4v6q_zKr6LgspIO9RlDbC7KfwRralDmgjGTkcpUMxB3SG8bQT3VmDzAmUNiJpatCxLrNUxqeBEgI-29Jtd7E0CKqhX86NSusBqEtYBxO8cOqOz_eGH0w3gIfj8FG6h-rW3vam_Ql-cPjlIRUKLSRYiVjnn977dHEFynIMDmV8cGcZdj7wwssURO8N4plQgNxmHUO7Cgvdcs_wddMkLFKqlPz1az61Y1dWuEG0EgBGn-EgOQOvbNWp5TnUpox2p-T9Cesj_29sCwGPZ8DaX__Lw7opDrMM-bzFXhRXVg3G3yceKcw",
}

ec_private := {
	"crv": "P-256",
	"d": "nj2aTWquPjuhna4dUfHCXDwVXIdpwFaPfCm20G_PhW4",
	"kid": "test-ec",
	"kty": "EC",
	"x": "Iv1NZsKDBW47np_7NLWQb0erxOWbLFoW1onIHJCSqns",
	"y": "e3GYCN0KcxaU47W0dKlkPL3Ig1-S17pxV1D_mH2Pa9o",
}

ec_public := {
	"crv": "P-256",
	"kid": "test-ec",
	"kty": "EC",
	"x": "Iv1NZsKDBW47np_7NLWQb0erxOWbLFoW1onIHJCSqns",
	"y": "e3GYCN0KcxaU47W0dKlkPL3Ig1-S17pxV1D_mH2Pa9o",
}

# attacker_private is a key the issuer never published.
attacker_private := {
	"d": "JmoewPjt0dLDjbSN5V917PS6Yd742LL32hECigmGSW5c0gru7eCxoJzkY4RZrjJ-BW0BHAQ_jRWxl2rJxZ74CVzBnxfyktSPs0iS2QZvZexuddpJImqNJDd_P8GZiVqWZqTbUnfYE5RkyuOM7gcO6p-6xRDkkx-RyKpu8-9KjZSyw3j1mFD3WJ9favH1kIISPhdUdIOgC1S5v5jjBSuhS8fZzw7_9IVz-36q-Y9yDjVZVq_jbcb0dljXxe9z9FO895OZcz_B5ivsOvkq4q4gCPsy-OgQB6Pc7Y7wfXupZ0zVlV3uyfIk_UCnIhtHb3QrwgrXCflmrcIv9Aq0-WIWjQ",
	"dp": "wKqmyAyCosYKbt9urGzdPA8I50w24FdJaDV5DKbky_qT65-rQAjUaO3n628vxu-2CgpFYLIWdrtSIhVDN5ena5tx7bNibgIP1ZcXPVMg5z9-OtO-CTcq6OpB_ceMP96zpRfCXH4uDzzAMKHKHOvU6dI2-MLTsLxRyDHVuPoKtfM",
	"dq": "Rh4igtm_BX_4TOnWqo1BY19pOKoGOKv9-o5w5ryhsm0lI-A3Yams_ZJz7pV4zTgAv_EW-VJk5DqXB11A53b3w8MW_EqWlLP0P9eymgc_tEasnrec9JcpLRb5s3TvDf87lVb8iVOuoF-gjVWf-USdRVZCIf5PQtc96tqXi55hwdc",
	"e": "AQAB",
	"kid": "attacker-rsa",
	"kty": "RSA",
	"n": "7E98IzQK3QDbq8Wdgp2hm2GNDuw1h4NA0NnpgHAk-uGgATYpTULYeJ-cTeeZWBJMrvlPBloyD53tv5g42Nuq4VVqbA6ukUKhQ8sPAjetknhtkHlW7khp5DiyP1BDzTBlqE6ryw0sUfeZQ_yyFDNJAFgLdQGqWBASx9EV7nsCdsY31K3ZWErdc5w7Qd2eiZMY6kJC3YoxtFKg680VEfRhTnIg3yYOyBf46IJAZ91FtrFYWaAeuY1THtjdWv57RjTnQANnhQM07DWKuaBtiUzSqbSZndFDFdoIzKZ7TZQ4Xn_IAxxxlZ7hVEOlkYms2FHbMOTzvZmeY1lX9JK6jsSTiQ",
	"p": "7gDbM0kN8lj04ccxkf04DRGBmKzQ_7Jgw_FlFk6weja6kZ4qR0VgW0S420KcPvCHntaF7_yjMp8xYnzRsfL59bxdj0a06NroG6JuOROAGcnlP-5c1cAGo92Ft0AnQZ_st4PteMlJsekE08QLK1iRmU1qyQEd6Qp87l8AWLVV7Ns",
	"q": "_i3b9l_yZUlyCyj8yotrU_6mJ8d1Cvoh_fBGTqqxEpNmdmz-ZfBu5Bxl6RvfW00oZd2E3qwiBXVcwxK80hO6bX9v5fe-LIbfwS9mantNWYodq8A36Cf02Gy7dQrBNpdWQdL4HgW_kovUZoy9yTV2QAZzEX5z_MAT95Fb3AEJ_Gs",
	"qi": "DI9Fwpu9y4KrTECvltOyHyUzQhfn-y3eniOauV-gu-G0CeDTRLYY40466k2-tBXgWdwLwsHwlj0VVmL6SQDtOCg9z09UXD0NcG-jU7yp5gyE2u0por9i3uHd02WgPgmjE0NmCvbhcX4PJf8JeE0dyx7_OEdBUOWxqqoELRV9oW8",
}

issuer := "https://issuer.test"

# trellis_keys is the verification data a bundle ships.
trellis_keys := {
	"issuer": issuer,
	"audience": "",
	"algorithms": ["RS256", "ES256"],
	"membership_claim": "organization_membership_id",
	"skew_seconds": 30,
	"jwks": {"keys": [rsa_public, ec_public]},
}

# now_ns is the evaluation time every test mocks: 2023-11-14T22:13:20Z.
now_ns := 1700000000000000000

now_s := 1700000000

claims(membership, perms) := {
	"iss": issuer,
	"sub": "user_1",
	"org_id": "org_acme",
	"organization_membership_id": membership,
	"role": "member",
	"roles": ["member"],
	"permissions": perms,
	"iat": now_s - 60,
	"exp": now_s + 3600,
}

rs256(payload) := io.jwt.encode_sign({"alg": "RS256", "kid": "test-rsa", "typ": "JWT"}, payload, rsa_private)

es256(payload) := io.jwt.encode_sign({"alg": "ES256", "kid": "test-ec", "typ": "JWT"}, payload, ec_private)

b64(x) := base64url.encode_no_pad(json.marshal(x))

good := rs256(claims("om_carol", ["project:edit"]))

api := {"id": trellis_test.prj_api}

# check evaluates the edge's check as a stock OPA loaded with a bundle would:
# data.trellis_keys and data.trellis_data set, data.trellis_host absent.
check(req) := d if {
	d := edge.check with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture
		with input as req with time.now_ns as now_ns
}

allowed_by_token := {"allowed": true, "decided_by": "token", "code": "token_permission"}

allowed_by_assignment := {"allowed": true, "decided_by": "assignment", "code": "role_assignment"}

denied(code) := {"allowed": false, "decided_by": "none", "code": code}

summary(d) := {"allowed": d.allowed, "decided_by": d.decided_by, "code": d.reason.code}

check_cases := {
	"RS256 token grants": {"token": good, "want": allowed_by_token},
	"ES256 token grants": {"token": es256(claims("om_carol", ["project:edit"])), "want": allowed_by_token},
	"token without the permission falls through to data": {
		"token": rs256(claims("om_alice", [])),
		"want": allowed_by_assignment,
	},
	"token without the permission, data without a grant": {
		"token": rs256(claims("om_carol", [])),
		"want": denied("no_grant"),
	},
	"token without kid verified by the only key": {
		"token": io.jwt.encode_sign({"alg": "RS256"}, claims("om_carol", ["project:edit"]), rsa_private),
		"keys": object.union(trellis_keys, {"jwks": {"keys": [rsa_public]}}),
		"want": allowed_by_token,
	},
	"token with an audience the edge does not check": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"aud": "client_1"})),
		"want": allowed_by_token,
	},
	"token with the required audience": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"aud": ["other", "client_1"]})),
		"keys": object.union(trellis_keys, {"audience": "client_1"}),
		"want": allowed_by_token,
	},
	"expired within the skew": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"exp": now_s - 10})),
		"want": allowed_by_token,
	},
	# Forgeries and invalid tokens: all denied, whatever they claim.
	"signed by another key under the issuer's kid": {
		"token": io.jwt.encode_sign({"alg": "RS256", "kid": "test-rsa"}, claims("om_carol", ["project:edit"]), attacker_private),
		"want": denied("token_bad_signature"),
	},
	"payload swapped under a valid signature": {
		"token": concat(".", [
			split(good, ".")[0],
			b64(claims("om_grace", ["project:edit", "project:delete"])),
			split(good, ".")[2],
		]),
		"want": denied("token_bad_signature"),
	},
	"alg none": {
		"token": concat(".", [b64({"alg": "none", "typ": "JWT"}), b64(claims("om_carol", ["project:edit"])), ""]),
		"want": denied("token_algorithm_not_allowed"),
	},
	"HS256 keyed with the issuer's public key": {
		"token": io.jwt.encode_sign(
			{"alg": "HS256", "kid": "test-rsa"},
			claims("om_carol", ["project:edit"]),
			{"kty": "oct", "k": b64(rsa_public)},
		),
		"want": denied("token_algorithm_not_allowed"),
	},
	"algorithm outside the allow-list": {
		"token": good,
		"keys": object.union(trellis_keys, {"algorithms": ["ES256"]}),
		"want": denied("token_algorithm_not_allowed"),
	},
	"unknown kid": {
		"token": io.jwt.encode_sign({"alg": "RS256", "kid": "nope"}, claims("om_carol", ["project:edit"]), rsa_private),
		"want": denied("token_unknown_key"),
	},
	"no kid and several keys": {
		"token": io.jwt.encode_sign({"alg": "RS256"}, claims("om_carol", ["project:edit"]), rsa_private),
		"want": denied("token_unknown_key"),
	},
	"wrong issuer": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"iss": "https://evil.test"})),
		"want": denied("token_wrong_issuer"),
	},
	"no issuer": {
		"token": rs256(object.remove(claims("om_carol", ["project:edit"]), {"iss"})),
		"want": denied("token_wrong_issuer"),
	},
	"expired": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"exp": now_s - 31})),
		"want": denied("token_expired"),
	},
	"not valid yet": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"nbf": now_s + 60})),
		"want": denied("token_not_yet_valid"),
	},
	"issued in the future": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"iat": now_s + 60})),
		"want": denied("token_not_yet_valid"),
	},
	"wrong audience": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"aud": "other"})),
		"keys": object.union(trellis_keys, {"audience": "client_1"}),
		"want": denied("token_wrong_audience"),
	},
	"no audience when one is required": {
		"token": good,
		"keys": object.union(trellis_keys, {"audience": "client_1"}),
		"want": denied("token_wrong_audience"),
	},
	"no exp": {
		"token": rs256(object.remove(claims("om_carol", ["project:edit"]), {"exp"})),
		"want": denied("token_invalid_claims"),
	},
	"exp as a string": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"exp": "4102444800"})),
		"want": denied("token_invalid_claims"),
	},
	"org_id not a string": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"org_id": ["org_acme"]})),
		"want": denied("token_invalid_claims"),
	},
	"permissions not an array of strings": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"permissions": "project:edit"})),
		"want": denied("token_invalid_claims"),
	},
	"entitlements not an array of strings": {
		"token": rs256(object.union(claims("om_carol", ["project:edit"]), {"entitlements": "subscription-suspended"})),
		"want": denied("token_invalid_claims"),
	},
	"not a JWT": {"token": "not.a.jwt", "want": denied("token_malformed")},
	"a claims object instead of a JWT": {
		"token": claims("om_carol", ["project:edit"]),
		"want": denied("token_malformed"),
	},
	"a bundle without keys": {
		"token": good,
		"keys": {},
		"want": denied("token_keys_unavailable"),
	},
}

test_check[name] if {
	some name, tc in check_cases
	got := edge.check with data.trellis_keys as object.get(tc, "keys", trellis_keys)
		with data.trellis_data as trellis_test.fixture
		with input as {"token": tc.token, "permission": "project:edit", "resource": api}
		with time.now_ns as now_ns
	summary(got) == tc.want
}

test_caller_cannot_supply_a_token_error_or_claims if {
	# A token_error from the caller is dropped; a verified token still decides.
	summary(check({"token": good, "token_error": {"code": "x", "message": "y"}, "permission": "project:edit", "resource": api})) == allowed_by_token
}

# The core and the extensions see the claims the embedded host gives them
# (internal/authz claimsTerm), sid, feature_flags and entitlements too.
test_claims_are_the_hosts if {
	full := object.union(claims("om_carol", ["project:edit"]), {"sid": "session_1", "feature_flags": ["beta"], "entitlements": ["subscription-suspended"]})
	edge.host_input.token == {
		"sub": "user_1", "org_id": "org_acme", "membership_id": "om_carol", "role": "member", "roles": ["member"],
		"permissions": ["project:edit"], "sid": "session_1", "feature_flags": ["beta"], "entitlements": ["subscription-suspended"],
	} with data.trellis_keys as trellis_keys with input as {"token": rs256(full)} with time.now_ns as now_ns
	edge.host_input.token == {
		"sub": "user_1", "org_id": "org_acme", "membership_id": "om_carol", "role": "member", "roles": ["member"],
		"permissions": [], "sid": "", "feature_flags": [], "entitlements": [],
	} with data.trellis_keys as trellis_keys with input as {"token": rs256(object.remove(claims("om_carol", []), {"permissions"}))} with time.now_ns as now_ns
}

test_membership_subject_passes_through if {
	got := check({"subject": {"organization_membership_id": "om_alice"}, "permission": "project:edit", "resource": api})
	summary(got) == allowed_by_assignment
}

test_host_flag_is_not_in_the_data if {
	# The edge vouches for verified claims only inside its own evaluation.
	not data.trellis_host.verifies_tokens with data.trellis_keys as trellis_keys
}

test_entrypoints_verify_the_token if {
	batch := edge.batch with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture
		with input as {"token": good, "checks": [{"permission": "project:edit", "resource": api}]}
		with time.now_ns as now_ns
	[summary(batch[0])] == [allowed_by_token]

	perms := edge.effective_permissions with data.trellis_keys as trellis_keys
		with data.trellis_data as trellis_test.fixture
		with input as {"token": good, "resource": api}
		with time.now_ns as now_ns
	"project:edit" in perms.permissions

	listed := edge.list_resources with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture
		with input as {"token": good, "permission": "project:edit", "resource_type": "project"}
		with time.now_ns as now_ns
	trellis_test.prj_api in listed.ids

	members := edge.list_memberships with data.trellis_keys as trellis_keys
		with data.trellis_data as trellis_test.fixture
		with input as {"permission": "project:edit", "resource": api}
	"om_alice" in members.ids

	edge.revision == 42 with data.trellis_data as trellis_test.fixture
}

test_entrypoints_deny_a_forged_token if {
	forged := io.jwt.encode_sign({"alg": "RS256", "kid": "test-rsa"}, claims("om_grace", ["project:edit"]), attacker_private)
	perms := edge.effective_permissions with data.trellis_keys as trellis_keys
		with data.trellis_data as trellis_test.fixture
		with input as {"token": forged, "resource": api}
		with time.now_ns as now_ns
	perms.reason.code == "token_bad_signature"
	listed := edge.list_resources with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture
		with input as {"token": forged, "permission": "project:edit", "resource_type": "project"}
		with time.now_ns as now_ns
	listed.ids == []
}

test_no_keys_in_the_data_denies if {
	got := edge.check with data.trellis_data as trellis_test.fixture
		with input as {"token": good, "permission": "project:edit", "resource": api}
		with time.now_ns as now_ns
	summary(got) == denied("token_keys_unavailable")
}

# Through the edge entrypoints, with the raw JWT verified here, a token of
# acme asking about globex's resources gets what it would get if globex did
# not exist, and a quarantined organization answers organization_unavailable.
edge_tenancy_requests := {
	"check": {"entrypoint": "check", "input": {"permission": "project:edit", "resource": {"id": trellis_test.gx_prj_api}}},
	"batch": {"entrypoint": "batch", "input": {"checks": [{"permission": "project:edit", "resource": {"id": trellis_test.gx_prj_api}}]}},
	"effective_permissions": {"entrypoint": "effective_permissions", "input": {"resource": {"id": trellis_test.gx_prj_api}}},
	"list_resources": {"entrypoint": "list_resources", "input": {"permission": "project:edit", "organization_id": "org_globex"}},
}

test_edge_no_existence_oracle_across_organizations[name] if {
	some name, req in edge_tenancy_requests
	req_input := object.union(req.input, {"token": rs256(claims("om_alice", ["project:edit"]))})
	got := edge[req.entrypoint] with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture
		with input as req_input with time.now_ns as now_ns
	want := edge[req.entrypoint] with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture_without_globex
		with input as req_input with time.now_ns as now_ns
	got == want
}

test_edge_quarantined_organization_is_unavailable if {
	globex := rs256(object.union(claims("om_erin", []), {"org_id": "org_globex"}))
	got := edge.check with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture_quarantined
		with input as {"token": globex, "permission": "workspace:view", "resource": {"id": trellis_test.gx_ws_eng}}
		with time.now_ns as now_ns
	summary(got) == denied("organization_unavailable")
	served := edge.check with data.trellis_keys as trellis_keys with data.trellis_data as trellis_test.fixture_quarantined
		with input as {"token": good, "permission": "project:edit", "resource": api}
		with time.now_ns as now_ns
	summary(served) == allowed_by_token
}
