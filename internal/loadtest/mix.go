package loadtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// Request kinds: what a request was generated to exercise. The expected
// answers always come from the Oracle, never from the kind.
const (
	// KindToken is a check the token's permissions allow, with one of the
	// mix's few long-lived tokens, so the server's verified-token cache
	// answers it.
	KindToken = "token"
	// KindFresh is a token check like KindToken with a token minted for this
	// request alone, so the server verifies the JWT in full the first time
	// the request is sent (see Result.FreshFirst for how often that was).
	KindFresh = "token-fresh"
	// KindAssignment is a check on a resource at or below one of the
	// membership's role assignments (allowed unless the membership is not
	// active).
	KindAssignment = "assignment"
	// KindDeny is a check the Oracle denies: another organization's
	// resource, a permission no grant carries, or an unknown permission.
	KindDeny = "deny"
	// KindBatch is a batch of MixConfig.BatchSize checks with one token,
	// drawn from the token, assignment and deny questions in their shares.
	KindBatch = "batch"
	// KindList lists the resources of the token's organization the subject
	// has a permission on: the first page of MixConfig.ListLimit ids.
	KindList = "list"
)

// Kinds lists the request kinds in report order.
var Kinds = []string{KindToken, KindFresh, KindAssignment, KindDeny, KindBatch, KindList}

// Request is one request of the mix: a raw session token and either checks
// (one for a check, several for a batch) or a list question, each with the
// answer the Oracle expects.
type Request struct {
	Kind  string
	Token string
	// Checks are the questions of a check or batch request, in order; nil
	// for a list.
	Checks []Check
	// List is the question of a list request; nil otherwise.
	List *List
}

// Check is one question of a check or batch request.
type Check struct {
	Permission string
	ResourceID string
	// Depth is the resource's level, 1 for an organization root.
	Depth int
	// Want is the Oracle's answer.
	Want bool
}

// List asks for the first page of the resources of the token's
// organization on which the subject has Permission: no type, parent or
// cursor.
type List struct {
	Permission string
	Limit      int
	// Want is the page the Oracle expects (ids sorted, at most Limit), and
	// WantMore whether more ids follow it.
	Want     []string
	WantMore bool
}

// TokenSigner mints a compact JWS from claims; *token.Signer satisfies it.
type TokenSigner interface {
	Sign(claims map[string]any) (string, error)
}

// Shares are the relative frequencies of the request kinds in a mix. Batch
// elements are drawn from the Token, Assignment and Deny shares.
type Shares struct {
	Token, Fresh, Assignment, Deny, Batch, List int
}

// DefaultShares are the shares of a MixConfig that gives none.
var DefaultShares = Shares{Token: 25, Fresh: 5, Assignment: 40, Deny: 20, Batch: 5, List: 5}

// Of returns the share of kind, 0 for an unknown kind.
func (s Shares) Of(kind string) int {
	switch kind {
	case KindToken:
		return s.Token
	case KindFresh:
		return s.Fresh
	case KindAssignment:
		return s.Assignment
	case KindDeny:
		return s.Deny
	case KindBatch:
		return s.Batch
	case KindList:
		return s.List
	}
	return 0
}

// Set sets the share of kind; it fails for an unknown kind or a negative
// share.
func (s *Shares) Set(kind string, n int) error {
	if n < 0 {
		return fmt.Errorf("share of %s is negative", kind)
	}
	switch kind {
	case KindToken:
		s.Token = n
	case KindFresh:
		s.Fresh = n
	case KindAssignment:
		s.Assignment = n
	case KindDeny:
		s.Deny = n
	case KindBatch:
		s.Batch = n
	case KindList:
		s.List = n
	default:
		return fmt.Errorf("unknown request kind %q", kind)
	}
	return nil
}

// String renders s as kind=share pairs in Kinds order, the form
// `trellis bench http --mix` reads.
func (s Shares) String() string {
	b := make([]byte, 0, 64)
	for i, k := range Kinds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(s.Of(k)), 10)
	}
	return string(b)
}

func (s Shares) total() int { return s.Token + s.Fresh + s.Assignment + s.Deny + s.Batch + s.List }

// MixConfig configures BuildMix. Zero fields get the defaults their comments
// name.
type MixConfig struct {
	// Seed selects the mix: equal configs and datasets give equal requests
	// (tokens differ, as signatures do).
	Seed uint64
	// Size is the number of distinct requests (default 10,000); the load
	// generator cycles through them.
	Size int
	// Tokens is the number of distinct long-lived session tokens (default
	// 16), so a server's verified-token cache is warm for every request but
	// the fresh-token ones.
	Tokens int
	// Issuer is the iss claim of the tokens (required).
	Issuer string
	// TTL is how long the tokens are valid (default 1h).
	TTL time.Duration
	// Shares of the request kinds (default DefaultShares when all are
	// zero). A negative share is an error.
	Shares Shares
	// BatchSize is the number of checks per batch request (default 50).
	BatchSize int
	// ListLimit is the page size of list requests (default 100).
	ListLimit int
}

func (c MixConfig) withDefaults() MixConfig {
	if c.Size <= 0 {
		c.Size = 10_000
	}
	if c.Tokens <= 0 {
		c.Tokens = 16
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.Shares == (Shares{}) {
		c.Shares = DefaultShares
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 50
	}
	if c.ListLimit <= 0 {
		c.ListLimit = 100
	}
	return c
}

// Mix is a request mix over one dataset.
type Mix struct {
	Requests []Request
	// Tokens is the number of long-lived tokens the requests share;
	// FreshTokens the number minted for one request each.
	Tokens, FreshTokens int
}

// KindCount counts the requests of one kind in a mix.
type KindCount struct {
	Requests int
	// Checks is the number of decisions those requests ask for, Allowed
	// how many of them the Oracle allows (none for lists).
	Checks, Allowed int
	// IDs is the number of ids the Oracle expects over the list requests'
	// pages, Empty the number of list requests it expects no id for.
	IDs, Empty int
}

// Count counts the requests of kind.
func (m *Mix) Count(kind string) KindCount {
	var c KindCount
	for _, r := range m.Requests {
		if r.Kind != kind {
			continue
		}
		c.Requests++
		for _, q := range r.Checks {
			c.Checks++
			if q.Want {
				c.Allowed++
			}
		}
		if r.List != nil {
			c.IDs += len(r.List.Want)
			if len(r.List.Want) == 0 {
				c.Empty++
			}
		}
	}
	return c
}

// subject is one membership a token is minted for.
type subject struct {
	claims Claims
	raw    string
	grants []model.Assignment
}

// mixBuilder holds what BuildMix draws questions from.
type mixBuilder struct {
	cfg      MixConfig
	rng      *rand.Rand
	o        *Oracle
	s        TokenSigner
	now      time.Time
	roles    *model.RoleIndex
	children map[string][]string
	orgRes   map[string][]string // organization → its resources, root first
	perms    []string
	orgs     []string
}

// BuildMix returns a request mix over ds with expected answers from o,
// which must have been built from ds. Tokens are minted with s for
// memberships that hold role assignments, mostly active ones and, when the
// dataset has any, one that is not active; each KindFresh request gets a
// token of its own (signing is slow: BuildMix mints them all up front). It
// fails when ds has no assignments, a share is negative or signing fails.
func BuildMix(ds *model.Dataset, o *Oracle, s TokenSigner, cfg MixConfig) (*Mix, error) {
	cfg = cfg.withDefaults()
	if cfg.Issuer == "" {
		return nil, errors.New("loadtest: mix: an issuer is required")
	}
	for _, k := range Kinds {
		if cfg.Shares.Of(k) < 0 {
			return nil, fmt.Errorf("loadtest: mix: the share of %s is negative", k)
		}
	}
	b := &mixBuilder{
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x6d6978)), // "mix"
		o:        o,
		s:        s,
		now:      time.Now(),
		roles:    model.NewRoleIndex(ds.Roles),
		children: map[string][]string{},
		orgRes:   map[string][]string{},
	}
	for _, org := range ds.Organizations {
		b.orgRes[org.ID] = append(b.orgRes[org.ID], org.RootID())
		b.orgs = append(b.orgs, org.ID)
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = model.RootResourceID(r.OrganizationID)
		}
		b.children[parent] = append(b.children[parent], r.ID)
		b.orgRes[r.OrganizationID] = append(b.orgRes[r.OrganizationID], r.ID)
	}
	for _, p := range ds.Permissions {
		b.perms = append(b.perms, p.Slug)
	}
	subjects, err := b.subjects(ds)
	if err != nil {
		return nil, err
	}

	sh := cfg.Shares
	mix := &Mix{Tokens: len(subjects), Requests: make([]Request, 0, cfg.Size)}
	for attempts := 0; len(mix.Requests) < cfg.Size; attempts++ {
		if attempts > 100*cfg.Size {
			return nil, errors.New("loadtest: mix: the dataset gives too few questions of the configured kinds")
		}
		sub := subjects[b.rng.IntN(len(subjects))]
		req := Request{Kind: b.pick(sh, Kinds), Token: sub.raw}
		switch req.Kind {
		case KindToken, KindAssignment, KindDeny:
			q, ok := b.question(sub, req.Kind)
			if !ok {
				continue
			}
			req.Checks = []Check{q}
		case KindFresh:
			q, ok := b.question(sub, KindToken)
			if !ok {
				continue
			}
			req.Checks = []Check{q}
			// A jti of its own makes the raw token, which is what a
			// verified-token cache is keyed by, unlike any other.
			raw, err := b.mint(sub, "fresh-"+strconv.Itoa(len(mix.Requests)))
			if err != nil {
				return nil, err
			}
			req.Token = raw
			mix.FreshTokens++
		case KindBatch:
			elems := Shares{Token: sh.Token, Assignment: sh.Assignment, Deny: sh.Deny}
			if elems.total() == 0 {
				elems = Shares{Token: 1, Assignment: 1, Deny: 1}
			}
			kinds := []string{KindToken, KindAssignment, KindDeny}
			for tries := 0; len(req.Checks) < cfg.BatchSize && tries < 20*cfg.BatchSize; tries++ {
				if q, ok := b.question(sub, b.pick(elems, kinds)); ok {
					req.Checks = append(req.Checks, q)
				}
			}
			if len(req.Checks) < cfg.BatchSize {
				continue
			}
		case KindList:
			perm := b.listPermission(sub)
			ids, more := o.List(sub.claims, perm, cfg.ListLimit)
			req.List = &List{Permission: perm, Limit: cfg.ListLimit, Want: ids, WantMore: more}
		}
		mix.Requests = append(mix.Requests, req)
	}
	return mix, nil
}

// subjects picks up to cfg.Tokens memberships with role assignments, in a
// seeded random order: active ones plus at most one that is not active,
// and mints their long-lived tokens.
func (b *mixBuilder) subjects(ds *model.Dataset) ([]*subject, error) {
	byMember := map[string][]model.Assignment{}
	for _, a := range ds.Assignments {
		byMember[a.MembershipID] = append(byMember[a.MembershipID], a)
	}
	var subjects []*subject
	inactive := 0
	for _, i := range b.rng.Perm(len(ds.Memberships)) {
		if len(subjects) == b.cfg.Tokens {
			break
		}
		m := ds.Memberships[i]
		if len(byMember[m.ID]) == 0 {
			continue
		}
		if m.Status != model.StatusActive {
			if inactive > 0 || b.cfg.Tokens < 4 {
				continue
			}
			inactive++
		}
		claims, _ := b.o.Claims(m.ID)
		subjects = append(subjects, &subject{claims: claims, grants: byMember[m.ID]})
	}
	if len(subjects) == 0 {
		return nil, errors.New("loadtest: mix: no membership holds a role assignment")
	}
	for _, sub := range subjects {
		raw, err := b.mint(sub, "")
		if err != nil {
			return nil, err
		}
		sub.raw = raw
	}
	return subjects, nil
}

// mint signs a session token for sub, with jti when it is not empty.
func (b *mixBuilder) mint(sub *subject, jti string) (string, error) {
	m := b.o.mem[sub.claims.MembershipID]
	role := ""
	if len(m.RoleSlugs) > 0 {
		role = m.RoleSlugs[0]
	}
	claims := map[string]any{
		"iss":                        b.cfg.Issuer,
		"sub":                        m.UserID,
		"sid":                        "session_load_" + m.ID,
		"org_id":                     m.OrganizationID,
		"role":                       role,
		"roles":                      append([]string{}, m.RoleSlugs...),
		"permissions":                append([]string{}, sub.claims.Permissions...),
		"organization_membership_id": m.ID,
		"iat":                        b.now.Unix(),
		"exp":                        b.now.Add(b.cfg.TTL).Unix(),
	}
	if jti != "" {
		claims["jti"] = jti
	}
	raw, err := b.s.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("loadtest: mix: mint token: %w", err)
	}
	return raw, nil
}

// pick draws one of kinds in proportion to its share in sh; the shares of
// kinds must not all be zero.
func (b *mixBuilder) pick(sh Shares, kinds []string) string {
	total := 0
	for _, k := range kinds {
		total += sh.Of(k)
	}
	x := b.rng.IntN(total)
	for _, k := range kinds {
		if x < sh.Of(k) {
			return k
		}
		x -= sh.Of(k)
	}
	return kinds[len(kinds)-1] // unreachable: x < total
}

// question draws one check of kind (KindToken, KindAssignment or KindDeny)
// for sub, or reports that sub offers none this time.
func (b *mixBuilder) question(sub *subject, kind string) (Check, bool) {
	var q Check
	switch kind {
	case KindToken:
		if len(sub.claims.Permissions) == 0 {
			return Check{}, false
		}
		q.Permission = sub.claims.Permissions[b.rng.IntN(len(sub.claims.Permissions))]
		own := b.orgRes[sub.claims.OrgID]
		q.ResourceID = own[b.rng.IntN(len(own))]
	case KindAssignment:
		a := sub.grants[b.rng.IntN(len(sub.grants))]
		rid := a.ResourceID
		// Descend 0 to 3 levels below the anchor, for varied depth.
		for steps := b.rng.IntN(4); steps > 0 && len(b.children[rid]) > 0; steps-- {
			kids := b.children[rid]
			rid = kids[b.rng.IntN(len(kids))]
		}
		q.ResourceID = rid
		role, ok := b.roles.Resolve(sub.claims.OrgID, a.RoleSlug)
		if !ok || len(role.Permissions) == 0 {
			return Check{}, false
		}
		q.Permission = role.Permissions[b.rng.IntN(len(role.Permissions))]
	default:
		found := false
		for range 20 {
			org := sub.claims.OrgID
			if b.rng.IntN(3) == 0 {
				org = b.orgs[b.rng.IntN(len(b.orgs))]
			}
			rs := b.orgRes[org]
			q.ResourceID = rs[b.rng.IntN(len(rs))]
			q.Permission = b.perms[b.rng.IntN(len(b.perms))]
			if !b.o.Allowed(sub.claims, q.Permission, q.ResourceID) {
				found = true
				break
			}
		}
		if !found {
			q.Permission = "nonexistent:permission"
		}
	}
	q.Depth = b.o.depth(q.ResourceID)
	q.Want = b.o.Allowed(sub.claims, q.Permission, q.ResourceID)
	return q, true
}

// listPermission draws the permission of a list request for sub: mostly
// one its token or one of its assignments carries, so most pages are not
// empty, and one time in five any permission of the dataset.
func (b *mixBuilder) listPermission(sub *subject) string {
	if b.rng.IntN(5) > 0 {
		if b.rng.IntN(2) == 0 && len(sub.claims.Permissions) > 0 {
			return sub.claims.Permissions[b.rng.IntN(len(sub.claims.Permissions))]
		}
		a := sub.grants[b.rng.IntN(len(sub.grants))]
		if role, ok := b.roles.Resolve(sub.claims.OrgID, a.RoleSlug); ok && len(role.Permissions) > 0 {
			return role.Permissions[b.rng.IntN(len(role.Permissions))]
		}
	}
	return b.perms[b.rng.IntN(len(b.perms))]
}
