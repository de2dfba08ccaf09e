package devmode

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
)

// maxExampleChecks bounds the checks spent looking for examples.
const maxExampleChecks = 5000

// Examples returns example requests on the data being served: a check
// allowed by the token, one allowed by inheritance, one denied (each
// verified with svc before it is returned), then an effective-permissions
// and a list request. Examples the data cannot give are left out.
func (c Config) Examples(ctx context.Context, svc checker, ttl time.Duration) ([]Example, error) {
	ds, err := c.Data(ctx)
	if err != nil {
		return nil, err
	}
	f := &finder{c: c, ds: ds, svc: svc, ttl: ttl, tokens: map[string]tokenOf{}, permType: map[string]string{},
		children: map[string][]model.Resource{}, byID: map[string]model.Resource{}, firstOf: map[[2]string]model.Resource{}}
	for _, p := range ds.Permissions {
		f.permType[p.Slug] = p.ResourceType
	}
	roots := map[string]string{} // organization → root id
	for _, o := range ds.Organizations {
		roots[o.ID] = o.RootID()
		f.index(model.Resource{ID: o.RootID(), OrganizationID: o.ID, Type: model.OrganizationType, ExternalID: o.ID})
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = roots[r.OrganizationID]
		}
		f.children[parent] = append(f.children[parent], r)
		f.index(r)
	}
	for _, m := range ds.Memberships {
		if m.Status == model.StatusActive || m.Status == "" {
			f.active = append(f.active, m)
		}
	}
	var out []Example
	if ex, err := f.byToken(ctx); err != nil || ex != nil {
		if err != nil {
			return nil, err
		}
		out = append(out, *ex)
	}
	inherited, err := f.byInheritance(ctx)
	if err != nil {
		return nil, err
	}
	if inherited == nil {
		return out, nil
	}
	out = append(out, inherited.example)
	if ex, err := f.denied(ctx, inherited); err != nil || ex != nil {
		if err != nil {
			return nil, err
		}
		out = append(out, *ex)
	}
	m, r := inherited.member, inherited.resource
	out = append(out,
		Example{Comment: "A membership subject needs the API key; effective permissions and listing work the same way.",
			Path: "/v1/effective-permissions", APIKey: true,
			Body: map[string]any{"subject": map[string]string{"organization_membership_id": m.ID}, "resource": refIn(r)}},
		Example{Comment: fmt.Sprintf("Every %s %s may act on with %s.", r.Type, m.ID, inherited.permission),
			Path: "/v1/list-resources",
			Body: map[string]any{"token": f.tokens[m.ID].jwt, "permission": inherited.permission, "resource_type": r.Type}},
	)
	return out, nil
}

type tokenOf struct {
	jwt   string
	perms []string
}

type finder struct {
	c        Config
	ds       *model.Dataset
	svc      checker
	ttl      time.Duration
	checks   int
	tokens   map[string]tokenOf
	permType map[string]string
	children map[string][]model.Resource  // parent id (roots included) → children
	byID     map[string]model.Resource    // roots included
	firstOf  map[[2]string]model.Resource // [organization, type] → its first resource
	active   []model.Membership
}

// index records r for lookups by id and by organization and type.
func (f *finder) index(r model.Resource) {
	f.byID[r.ID] = r
	if _, ok := f.firstOf[[2]string{r.OrganizationID, r.Type}]; !ok {
		f.firstOf[[2]string{r.OrganizationID, r.Type}] = r
	}
}

// inheritedExample is the inheritance example and what it is about.
type inheritedExample struct {
	example    Example
	member     model.Membership
	permission string
	resource   model.Resource
}

func (f *finder) token(m model.Membership) (tokenOf, error) {
	if t, ok := f.tokens[m.ID]; ok {
		return t, nil
	}
	claims, err := token.AuthKitClaims(f.ds, m.ID)
	if err != nil {
		return tokenOf{}, err
	}
	perms, _ := claims["permissions"].([]string)
	jwt, _, err := f.c.sign(claims, f.ttl)
	f.tokens[m.ID] = tokenOf{jwt: jwt, perms: perms}
	return f.tokens[m.ID], err
}

// check reports whether m's token is allowed p on r and what decided it;
// ok is false once the budget is spent.
func (f *finder) check(ctx context.Context, m model.Membership, p string, r model.Resource) (d authz.Decision, ok bool, err error) {
	if f.checks >= maxExampleChecks {
		return d, false, nil
	}
	f.checks++
	t, err := f.token(m)
	if err != nil {
		return d, false, err
	}
	d, _, err = f.svc.Check(ctx, authz.Subject{Token: t.jwt}, authz.Check{Permission: p, Resource: ref(r)}, authz.Consistency{})
	return d, err == nil, err
}

func ref(r model.Resource) authz.ResourceRef {
	return authz.ResourceRef{Type: r.Type, ExternalID: r.ExternalID}
}

func refIn(r model.Resource) authz.ResourceRef {
	return authz.ResourceRef{Type: r.Type, ExternalID: r.ExternalID, OrganizationID: r.OrganizationID}
}

func (f *finder) checkExample(m model.Membership, p string, r model.Resource, comment string, allowed bool) *Example {
	return &Example{Comment: comment, Path: "/v1/check", Allowed: &allowed,
		Body: map[string]any{"token": f.tokens[m.ID].jwt, "permission": p, "resource": ref(r)}}
}

// byToken finds a permission a token carries, on a resource below the
// organization if it can (the organization itself otherwise).
func (f *finder) byToken(ctx context.Context) (*Example, error) {
	for _, orgLevel := range []bool{false, true} {
		for _, m := range f.active {
			t, err := f.token(m)
			if err != nil {
				return nil, err
			}
			for _, p := range t.perms {
				if (f.permType[p] == model.OrganizationType) != orgLevel {
					continue
				}
				r, ok := f.firstOf[[2]string{m.OrganizationID, f.permType[p]}]
				if !ok {
					continue
				}
				d, ok, err := f.check(ctx, m, p, r)
				if err != nil || !ok {
					return nil, err
				}
				if d.Allowed && d.DecidedBy == "token" {
					return f.checkExample(m, p, r, fmt.Sprintf("Allowed by the token: %s's session token carries %s for %s.", m.ID, p, m.OrganizationID), true), nil
				}
			}
		}
	}
	return nil, nil
}

// byInheritance finds a permission a role assigned on a resource gives on
// a resource below it, which the token does not carry.
func (f *finder) byInheritance(ctx context.Context) (*inheritedExample, error) {
	members := map[string]model.Membership{}
	for _, m := range f.active {
		members[m.ID] = m
	}
	for _, a := range f.ds.Assignments {
		m, ok := members[a.MembershipID]
		if !ok {
			continue
		}
		role, ok := f.ds.ResolveRole(m.OrganizationID, a.RoleSlug)
		if !ok {
			continue
		}
		t, err := f.token(m)
		if err != nil {
			return nil, err
		}
		holder, ok := f.byID[a.ResourceID]
		if !ok {
			continue
		}
		for _, below := range f.children[a.ResourceID] {
			for _, p := range role.Permissions {
				if f.permType[p] != below.Type || slices.Contains(t.perms, p) {
					continue
				}
				d, ok, err := f.check(ctx, m, p, below)
				if err != nil || !ok {
					return nil, err
				}
				if d.Allowed && d.DecidedBy == "assignment" {
					comment := fmt.Sprintf("Allowed by inheritance: %s has role %s on %s:%s, which holds %s:%s.",
						m.ID, a.RoleSlug, holder.Type, holder.ExternalID, below.Type, below.ExternalID)
					return &inheritedExample{example: *f.checkExample(m, p, below, comment, true), member: m, permission: p, resource: below}, nil
				}
			}
		}
	}
	return nil, nil
}

// denied finds another membership of the organization refused what the
// inheritance example allows.
func (f *finder) denied(ctx context.Context, in *inheritedExample) (*Example, error) {
	for _, m := range f.active {
		if m.ID == in.member.ID || m.OrganizationID != in.member.OrganizationID {
			continue
		}
		d, ok, err := f.check(ctx, m, in.permission, in.resource)
		if err != nil || !ok {
			return nil, err
		}
		if !d.Allowed {
			return f.checkExample(m, in.permission, in.resource,
				fmt.Sprintf("Denied: %s has no role with %s on %s:%s or above it.", m.ID, in.permission, in.resource.Type, in.resource.ExternalID), false), nil
		}
	}
	return nil, nil
}
