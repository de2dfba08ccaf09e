package loadtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// Request kinds: what a request was generated to exercise. The expected
// answer always comes from the Oracle, never from the kind.
const (
	// KindToken is a check the token's permissions allow.
	KindToken = "token"
	// KindAssignment is a check on a resource at or below one of the
	// membership's role assignments (allowed unless the membership is not
	// active).
	KindAssignment = "assignment"
	// KindDeny is a check the Oracle denies: another organization's
	// resource, a permission no grant carries, or an unknown permission.
	KindDeny = "deny"
)

// Request is one check of the mix: a raw session token, a permission and a
// resource by id, and the answer the Oracle expects.
type Request struct {
	Kind       string
	Token      string
	Permission string
	ResourceID string
	// Depth is the resource's level, 1 for an organization root.
	Depth int
	// Want is the Oracle's answer.
	Want bool
}

// TokenSigner mints a compact JWS from claims; *token.Signer satisfies it.
type TokenSigner interface {
	Sign(claims map[string]any) (string, error)
}

// MixConfig configures BuildMix. Zero fields get the defaults their comments
// name.
type MixConfig struct {
	// Seed selects the mix: equal configs and datasets give equal requests
	// (tokens differ, as signatures do).
	Seed uint64
	// Size is the number of distinct requests (default 10,000); the load
	// generator cycles through them.
	Size int
	// Tokens is the number of distinct session tokens (default 16), so a
	// server's verified-token cache is always warm: every request after the
	// first few uses a cached token.
	Tokens int
	// Issuer is the iss claim of the tokens (required).
	Issuer string
	// TTL is how long the tokens are valid (default 1h).
	TTL time.Duration
	// Shares of token, assignment and deny checks (default 30/45/25).
	TokenShare, AssignmentShare, DenyShare int
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
	if c.TokenShare+c.AssignmentShare+c.DenyShare <= 0 {
		c.TokenShare, c.AssignmentShare, c.DenyShare = 30, 45, 25
	}
	return c
}

// Mix is a request mix over one dataset.
type Mix struct {
	Requests []Request
	// Tokens is the number of distinct tokens the requests use.
	Tokens int
}

// Count returns how many requests are of kind, and how many of those the
// Oracle allows.
func (m *Mix) Count(kind string) (n, allowed int) {
	for _, r := range m.Requests {
		if r.Kind == kind {
			n++
			if r.Want {
				allowed++
			}
		}
	}
	return n, allowed
}

// subject is one membership a token is minted for.
type subject struct {
	claims Claims
	raw    string
	grants []model.Assignment
}

// BuildMix returns a request mix over ds with expected answers from o,
// which must have been built from ds. Tokens are minted with s for
// memberships that hold role assignments, mostly active ones and, when the
// dataset has any, one that is not active. It fails when ds has no
// assignments or signing fails.
func BuildMix(ds *model.Dataset, o *Oracle, s TokenSigner, cfg MixConfig) (*Mix, error) {
	cfg = cfg.withDefaults()
	if cfg.Issuer == "" {
		return nil, errors.New("loadtest: mix: an issuer is required")
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6978)) // "mix"

	children := map[string][]string{}
	orgRes := map[string][]string{}
	for _, org := range ds.Organizations {
		orgRes[org.ID] = append(orgRes[org.ID], org.RootID())
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = model.RootResourceID(r.OrganizationID)
		}
		children[parent] = append(children[parent], r.ID)
		orgRes[r.OrganizationID] = append(orgRes[r.OrganizationID], r.ID)
	}
	byMember := map[string][]model.Assignment{}
	for _, a := range ds.Assignments {
		byMember[a.MembershipID] = append(byMember[a.MembershipID], a)
	}
	roles := model.NewRoleIndex(ds.Roles)

	// Pick the subjects: active memberships with assignments, plus one
	// that is not active, in a seeded random order.
	order := rng.Perm(len(ds.Memberships))
	var subjects []*subject
	inactive := 0
	for _, i := range order {
		if len(subjects) == cfg.Tokens {
			break
		}
		m := ds.Memberships[i]
		if len(byMember[m.ID]) == 0 {
			continue
		}
		if m.Status != model.StatusActive {
			if inactive > 0 || cfg.Tokens < 4 {
				continue
			}
			inactive++
		}
		subjects = append(subjects, &subject{claims: claimsOf(m, roles), grants: byMember[m.ID]})
	}
	if len(subjects) == 0 {
		return nil, errors.New("loadtest: mix: no membership holds a role assignment")
	}
	now := time.Now()
	for _, sub := range subjects {
		m := o.mem[sub.claims.MembershipID]
		role := ""
		if len(m.RoleSlugs) > 0 {
			role = m.RoleSlugs[0]
		}
		raw, err := s.Sign(map[string]any{
			"iss":                        cfg.Issuer,
			"sub":                        m.UserID,
			"sid":                        "session_load_" + m.ID,
			"org_id":                     m.OrganizationID,
			"role":                       role,
			"roles":                      append([]string{}, m.RoleSlugs...),
			"permissions":                append([]string{}, sub.claims.Permissions...),
			"organization_membership_id": m.ID,
			"iat":                        now.Unix(),
			"exp":                        now.Add(cfg.TTL).Unix(),
		})
		if err != nil {
			return nil, fmt.Errorf("loadtest: mix: mint token: %w", err)
		}
		sub.raw = raw
	}

	perms := make([]string, len(ds.Permissions))
	for i, p := range ds.Permissions {
		perms[i] = p.Slug
	}
	orgs := make([]string, len(ds.Organizations))
	for i, org := range ds.Organizations {
		orgs[i] = org.ID
	}
	total := cfg.TokenShare + cfg.AssignmentShare + cfg.DenyShare
	mix := &Mix{Tokens: len(subjects), Requests: make([]Request, 0, cfg.Size)}
	for len(mix.Requests) < cfg.Size {
		sub := subjects[rng.IntN(len(subjects))]
		req := Request{Token: sub.raw}
		switch x := rng.IntN(total); {
		case x < cfg.TokenShare:
			if len(sub.claims.Permissions) == 0 {
				continue
			}
			req.Kind = KindToken
			req.Permission = sub.claims.Permissions[rng.IntN(len(sub.claims.Permissions))]
			own := orgRes[sub.claims.OrgID]
			req.ResourceID = own[rng.IntN(len(own))]
		case x < cfg.TokenShare+cfg.AssignmentShare:
			req.Kind = KindAssignment
			a := sub.grants[rng.IntN(len(sub.grants))]
			rid := a.ResourceID
			// Descend 0 to 3 levels below the anchor, for varied depth.
			for steps := rng.IntN(4); steps > 0 && len(children[rid]) > 0; steps-- {
				kids := children[rid]
				rid = kids[rng.IntN(len(kids))]
			}
			req.ResourceID = rid
			role, ok := roles.Resolve(sub.claims.OrgID, a.RoleSlug)
			if !ok || len(role.Permissions) == 0 {
				continue
			}
			req.Permission = role.Permissions[rng.IntN(len(role.Permissions))]
		default:
			req.Kind = KindDeny
			found := false
			for range 20 {
				org := sub.claims.OrgID
				if rng.IntN(3) == 0 {
					org = orgs[rng.IntN(len(orgs))]
				}
				rs := orgRes[org]
				req.ResourceID = rs[rng.IntN(len(rs))]
				req.Permission = perms[rng.IntN(len(perms))]
				if !o.Allowed(sub.claims, req.Permission, req.ResourceID) {
					found = true
					break
				}
			}
			if !found {
				req.Permission = "nonexistent:permission"
			}
		}
		req.Depth = o.depth(req.ResourceID)
		req.Want = o.Allowed(sub.claims, req.Permission, req.ResourceID)
		mix.Requests = append(mix.Requests, req)
	}
	return mix, nil
}

// claimsOf returns the claims an AuthKit-style session token carries for m:
// its organization, membership and the permissions of its organization
// roles, sorted.
func claimsOf(m model.Membership, roles *model.RoleIndex) Claims {
	var perms []string
	for _, slug := range m.RoleSlugs {
		if r, ok := roles.Resolve(m.OrganizationID, slug); ok {
			perms = append(perms, r.Permissions...)
		}
	}
	slices.Sort(perms)
	return Claims{OrgID: m.OrganizationID, Permissions: slices.Compact(perms), MembershipID: m.ID}
}
