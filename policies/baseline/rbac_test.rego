package baseline_test

import data.baseline
import data.trellis.edge_test

issuer := "https://issuer.test"

# A tree of seven levels in org_a: root_a → l2 → … → l7; org_b has its own root.
resources := {
	"root_a": {"organization": "org_a"},
	"l2": {"organization": "org_a", "parent": "root_a"},
	"l3": {"organization": "org_a", "parent": "l2"},
	"l4": {"organization": "org_a", "parent": "l3"},
	"l5": {"organization": "org_a", "parent": "l4"},
	"l6": {"organization": "org_a", "parent": "l5"},
	"l7": {"organization": "org_a", "parent": "l6"},
	"root_b": {"organization": "org_b"},
}

fixture := {
	"issuer": issuer,
	"jwks": json.marshal({"keys": [edge_test.rsa_public]}),
	"resources": resources,
	"memberships": {
		"om_root": {"organization": "org_a", "active": true},
		"om_l3": {"organization": "org_a", "active": true},
		"om_off": {"organization": "org_a", "active": false},
		"om_b": {"organization": "org_b", "active": true},
	},
	"role_assignments": {
		"om_root": [{"role": "viewer", "resource": "root_a"}],
		"om_l3": [{"role": "viewer", "resource": "root_b"}, {"role": "editor", "resource": "l3"}],
		"om_off": [{"role": "editor", "resource": "root_a"}],
		"om_b": [{"role": "editor", "resource": "root_b"}],
	},
	"roles": {"viewer": ["doc:view"], "editor": ["doc:view", "doc:edit"]},
}

# claims are those of a session token of membership om in org, valid until 2100.
claims(org, om, perms) := {
	"iss": issuer,
	"sub": "user_1",
	"org_id": org,
	"organization_membership_id": om,
	"permissions": perms,
	"iat": 1700000000,
	"exp": 4102444800,
}

token(payload) := io.jwt.encode_sign({"alg": "RS256", "kid": "test-rsa", "typ": "JWT"}, payload, edge_test.rsa_private)

allow(tok, perm, rid) := a if {
	a := baseline.allow with input as {"token": tok, "permission": perm, "resource": rid}
		with data.issuer as fixture.issuer with data.jwks as fixture.jwks
		with data.resources as fixture.resources with data.memberships as fixture.memberships
		with data.role_assignments as fixture.role_assignments with data.roles as fixture.roles
}

cases := {
	"token permission in its organization": {"token": token(claims("org_a", "om_none", ["doc:edit"])), "perm": "doc:edit", "rid": "l7", "want": true},
	"token permission in another organization": {"token": token(claims("org_b", "om_b", ["doc:admin"])), "perm": "doc:admin", "rid": "l2", "want": false},
	"role on the root, resource six levels down": {"token": token(claims("org_a", "om_root", [])), "perm": "doc:view", "rid": "l6", "want": true},
	"role on the root, seven levels down: past the rule's depth": {"token": token(claims("org_a", "om_root", [])), "perm": "doc:view", "rid": "l7", "want": false},
	"role on the resource itself": {"token": token(claims("org_a", "om_l3", [])), "perm": "doc:edit", "rid": "l3", "want": true},
	"role below the resource does not reach up": {"token": token(claims("org_a", "om_l3", [])), "perm": "doc:edit", "rid": "l2", "want": false},
	"role without the permission": {"token": token(claims("org_a", "om_root", [])), "perm": "doc:edit", "rid": "l4", "want": false},
	"inactive membership": {"token": token(claims("org_a", "om_off", [])), "perm": "doc:edit", "rid": "l4", "want": false},
	"membership of another organization": {"token": token(claims("org_a", "om_b", [])), "perm": "doc:edit", "rid": "root_b", "want": false},
	"token of another organization than its membership": {"token": token(claims("org_b", "om_root", [])), "perm": "doc:view", "rid": "l2", "want": false},
	"unknown resource": {"token": token(claims("org_a", "om_root", ["doc:view"])), "perm": "doc:view", "rid": "nope", "want": false},
	"unknown membership": {"token": token(claims("org_a", "om_nope", [])), "perm": "doc:view", "rid": "l2", "want": false},
	"wrong issuer": {"token": token(object.union(claims("org_a", "om_root", ["doc:view"]), {"iss": "https://evil.test"})), "perm": "doc:view", "rid": "l2", "want": false},
	"expired": {"token": token(object.union(claims("org_a", "om_root", ["doc:view"]), {"exp": 1700000001})), "perm": "doc:view", "rid": "l2", "want": false},
	"signed by a key the issuer never published": {
		"token": io.jwt.encode_sign({"alg": "RS256", "kid": "test-rsa", "typ": "JWT"}, claims("org_a", "om_root", ["doc:view"]), edge_test.attacker_private),
		"perm": "doc:view", "rid": "l2", "want": false,
	},
	"not a token": {"token": "garbage", "perm": "doc:view", "rid": "l2", "want": false},
}

# test_allow prints the names of the cases whose answer differs.
test_allow if {
	failing := {name | some name, c in cases; allow(c.token, c.perm, c.rid) != c.want}
	print("failing cases:", failing)
	count(failing) == 0
}
