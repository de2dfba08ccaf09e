package token

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultSkew               = 30 * time.Second
	DefaultMembershipClaim    = "organization_membership_id"
	DefaultCacheSize          = 10000
	DefaultMinRefreshInterval = time.Second
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultHTTPTimeout        = 10 * time.Second
)

// Algorithms this package can be configured to accept. Everything else
// (none, HS*, PS*, EdDSA, ...) is always rejected.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Config configures a Verifier. The zero value of every optional field
// means "use the default"; New validates the whole struct once and reports
// what to fix. New copies the Config: changing it afterwards has no effect.
type Config struct {
	// JWKSURL is an absolute http(s) URL serving the issuer's JSON Web Key
	// Set (AuthKit: {base}/sso/jwks/{client_id}). New fetches it once; it is
	// fetched again when a token names an unknown kid and when the cached set
	// is older than 15 minutes, never more often than MinRefreshInterval.
	// Exactly one of JWKSURL and JWKSFile must be set.
	JWKSURL string
	// JWKSFile is the path of a JWKS JSON file. It is read by New and re-read
	// under the same rules as JWKSURL, so replacing the file rotates keys.
	JWKSFile string

	// Issuer and Issuers are the accepted issuers: at least one is
	// required, and the iss claim must equal one exactly (mind the
	// trailing slash: AuthKit documents both https://api.workos.com and
	// https://api.workos.com/). AuthKit's iss is https://api.workos.com
	// for older environments, https://api.workos.com/user_management/
	// <client_id> for newer ones, or the custom authentication domain.
	Issuer  string
	Issuers []string
	// Audience is optional. When set, aud (a string or an array of strings)
	// must contain it. When empty, aud is not checked.
	Audience string

	// Algorithms is the allow-list of header alg values. Default ["RS256"].
	// Only RS256 and ES256 may be listed; New rejects anything else.
	Algorithms []string
	// Skew is the leeway applied to exp, nbf and iat. Zero means
	// DefaultSkew (30s); New rejects a negative value.
	Skew time.Duration
	// MembershipClaim names the claim copied into Claims.MembershipID.
	// Default "organization_membership_id" (the claim AuthKit's JWT template
	// example adds).
	MembershipClaim string

	// CacheSize bounds the number of verified tokens kept in memory.
	// Zero means DefaultCacheSize; a negative value disables the cache.
	CacheSize int
	// RefreshInterval is how old the key set may get before a Verify
	// fetches it again, so a key the issuer withdrew stops being trusted
	// within it (and within the verified-token cache, which is keyed by
	// the key set's generation). Zero means DefaultRefreshInterval (5m).
	RefreshInterval time.Duration
	// MinRefreshInterval is the minimum time between two key set fetches
	// after the first. Zero means DefaultMinRefreshInterval; New rejects a
	// negative value.
	MinRefreshInterval time.Duration
	// HTTPClient fetches JWKSURL. Default: a client with a 10s timeout.
	// Refreshes made during Verify are also capped at 10s whatever the
	// client's timeout, and do not inherit the request's cancellation.
	HTTPClient *http.Client
	// Logger receives key refresh trouble that Verify survives by keeping
	// the last good key set: a WARN when fetches start failing (with the
	// reason) and an INFO when one succeeds again, once per change of
	// state, never once per attempt. Default: discard.
	Logger *slog.Logger
	// KeyObserver, when set, is told the outcome of every key set fetch,
	// New's first included (implemented by *metrics.Metrics).
	KeyObserver KeyObserver
	// Now returns the current time; tests set it. It must be safe for
	// concurrent use. Default time.Now.
	Now func() time.Time
}

// KeyObserver receives the outcome of key set fetches, for metrics. Its
// method must be safe for concurrent use and must not block: it is called
// with the key source's refresh lock held.
type KeyObserver interface {
	// ObserveKeyRefresh reports one fetch attempt made at time at: err is
	// nil when it installed a usable key set, else why it failed (the
	// source unreachable, a non-200 answer, a document that does not
	// parse, no usable key); the previous keys are then kept.
	ObserveKeyRefresh(at time.Time, err error)
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.JWKSURL == "" && c.JWKSFile == "":
		return c, errors.New("token: a key source is required: set JWKSURL or JWKSFile")
	case c.JWKSURL != "" && c.JWKSFile != "":
		return c, errors.New("token: JWKSURL and JWKSFile are both set: set only one")
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("token: JWKSURL %q must be an absolute http or https URL", c.JWKSURL)
		}
	}
	if c.Issuer != "" {
		c.Issuers = append([]string{c.Issuer}, c.Issuers...)
	} else {
		c.Issuers = slices.Clone(c.Issuers)
	}
	if len(c.Issuers) == 0 || slices.Contains(c.Issuers, "") {
		return c, errors.New("token: an issuer is required, and no issuer may be empty")
	}
	if c.RefreshInterval < 0 {
		return c, fmt.Errorf("token: refresh interval %s is negative: use zero for the default or a positive duration", c.RefreshInterval)
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}

	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{RS256}
	} else {
		c.Algorithms = append([]string(nil), c.Algorithms...)
	}
	for _, alg := range c.Algorithms {
		if alg != RS256 && alg != ES256 {
			return c, fmt.Errorf("token: algorithm %q is not supported: use RS256 or ES256", alg)
		}
	}

	if c.Skew < 0 {
		return c, fmt.Errorf("token: skew %s is negative: use zero for the default or a positive duration", c.Skew)
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.MembershipClaim == "" {
		c.MembershipClaim = DefaultMembershipClaim
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MinRefreshInterval < 0 {
		return c, fmt.Errorf("token: min refresh interval %s is negative: use zero for the default or a positive duration", c.MinRefreshInterval)
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
