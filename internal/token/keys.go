package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

const (
	// maxJWKSBytes bounds what we read from the key source.
	maxJWKSBytes = 1 << 20
	// minRSABits is the smallest RSA modulus we verify with.
	minRSABits = 2048
)

// errRateLimited reports that a refresh was skipped because the previous
// fetch attempt is younger than MinRefreshInterval.
var errRateLimited = errors.New("key set refresh rate-limited")

// verifyKey is one usable public key from the key set.
type verifyKey struct {
	kid string
	alg string // the JWK's own alg; "" when the JWK has none
	pub any    // *rsa.PublicKey or *ecdsa.PublicKey (P-256)
}

// keySnapshot is an immutable, parsed key set.
type keySnapshot struct {
	byKID   map[string]*verifyKey
	sole    *verifyKey // set when the set holds exactly one usable key
	digest  [32]byte   // SHA-256 of the source document
	gen     uint64     // changes whenever the document changes
	fetched time.Time
}

// find returns the key for kid. A token without kid may only use a set
// with exactly one key.
func (s *keySnapshot) find(kid string) *verifyKey {
	if kid == "" {
		return s.sole
	}
	return s.byKID[kid]
}

// parseKeySet turns a JWKS document into a snapshot. Keys this package
// cannot use (other types, other curves, small RSA moduli, use other than
// "sig", unparseable entries) are skipped rather than failing the whole set,
// so an issuer adding a new key type does not break verification; a set
// left with no usable key is an error.
func parseKeySet(doc []byte) (*keySnapshot, error) {
	set, err := jwk.Parse(doc, jwk.WithIgnoreParseError(true))
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	snap := &keySnapshot{byKID: make(map[string]*verifyKey), digest: sha256.Sum256(doc)}
	var usable []*verifyKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		if use := k.KeyUsage(); use != "" && use != "sig" {
			continue
		}
		var raw any
		if err := k.Raw(&raw); err != nil {
			continue
		}
		var pub any
		switch p := raw.(type) {
		case *rsa.PublicKey:
			if p.N == nil || p.N.BitLen() < minRSABits {
				continue
			}
			pub = p
		case *ecdsa.PublicKey:
			if p.Curve != elliptic.P256() {
				continue
			}
			pub = p
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return nil, fmt.Errorf("jwks key %q is a private key: publish only public keys", k.KeyID())
		default:
			continue
		}
		vk := &verifyKey{kid: k.KeyID(), pub: pub}
		if a := k.Algorithm(); a != nil {
			vk.alg = a.String()
		}
		if vk.kid != "" {
			if _, dup := snap.byKID[vk.kid]; dup {
				return nil, fmt.Errorf("jwks has two keys with kid %q", vk.kid)
			}
			snap.byKID[vk.kid] = vk
		}
		usable = append(usable, vk)
	}
	if len(usable) == 0 {
		return nil, errors.New("jwks has no usable signing key (need RSA >= 2048 bits or EC P-256 with use \"sig\" or no use)")
	}
	if len(usable) == 1 {
		snap.sole = usable[0]
	}
	return snap, nil
}

// keySource holds the current key set and refreshes it from its source.
// Readers never block: the snapshot is an atomic pointer. Refreshes are
// serialized by mu, so concurrent requests for an unknown kid cause one
// fetch, and rate-limited by lastAttempt.
//
// We do not use jwk.Cache: it runs a background goroutine bound to a
// context that would have to outlive New, and its Refresh is not
// rate-limited, so a flood of tokens with random kids would become a flood
// of requests to the issuer.
type keySource struct {
	name        string // URL or path, for error messages
	load        func(ctx context.Context) ([]byte, error)
	minInterval time.Duration
	maxAge      time.Duration // Config.RefreshInterval
	now         func() time.Time
	log         *slog.Logger
	observer    KeyObserver // may be nil

	snap atomic.Pointer[keySnapshot]

	mu          sync.Mutex
	lastAttempt time.Time // guarded by mu
	gen         uint64    // guarded by mu
	failing     bool      // guarded by mu: the last fetch failed
}

func newKeySource(cfg Config) *keySource {
	s := &keySource{minInterval: cfg.MinRefreshInterval, maxAge: cfg.RefreshInterval, now: cfg.Now, log: cfg.Logger, observer: cfg.KeyObserver}
	if cfg.JWKSURL != "" {
		s.name = cfg.JWKSURL
		client, u := cfg.HTTPClient, cfg.JWKSURL
		s.load = func(ctx context.Context) ([]byte, error) { return fetchURL(ctx, client, u) }
	} else {
		s.name = cfg.JWKSFile
		path := cfg.JWKSFile
		s.load = func(context.Context) ([]byte, error) { return readFile(path) }
	}
	return s
}

// init loads the key set for the first time, ignoring the rate limit.
func (s *keySource) init(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshLocked(ctx)
}

// current returns the key set, first refreshing it if it is older than
// Config.RefreshInterval and no other refresh is running. A failed refresh keeps the
// previous set: the issuer being briefly unreachable must not reject every
// token.
func (s *keySource) current(ctx context.Context) *keySnapshot {
	snap := s.snap.Load()
	if s.now().Sub(snap.fetched) < s.maxAge || !s.mu.TryLock() {
		return snap
	}
	defer s.mu.Unlock()
	_ = s.refreshLocked(ctx) // a failure is logged and counted there; the last good keys stay
	return s.snap.Load()
}

// lookup returns the key for kid from snap, refreshing the set once
// (subject to the rate limit) when kid is unknown.
func (s *keySource) lookup(ctx context.Context, snap *keySnapshot, kid string) (*verifyKey, *keySnapshot, *Error) {
	if k := snap.find(kid); k != nil {
		return k, snap, nil
	}
	if kid == "" {
		// A refresh cannot make a kid-less token unambiguous.
		return nil, nil, newError(CodeUnknownKey, "token has no kid and the key set holds several keys")
	}

	s.mu.Lock()
	var err error
	if latest := s.snap.Load(); latest == snap {
		err = s.refreshLocked(ctx)
	} // else another request refreshed while we waited; use its result.
	s.mu.Unlock()

	snap = s.snap.Load()
	if k := snap.find(kid); k != nil {
		return k, snap, nil
	}
	if err != nil && !errors.Is(err, errRateLimited) {
		return nil, nil, &Error{Code: CodeKeysUnavailable, Message: "signing keys are unavailable", cause: err}
	}
	return nil, nil, newError(CodeUnknownKey, "no signing key matches the token's kid")
}

// refreshLocked fetches and installs the key set unless the previous
// attempt, successful or not, is younger than minInterval. The caller holds
// s.mu. The fetch does not inherit ctx's cancellation (a client giving up
// must not waste the rate-limited attempt for everyone else) but is bounded
// by DefaultHTTPTimeout in addition to the HTTP client's own timeout. Every
// attempt is reported to the observer; a change between failing and
// succeeding is logged (see Config.Logger).
func (s *keySource) refreshLocked(ctx context.Context) error {
	now := s.now()
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minInterval {
		return errRateLimited
	}
	s.lastAttempt = now
	initial := s.snap.Load() == nil // the load from New, which fails New instead
	if !initial {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
		defer cancel()
	}
	err := s.fetchLocked(ctx, now)
	if s.observer != nil {
		s.observer.ObserveKeyRefresh(now, err)
	}
	switch {
	case err != nil && !s.failing && !initial:
		s.log.WarnContext(ctx, "token: signing keys cannot be refreshed; keeping the last good keys until a refresh succeeds",
			"source", s.name, "error", err)
	case err == nil && s.failing:
		s.log.InfoContext(ctx, "token: signing keys refreshed again", "source", s.name)
	}
	s.failing = err != nil && !initial
	return err
}

// fetchLocked loads, parses and installs the key set fetched at now. The
// caller holds s.mu.
func (s *keySource) fetchLocked(ctx context.Context, now time.Time) error {
	doc, err := s.load(ctx)
	if err != nil {
		return err
	}
	next, err := parseKeySet(doc)
	if err != nil {
		return err
	}
	next.fetched = now
	if cur := s.snap.Load(); cur != nil && cur.digest == next.digest {
		next.gen = cur.gen
	} else {
		s.gen++
		next.gen = s.gen
	}
	s.snap.Store(next)
	return nil
}

func fetchURL(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get jwks: unexpected status %q", resp.Status)
	}
	return readLimited(resp.Body)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	defer f.Close()
	return readLimited(f)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("read jwks: document is larger than %d bytes", maxJWKSBytes)
	}
	return b, nil
}
