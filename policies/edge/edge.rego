# METADATA
# title: Trellis edge
# description: |
#   The decision entrypoints for a stock OPA edge that loads a Trellis bundle.
#   input.token is the raw session JWT, as the client sent it; this package
#   verifies it against the keys the bundle ships in data.trellis_keys
#   (signature, algorithm allow-list, kid, exp, nbf, iat, iss, aud and claim
#   types, like internal/token) and only then hands its claims to the core
#   rules of package trellis, vouching for them with
#   data.trellis_host.verifies_tokens. A token that fails becomes
#   input.token_error, which denies with its reason. Every other input field
#   is passed through unchanged. Query data.trellis.edge.<entrypoint>; the
#   core package queried directly ignores any claims object (no host vouches).
package trellis.edge

import data.trellis

# METADATA
# title: check
# description: data.trellis.check, with input.token verified here.
# entrypoint: true
check := d if {
	d := trellis.check with input as host_input with data.trellis_host.verifies_tokens as true
}

# METADATA
# title: batch
# description: data.trellis.batch, with input.token verified here.
# entrypoint: true
batch := d if {
	d := trellis.batch with input as host_input with data.trellis_host.verifies_tokens as true
}

# METADATA
# title: effective_permissions
# description: data.trellis.effective_permissions, with input.token verified here.
# entrypoint: true
effective_permissions := d if {
	d := trellis.effective_permissions with input as host_input with data.trellis_host.verifies_tokens as true
}

# METADATA
# title: list_resources
# description: data.trellis.list_resources, with input.token verified here.
# entrypoint: true
list_resources := d if {
	d := trellis.list_resources with input as host_input with data.trellis_host.verifies_tokens as true
}

# METADATA
# title: list_memberships
# description: data.trellis.list_memberships (it reads no token).
# entrypoint: true
list_memberships := d if {
	d := trellis.list_memberships with input as host_input
}

# METADATA
# title: revision
# description: The data revision of the loaded bundle.
# entrypoint: true
revision := trellis.revision

# keys is the verification data the bundle ships (see bundle/README.md):
# issuer, audience, algorithms, jwks, membership_claim, skew_seconds.
default keys := {}

keys := data.trellis_keys

# host_input is the input the core rules see: the caller's fields without
# token and token_error, plus either the verified claims or why the token
# failed. A caller can never supply claims (or a token_error) of its own.
host_input := object.union(passed_through, {"token": claims}) if {
	token_verified
} else := object.union(passed_through, {"token_error": token_error}) if {
	"token" in object.keys(input)
} else := passed_through

passed_through := object.remove(input, {"token", "token_error"}) if is_object(input)

# token_verified holds only when every check passes. Each check is a
# positive rule, so a missing key, claim or setting can only make it fail:
# an undefined value never reads as a passed check.
token_verified if {
	keys_usable
	alg_allowed
	signature_ok
	claims_valid
}

claims_valid if {
	types_valid
	unexpired
	started
	issuer_ok
	audience_ok
}

# token_error says why input.token was not verified, in the order
# internal/token checks. It only chooses the message: whether a token is
# accepted is decided by token_verified alone.
token_error := failure("token_malformed", "the token must be the raw JWT string") if {
	not raw_token
} else := failure("token_keys_unavailable", "the bundle carries no usable token verification keys") if {
	not keys_usable
} else := failure("token_malformed", "the token is not a compact JWS with a JSON header and payload") if {
	not decoded
} else := failure("token_algorithm_not_allowed", sprintf("algorithm %q is not allowed", [header.alg])) if {
	not alg_allowed
} else := failure("token_unknown_key", "no key in the key set matches the token's kid") if {
	count(candidate_keys) == 0
} else := failure("token_bad_signature", "token signature is invalid") if {
	not signature_ok
} else := failure("token_invalid_claims", "a claim has the wrong type, or exp is missing") if {
	not types_valid
} else := failure("token_expired", "the token has expired") if {
	not unexpired
} else := failure("token_not_yet_valid", "the token is not valid yet") if {
	not started
} else := failure("token_wrong_issuer", "token issuer is not accepted") if {
	not issuer_ok
} else := failure("token_wrong_audience", "token audience is not accepted") if {
	not audience_ok
} else := failure("token_invalid", "the token could not be verified")

failure(code, message) := {"code": code, "message": message}

raw_token := input.token if is_string(input.token)

keys_usable if {
	is_array(keys.jwks.keys)
	is_string(keys.issuer)
	keys.issuer != ""
	is_array(keys.algorithms)
	is_number(skew)
}

# decoded is [header, payload] when the token decodes (io.jwt.decode
# verifies nothing) into a header with a string alg and a payload object.
decoded := [h, p] if {
	[h, p, _] := io.jwt.decode(raw_token)
	is_string(h.alg)
	is_object(p)
}

header := decoded[0]

payload := decoded[1]

# Only RS256 and ES256 can ever be allowed: none and HS* (an HMAC keyed with
# the public key) never reach signature verification.
alg_allowed if {
	header.alg in {"RS256", "ES256"}
	header.alg in keys.algorithms
}

# candidate_keys are the keys that may have signed the token: the one its
# kid names, or the only key when the token has no kid.
candidate_keys := [k | some k in keys.jwks.keys; k.kid == header.kid] if {
	header.kid
} else := keys.jwks.keys if {
	count(keys.jwks.keys) == 1
} else := []

candidate_set := json.marshal({"keys": candidate_keys})

signature_ok if {
	count(candidate_keys) > 0
	signature_valid(header.alg)
}

signature_valid("RS256") if io.jwt.verify_rs256(raw_token, candidate_set)

signature_valid("ES256") if io.jwt.verify_es256(raw_token, candidate_set)

types_valid if {
	numeric_date(payload.exp)
	payload.exp != 0
	every name in ["nbf", "iat"] {
		numeric_date(object.get(payload, name, 0))
	}
	every name in ["iss", "sub", "org_id", "role", "sid", membership_claim] {
		is_string(object.get(payload, name, ""))
	}
	every name in ["roles", "permissions", "feature_flags", "entitlements"] {
		string_array(object.get(payload, name, []))
	}
}

unexpired if now < payload.exp + skew

started if {
	now >= object.get(payload, "nbf", 0) - skew
	now >= object.get(payload, "iat", 0) - skew
}

issuer_ok if payload.iss == keys.issuer

audience_ok if object.get(keys, "audience", "") == ""

audience_ok if keys.audience in audiences

numeric_date(x) if {
	is_number(x)
	x >= 0
	x <= 253402300799
}

string_array(x) if {
	is_array(x)
	every e in x {
		is_string(e)
	}
}

audiences := [payload.aud] if is_string(payload.aud)

else := payload.aud if string_array(payload.aud)

else := []

now := time.now_ns() / 1000000000

skew := object.get(keys, "skew_seconds", 30)

membership_claim := object.get(keys, "membership_claim", "organization_membership_id")

# claims has the shape the embedded host gives the core rules and the
# extensions (internal/authz claimsTerm), claim for claim: absent strings
# are "", absent lists [].
claims := {
	"sub": object.get(payload, "sub", ""),
	"org_id": object.get(payload, "org_id", ""),
	"membership_id": object.get(payload, membership_claim, ""),
	"role": object.get(payload, "role", ""),
	"roles": object.get(payload, "roles", []),
	"permissions": object.get(payload, "permissions", []),
	"sid": object.get(payload, "sid", ""),
	"feature_flags": object.get(payload, "feature_flags", []),
	"entitlements": object.get(payload, "entitlements", []),
}
