package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Claims are the authorization-relevant claims of a verified token.
// String fields are "" and slices nil when the claim is absent (or, for
// slices, empty). The caller owns the returned value, slices included.
type Claims struct {
	// Subject is sub: the user id (user_…). Verify does not require it.
	Subject string
	// OrganizationID is org_id: the organization chosen at sign-in.
	OrganizationID string
	// Role is role: the slug of the membership's primary organization role.
	Role string
	// MembershipID is the claim named by Config.MembershipClaim (default
	// organization_membership_id), present only if a JWT template adds it.
	MembershipID string
	// SessionID is sid: the session id (session_…).
	SessionID string
	// Roles is roles: all organization role slugs, as given in the token.
	Roles []string
	// Permissions is permissions: the union of the organization roles'
	// permission slugs, as given in the token.
	Permissions []string
	// FeatureFlags is feature_flags: the enabled feature flag slugs.
	FeatureFlags []string
	// Entitlements is entitlements: the organization's entitlements.
	Entitlements []string
	// Expiry is exp, in UTC.
	Expiry time.Time
}

func (c Claims) clone() Claims {
	c.Roles = slices.Clone(c.Roles)
	c.Permissions = slices.Clone(c.Permissions)
	c.FeatureFlags = slices.Clone(c.FeatureFlags)
	c.Entitlements = slices.Clone(c.Entitlements)
	return c
}

// maxNumericDate is 9999-12-31T23:59:59Z; larger values are nonsense and
// would overflow time arithmetic.
const maxNumericDate = 253402300799

// payload is a JWT claims set decoded just enough to type-check each
// claim on its own, so errors name the claim.
type payload map[string]json.RawMessage

var jsonNull = []byte("null")

// str decodes claim name as a string. Absent is ok; null or another JSON
// type is not.
func (p payload) str(name string) (string, *Error) {
	raw, ok := p[name]
	if !ok {
		return "", nil
	}
	var s string
	if bytes.Equal(raw, jsonNull) || json.Unmarshal(raw, &s) != nil {
		return "", claimError(name, "a string")
	}
	return s, nil
}

// strings decodes claim name as an array of strings. Absent is ok; null,
// a bare string, or an array with a non-string element is not.
func (p payload) strings(name string) ([]string, *Error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	var elems []*string // pointers expose null elements
	if bytes.Equal(raw, jsonNull) || json.Unmarshal(raw, &elems) != nil {
		return nil, claimError(name, "an array of strings")
	}
	if len(elems) == 0 {
		return nil, nil
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if e == nil {
			return nil, claimError(name, "an array of strings")
		}
		out[i] = *e
	}
	return out, nil
}

// audience decodes aud, which RFC 7519 allows as a string or an array of
// strings.
func (p payload) audience() ([]string, bool, *Error) {
	raw, ok := p["aud"]
	if !ok {
		return nil, false, nil
	}
	var one string
	if !bytes.Equal(raw, jsonNull) && json.Unmarshal(raw, &one) == nil {
		return []string{one}, true, nil
	}
	many, err := p.strings("aud")
	if err != nil {
		return nil, false, claimError("aud", "a string or an array of strings")
	}
	return many, true, nil
}

// date decodes a NumericDate claim: a JSON number of seconds since the
// epoch, fractions allowed, in [0, 9999-12-31]. Strings are rejected even
// when they hold a number; jwx's jwt package would accept them, and even
// RFC 3339 dates, which is one reason this package parses claims itself.
func (p payload) date(name string) (time.Time, bool, *Error) {
	raw, ok := p[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var n json.Number
	if len(raw) == 0 || !(raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9')) || json.Unmarshal(raw, &n) != nil {
		return time.Time{}, false, claimError(name, "a number of seconds since the epoch")
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, claimError(name, "a number of seconds since the epoch")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

func claimError(name, want string) *Error {
	return newError(CodeClaims, fmt.Sprintf("claim %q must be %s", name, want))
}

// claims validates a verified payload and extracts Claims.
func (v *Verifier) claims(body []byte, now time.Time) (Claims, *Error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p == nil {
		return Claims{}, newError(CodeMalformed, "token payload is not a JSON object")
	}

	exp, ok, e := p.date("exp")
	if e != nil {
		return Claims{}, e
	}
	if !ok || exp.Unix() == 0 {
		// jwx treats exp 0 as "no exp"; we require a real one.
		return Claims{}, newError(CodeClaims, `claim "exp" is required`)
	}
	nbf, hasNBF, e := p.date("nbf")
	if e != nil {
		return Claims{}, e
	}
	iat, hasIAT, e := p.date("iat")
	if e != nil {
		return Claims{}, e
	}
	iss, e := p.str("iss")
	if e != nil {
		return Claims{}, e
	}
	var c Claims
	c.Expiry = exp
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"sub", &c.Subject},
		{"org_id", &c.OrganizationID},
		{"role", &c.Role},
		{"sid", &c.SessionID},
		{v.membershipClaim, &c.MembershipID},
	} {
		if *f.dst, e = p.str(f.name); e != nil {
			return Claims{}, e
		}
	}
	if c.Roles, e = p.strings("roles"); e != nil {
		return Claims{}, e
	}
	if c.Permissions, e = p.strings("permissions"); e != nil {
		return Claims{}, e
	}
	if c.FeatureFlags, e = p.strings("feature_flags"); e != nil {
		return Claims{}, e
	}
	if c.Entitlements, e = p.strings("entitlements"); e != nil {
		return Claims{}, e
	}

	if !now.Before(exp.Add(v.skew)) {
		return Claims{}, newError(CodeExpired, "token expired at "+exp.Format(time.RFC3339))
	}
	if hasNBF && now.Before(nbf.Add(-v.skew)) {
		return Claims{}, newError(CodeNotYetValid, "token is not valid before "+nbf.Format(time.RFC3339))
	}
	if hasIAT && now.Before(iat.Add(-v.skew)) {
		return Claims{}, newError(CodeNotYetValid, "token was issued in the future, at "+iat.Format(time.RFC3339))
	}
	if !slices.Contains(v.issuers, iss) {
		return Claims{}, newError(CodeIssuer, "token issuer is not accepted")
	}
	if v.audience != "" {
		aud, ok, e := p.audience()
		if e != nil {
			return Claims{}, e
		}
		if !ok || !slices.Contains(aud, v.audience) {
			return Claims{}, newError(CodeAudience, "token audience is not accepted")
		}
	}
	return c, nil
}
