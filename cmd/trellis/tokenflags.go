package main

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/token"
)

// tokenFlags are the session-token settings `trellis serve` and
// `trellis edge` share.
type tokenFlags struct {
	JWKSURL, JWKSFile string
	Issuers           []string
	Audience          string
	Algorithms        string
	TokenSkew         time.Duration
	MembershipClaim   string
	TokenCacheSize    int
	JWKSMinRefresh    time.Duration
	JWKSRefresh       time.Duration
}

func (t *tokenFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.JWKSURL, "jwks-url", "", "URL of the session token issuer's JWKS (e.g. https://api.workos.com/sso/jwks/<client_id>)")
	fs.StringVar(&t.JWKSFile, "jwks-file", "", "JWKS file, instead of --jwks-url")
	fs.StringArrayVar(&t.Issuers, "issuer", nil, "accepted token issuer (iss), required with a JWKS (repeatable, e.g. https://api.workos.com and https://api.workos.com/user_management/<client_id>; TRELLIS_ISSUERS is comma-separated)")
	fs.StringVar(&t.Audience, "audience", "", "required token audience (aud); empty: not checked")
	fs.StringVar(&t.Algorithms, "algorithms", token.RS256, "comma-separated token algorithms to accept: RS256, ES256")
	fs.DurationVar(&t.TokenSkew, "token-skew", token.DefaultSkew, "clock skew allowed on exp/nbf")
	fs.StringVar(&t.MembershipClaim, "membership-claim", token.DefaultMembershipClaim, "token claim holding the organization membership id")
	fs.IntVar(&t.TokenCacheSize, "token-cache-size", token.DefaultCacheSize, "verified tokens kept in memory (negative: no cache)")
	fs.DurationVar(&t.JWKSRefresh, "jwks-refresh", token.DefaultRefreshInterval, "how old the JWKS may get before it is fetched again: a withdrawn key stops being trusted within it")
	fs.DurationVar(&t.JWKSMinRefresh, "jwks-min-refresh", token.DefaultMinRefreshInterval, "least time between two JWKS fetches (an unknown kid triggers one)")
}

// hasJWKS reports whether a key source is configured: without one the token
// layer is off.
func (t tokenFlags) hasJWKS() bool { return t.JWKSURL != "" || t.JWKSFile != "" }

// validate reports a key source setting that cannot work.
func (t tokenFlags) validate() error {
	switch {
	case t.JWKSURL != "" && t.JWKSFile != "":
		return errors.New("give --jwks-url or --jwks-file, not both")
	case t.hasJWKS() && len(t.Issuers) == 0:
		return errors.New("--issuer is required with a JWKS: tokens from any other issuer must be rejected")
	}
	return nil
}

// config returns the verifier configuration these flags describe: the
// first --issuer is Issuer (the one bundles for stock-OPA edges carry), the
// others Issuers.
func (t tokenFlags) config(log *slog.Logger) token.Config {
	var first string
	var rest []string
	if len(t.Issuers) > 0 {
		first, rest = t.Issuers[0], t.Issuers[1:]
	}
	return token.Config{
		JWKSURL: t.JWKSURL, JWKSFile: t.JWKSFile, Issuer: first, Issuers: rest, Audience: t.Audience,
		Algorithms: strings.Split(t.Algorithms, ","), Skew: t.TokenSkew,
		MembershipClaim: t.MembershipClaim, CacheSize: t.TokenCacheSize, MinRefreshInterval: t.JWKSMinRefresh, RefreshInterval: t.JWKSRefresh,
		Logger: log,
	}
}
