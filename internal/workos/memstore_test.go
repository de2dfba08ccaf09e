package workos_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/workos"
)

// memStore is an in-memory workos.Store, the second backend of the
// conformance suite (helpers_test.go) next to the PostgreSQL store. It
// earns its place as an independent implementation of the Store contract
// (its rules come from model.Dataset.Validate, not from the SQL write path,
// so the suite checks the contract rather than one implementation), as the
// fast run of the HTTP layer, and as the store whose engine lag a test
// controls exactly (withApplyDelay, TestConsistency). Every write is applied to a copy of the state, validated with the data
// model's own rules (model.Dataset.Validate), diffed against the previous
// dataset into model.Change batches, and handed to apply (engine.Apply)
// with a new revision, so decisions come from the real engine and policies.
// A failed write changes nothing.
type memStore struct {
	mu    sync.Mutex
	st    *memState
	ds    *model.Dataset // the dataset of st
	rev   int64
	apply func(ctx context.Context, rev int64, changes []model.Change) error
	now   func() time.Time
}

type memState struct {
	orgs      map[string]workos.Organization
	members   map[string]workos.Membership
	types     map[string]workos.ResourceType
	perms     map[string]workos.Permission // by slug
	roles     map[string]workos.Role       // by model.RoleKey
	resources map[string]workos.Resource   // root resources excluded
	assigns   map[string]workos.Assignment
	groups    map[string]workos.Group
	gmembers  map[model.GroupMember]bool
	gassigns  map[string]workos.GroupAssignment
	priority  map[string]int // by model.RoleKey; lower first
	lastPrio  int            // the last priority given
	defRole   string         // SetDefaultRole's
}

func newMemStore(apply func(context.Context, int64, []model.Change) error) *memStore {
	s := &memStore{st: &memState{
		orgs: map[string]workos.Organization{}, members: map[string]workos.Membership{},
		types: map[string]workos.ResourceType{}, perms: map[string]workos.Permission{},
		roles: map[string]workos.Role{}, resources: map[string]workos.Resource{}, assigns: map[string]workos.Assignment{},
		groups: map[string]workos.Group{}, gmembers: map[model.GroupMember]bool{}, gassigns: map[string]workos.GroupAssignment{},
		priority: map[string]int{},
	}, apply: apply, now: time.Now}
	s.ds = s.st.dataset()
	return s
}

func (st *memState) clone() *memState {
	return &memState{
		orgs: maps.Clone(st.orgs), members: maps.Clone(st.members), types: maps.Clone(st.types),
		perms: maps.Clone(st.perms), roles: maps.Clone(st.roles), resources: maps.Clone(st.resources),
		assigns: maps.Clone(st.assigns), groups: maps.Clone(st.groups), gmembers: maps.Clone(st.gmembers),
		gassigns: maps.Clone(st.gassigns), priority: maps.Clone(st.priority), lastPrio: st.lastPrio, defRole: st.defRole,
	}
}

func sortedValues[K cmp.Ordered, V any](m map[K]V) []V {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func (st *memState) dataset() *model.Dataset {
	ds := &model.Dataset{}
	for _, o := range sortedValues(st.orgs) {
		ds.Organizations = append(ds.Organizations, model.Organization{ID: o.ID, Name: o.Name, RootResourceID: o.RootResourceID,
			Attributes: o.Attributes})
	}
	for _, m := range sortedValues(st.members) {
		ds.Memberships = append(ds.Memberships, model.Membership{ID: m.ID, UserID: m.UserID, OrganizationID: m.OrganizationID,
			Status: m.Status, RoleSlugs: slices.Clone(m.RoleSlugs)})
	}
	for _, t := range sortedValues(st.types) {
		ds.ResourceTypes = append(ds.ResourceTypes, model.ResourceType{Slug: t.Slug, Name: t.Name, Description: t.Description,
			ParentTypes: slices.Clone(t.ParentTypeSlugs)})
	}
	for _, p := range sortedValues(st.perms) {
		ds.Permissions = append(ds.Permissions, model.Permission{Slug: p.Slug, Name: p.Name, Description: p.Description, ResourceType: p.ResourceTypeSlug})
	}
	for _, r := range sortedValues(st.roles) {
		ds.Roles = append(ds.Roles, model.Role{Slug: r.Slug, Name: r.Name, Description: r.Description, ResourceType: r.ResourceTypeSlug,
			OrganizationID: r.OrganizationID, Permissions: slices.Clone(r.Permissions)})
	}
	for _, r := range sortedValues(st.resources) {
		ds.Resources = append(ds.Resources, model.Resource{ID: r.ID, OrganizationID: r.OrganizationID, Type: r.TypeSlug,
			ExternalID: r.ExternalID, Name: r.Name, Description: r.Description, ParentID: r.ParentID, Attributes: r.Attributes})
	}
	for _, a := range sortedValues(st.assigns) {
		ds.Assignments = append(ds.Assignments, model.Assignment{ID: a.ID, MembershipID: a.MembershipID, RoleSlug: a.RoleSlug, ResourceID: a.ResourceID})
	}
	for _, g := range sortedValues(st.groups) {
		ds.Groups = append(ds.Groups, model.Group{ID: g.ID, OrganizationID: g.OrganizationID, Name: g.Name, Description: g.Description})
	}
	for _, gm := range slices.SortedFunc(maps.Keys(st.gmembers), func(a, b model.GroupMember) int {
		return cmp.Or(strings.Compare(a.GroupID, b.GroupID), strings.Compare(a.MembershipID, b.MembershipID))
	}) {
		ds.GroupMembers = append(ds.GroupMembers, gm)
	}
	for _, a := range sortedValues(st.gassigns) {
		ds.Assignments = append(ds.Assignments, model.Assignment{ID: a.ID, GroupID: a.GroupID, RoleSlug: a.RoleSlug, ResourceID: a.ResourceID})
	}
	return ds
}

// write runs fn on a copy of the state and commits it if the result is a
// valid dataset and the engine accepted its changes.
func (s *memStore) write(ctx context.Context, fn func(st *memState, now time.Time) error) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	if err := fn(next, s.now().UTC()); err != nil {
		return 0, err
	}
	ds := next.dataset()
	if err := ds.Validate(); err != nil {
		return 0, err
	}
	rev := s.rev + 1
	ds.Revision = rev
	if s.apply != nil {
		if err := s.apply(ctx, rev, diff(s.ds, ds)); err != nil {
			return 0, err
		}
	}
	s.st, s.ds, s.rev = next, ds, rev
	return rev, nil
}

func (s *memStore) read() *memState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st // never mutated: writes replace it
}

// diff returns the changes from old to cur in an order index.Patch accepts:
// upserts parents first, then deletes children first.
func diff(old, cur *model.Dataset) []model.Change {
	var ups, dels []model.Change
	add := func(u, d []model.Change) { ups = append(ups, u...); dels = append(d, dels...) }
	add(diffKind(old.Organizations, cur.Organizations, func(o model.Organization) string { return o.ID },
		func(o model.Organization) model.Change { return model.Change{Organization: &o} }))
	add(diffKind(old.ResourceTypes, cur.ResourceTypes, func(t model.ResourceType) string { return t.Slug },
		func(t model.ResourceType) model.Change { return model.Change{ResourceType: &t} }))
	add(diffKind(old.Permissions, cur.Permissions, func(p model.Permission) string { return p.Slug },
		func(p model.Permission) model.Change { return model.Change{Permission: &p} }))
	add(diffKind(old.Roles, cur.Roles, model.Role.Key,
		func(r model.Role) model.Change { return model.Change{Role: &r} }))
	add(diffKind(old.Memberships, cur.Memberships, func(m model.Membership) string { return m.ID },
		func(m model.Membership) model.Change { return model.Change{Membership: &m} }))
	add(diffKind(old.Groups, cur.Groups, func(g model.Group) string { return g.ID },
		func(g model.Group) model.Change { return model.Change{Group: &g} }))
	add(diffKind(old.GroupMembers, cur.GroupMembers, func(gm model.GroupMember) string { return gm.GroupID + " " + gm.MembershipID },
		func(gm model.GroupMember) model.Change { return model.Change{GroupMember: &gm} }))
	// Resources: upserts by depth in cur, deletes deepest first in old.
	depth := func(ds *model.Dataset) map[string]int {
		parent := map[string]string{}
		for _, r := range ds.Resources {
			parent[r.ID] = r.ParentID
		}
		d := map[string]int{}
		for id := range parent {
			n := 0
			for p := id; p != ""; p = parent[p] {
				n++
			}
			d[id] = n
		}
		return d
	}
	ru, rd := diffKind(old.Resources, cur.Resources, func(r model.Resource) string { return r.ID },
		func(r model.Resource) model.Change { return model.Change{Resource: &r} })
	dc, do := depth(cur), depth(old)
	slices.SortStableFunc(ru, func(a, b model.Change) int { return dc[a.Resource.ID] - dc[b.Resource.ID] })
	slices.SortStableFunc(rd, func(a, b model.Change) int { return do[b.Resource.ID] - do[a.Resource.ID] })
	add(ru, rd)
	add(diffKind(old.Assignments, cur.Assignments, func(a model.Assignment) string { return a.ID },
		func(a model.Assignment) model.Change { return model.Change{Assignment: &a} }))
	return append(ups, dels...)
}

func diffKind[T any](old, cur []T, key func(T) string, change func(T) model.Change) (ups, dels []model.Change) {
	was := map[string]T{}
	for _, v := range old {
		was[key(v)] = v
	}
	is := map[string]bool{}
	for _, v := range cur {
		is[key(v)] = true
		if prev, ok := was[key(v)]; !ok || !reflect.DeepEqual(prev, v) {
			c := change(v)
			c.Op = model.OpUpsert
			ups = append(ups, c)
		}
	}
	for _, v := range old {
		if !is[key(v)] {
			c := change(v)
			c.Op = model.OpDelete
			dels = append(dels, c)
		}
	}
	return ups, dels
}

// page applies ListOptions to items (in any order).
func page[T any](items []T, key func(T) string, o workos.ListOptions) []T {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	if o.Descending {
		slices.Reverse(items)
	}
	var out []T
	for _, it := range items {
		if o.After != "" && (!o.Descending && key(it) <= o.After || o.Descending && key(it) >= o.After) {
			continue
		}
		if len(out) == o.Limit {
			break
		}
		out = append(out, it)
	}
	return out
}

func filter[T any](m map[string]T, keep func(T) bool) []T {
	var out []T
	for _, v := range m {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

func all[T any](T) bool { return true }

func unknown(field, format string, args ...any) error {
	return workos.Invalid(field, model.CodeUnknownReference, format, args...)
}

// ---- organizations ----

func (s *memStore) CreateOrganization(ctx context.Context, in workos.OrganizationInput) (o workos.Organization, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if in.ExternalID != "" {
			if _, err := st.orgByExternalID(in.ExternalID); err == nil {
				return workos.Conflict("external_id %q is used by another organization", in.ExternalID)
			}
		}
		o = workos.Organization{ID: model.NewID(workos.PrefixOrganization), Name: in.Name, ExternalID: in.ExternalID,
			Metadata: maps.Clone(in.Metadata), Domains: workos.SetDomains(nil, in.Domains, now), StripeCustomerID: in.StripeCustomerID,
			Attributes: in.Attributes, RootResourceID: model.NewID(workos.PrefixResource), CreatedAt: now, UpdatedAt: now}
		if err := st.domainsFree(o); err != nil {
			return err
		}
		st.orgs[o.ID] = o
		return nil
	})
	return o, rev, err
}

// domainsFree fails with a conflict when another organization has one of
// o's domains.
func (st *memState) domainsFree(o workos.Organization) error {
	for _, other := range st.orgs {
		for _, d := range other.Domains {
			if other.ID != o.ID && slices.ContainsFunc(o.Domains, func(x workos.Domain) bool { return x.Domain == d.Domain }) {
				return workos.Conflict("domain %q belongs to another organization", d.Domain)
			}
		}
	}
	return nil
}

func (st *memState) org(id string) (workos.Organization, error) {
	o, ok := st.orgs[id]
	if !ok {
		return o, workos.NotFound("organization", id)
	}
	return o, nil
}

func (st *memState) orgByExternalID(ext string) (workos.Organization, error) {
	for _, o := range st.orgs {
		if o.ExternalID == ext {
			return o, nil
		}
	}
	return workos.Organization{}, workos.NotFound("organization with external_id", ext)
}

func (s *memStore) GetOrganization(_ context.Context, id string) (workos.Organization, error) {
	return s.read().org(id)
}

func (s *memStore) GetOrganizationByExternalID(_ context.Context, ext string) (workos.Organization, error) {
	return s.read().orgByExternalID(ext)
}

func (s *memStore) ListOrganizations(_ context.Context, f workos.OrganizationFilter, o workos.ListOptions) ([]workos.Organization, error) {
	return page(filter(s.read().orgs, func(o workos.Organization) bool {
		return len(f.Domains) == 0 || slices.ContainsFunc(o.Domains, func(d workos.Domain) bool { return slices.Contains(f.Domains, d.Domain) })
	}), func(o workos.Organization) string { return o.ID }, o), nil
}

func (s *memStore) UpdateOrganization(ctx context.Context, id string, u workos.OrganizationUpdate) (o workos.Organization, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if o, err = st.org(id); err != nil {
			return err
		}
		if u.Name != nil {
			o.Name = *u.Name
		}
		if u.ExternalID != nil {
			if other, err := st.orgByExternalID(*u.ExternalID); *u.ExternalID != "" && err == nil && other.ID != id {
				return workos.Conflict("external_id %q is used by another organization", *u.ExternalID)
			}
			o.ExternalID = *u.ExternalID
		}
		if u.SetMetadata {
			o.Metadata = maps.Clone(u.Metadata)
		}
		if u.Domains != nil {
			o.Domains = workos.SetDomains(o.Domains, *u.Domains, now)
			if err := st.domainsFree(o); err != nil {
				return err
			}
		}
		if u.StripeCustomerID != nil {
			o.StripeCustomerID = *u.StripeCustomerID
		}
		if u.Attributes != nil {
			o.Attributes = *u.Attributes
		}
		o.UpdatedAt = now
		st.orgs[id] = o
		return nil
	})
	return o, rev, err
}

func (s *memStore) DeleteOrganization(ctx context.Context, id string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.org(id); err != nil {
			return err
		}
		delete(st.orgs, id)
		for k, m := range st.members {
			if m.OrganizationID == id {
				delete(st.members, k)
			}
		}
		for k, r := range st.roles {
			if r.OrganizationID == id {
				delete(st.roles, k)
			}
		}
		for k, r := range st.resources {
			if r.OrganizationID == id {
				delete(st.resources, k)
			}
		}
		st.dropDangling()
		return nil
	})
}

// dropDangling removes what refers to something gone, as the database's
// cascades do: assignments whose membership or resource is gone, groups
// whose organization is gone, group members whose group or membership is
// gone, group assignments whose group, role or resource is gone.
func (st *memState) dropDangling() {
	for k, a := range st.assigns {
		_, okM := st.members[a.MembershipID]
		_, okR := st.resources[a.ResourceID]
		if !okM || (!okR && !st.isRoot(a.ResourceID)) {
			delete(st.assigns, k)
		}
	}
	for k, g := range st.groups {
		if _, ok := st.orgs[g.OrganizationID]; !ok {
			delete(st.groups, k)
		}
	}
	for gm := range st.gmembers {
		_, okG := st.groups[gm.GroupID]
		_, okM := st.members[gm.MembershipID]
		if !okG || !okM {
			delete(st.gmembers, gm)
		}
	}
	for k, a := range st.gassigns {
		g, okG := st.groups[a.GroupID]
		_, okR := st.resources[a.ResourceID]
		_, roleErr := st.role(g.OrganizationID, a.RoleSlug, true)
		if !okG || roleErr != nil || (!okR && !st.isRoot(a.ResourceID)) {
			delete(st.gassigns, k)
		}
	}
}

func (st *memState) isRoot(id string) bool {
	_, ok := st.rootOrg(id)
	return ok
}

func (st *memState) rootOrg(id string) (workos.Organization, bool) {
	for _, o := range st.orgs {
		if o.RootResourceID == id {
			return o, true
		}
	}
	return workos.Organization{}, false
}

// ---- memberships ----

// withOrgName completes a membership as the store answers it: with its
// organization's name and its roles in priority order.
func (st *memState) withOrgName(m workos.Membership) workos.Membership {
	m.OrganizationName = st.orgs[m.OrganizationID].Name
	m.RoleSlugs = slices.Clone(m.RoleSlugs)
	rank := func(slug string) int { // custom roles after environment roles
		if p, ok := st.priority[model.RoleKey(m.OrganizationID, slug)]; ok {
			return 1<<30 + p
		}
		return st.priority[slug]
	}
	slices.SortFunc(m.RoleSlugs, func(a, b string) int { return cmp.Compare(rank(a), rank(b)) })
	return m
}

func (s *memStore) CreateMembership(ctx context.Context, in workos.MembershipInput) (m workos.Membership, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if _, ok := st.orgs[in.OrganizationID]; !ok {
			return unknown("organization_id", "organization %q does not exist", in.OrganizationID)
		}
		for _, other := range st.members {
			if other.OrganizationID == in.OrganizationID && other.UserID == in.UserID {
				return workos.Conflict("user %q already has membership %q in organization %q", in.UserID, other.ID, in.OrganizationID)
			}
		}
		m = workos.Membership{ID: model.NewID(workos.PrefixMembership), UserID: in.UserID, OrganizationID: in.OrganizationID,
			Status: model.StatusActive, RoleSlugs: slices.Clone(in.RoleSlugs), CreatedAt: now, UpdatedAt: now}
		st.members[m.ID] = m
		m = st.withOrgName(m)
		return nil
	})
	return m, rev, err
}

func (st *memState) member(id string) (workos.Membership, error) {
	m, ok := st.members[id]
	if !ok {
		return m, workos.NotFound("organization membership", id)
	}
	return st.withOrgName(m), nil
}

func (s *memStore) GetMembership(_ context.Context, id string) (workos.Membership, error) {
	return s.read().member(id)
}

func (s *memStore) GetMemberships(_ context.Context, ids []string) ([]workos.Membership, error) {
	st := s.read()
	var out []workos.Membership
	for _, id := range ids {
		if m, err := st.member(id); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) ListMemberships(_ context.Context, f workos.MembershipFilter, o workos.ListOptions) ([]workos.Membership, error) {
	st := s.read()
	items := filter(st.members, func(m workos.Membership) bool {
		return (f.OrganizationID == "" || m.OrganizationID == f.OrganizationID) && (f.UserID == "" || m.UserID == f.UserID) &&
			(len(f.Statuses) == 0 || slices.Contains(f.Statuses, m.Status))
	})
	out := page(items, func(m workos.Membership) string { return m.ID }, o)
	for i := range out {
		out[i] = st.withOrgName(out[i])
	}
	return out, nil
}

func (s *memStore) UpdateMembership(ctx context.Context, id string, u workos.MembershipUpdate) (m workos.Membership, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if m, err = st.member(id); err != nil {
			return err
		}
		if u.RoleSlugs != nil {
			m.RoleSlugs = slices.Clone(*u.RoleSlugs)
		}
		if u.Status != nil {
			m.Status = *u.Status
		}
		m.UpdatedAt = now
		st.members[id] = m
		return nil
	})
	return m, rev, err
}

func (s *memStore) DeleteMembership(ctx context.Context, id string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.member(id); err != nil {
			return err
		}
		delete(st.members, id)
		st.dropDangling()
		return nil
	})
}

// ---- resource types ----

func (s *memStore) CreateResourceType(ctx context.Context, in workos.ResourceTypeInput) (t workos.ResourceType, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if _, ok := st.types[in.Slug]; ok || in.Slug == model.OrganizationType {
			return workos.Conflict("resource type %q already exists", in.Slug)
		}
		t = workos.ResourceType{Slug: in.Slug, Name: in.Name, Description: in.Description,
			ParentTypeSlugs: slices.Clone(in.ParentTypeSlugs), CreatedAt: now, UpdatedAt: now}
		st.types[t.Slug] = t
		return nil
	})
	return t, rev, err
}

func (st *memState) resourceType(slug string) (workos.ResourceType, error) {
	t, ok := st.types[slug]
	if !ok {
		return t, workos.NotFound("resource type", slug)
	}
	return t, nil
}

func (s *memStore) GetResourceType(_ context.Context, slug string) (workos.ResourceType, error) {
	return s.read().resourceType(slug)
}

func (s *memStore) ListResourceTypes(_ context.Context, o workos.ListOptions) ([]workos.ResourceType, error) {
	return page(filter(s.read().types, all), func(t workos.ResourceType) string { return t.Slug }, o), nil
}

func (s *memStore) UpdateResourceType(ctx context.Context, slug string, u workos.ResourceTypeUpdate) (t workos.ResourceType, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if t, err = st.resourceType(slug); err != nil {
			return err
		}
		if u.Name != nil {
			t.Name = *u.Name
		}
		if u.Description != nil {
			t.Description = *u.Description
		}
		if u.ParentTypeSlugs != nil {
			for _, r := range st.resources {
				if r.TypeSlug != slug {
					continue
				}
				pt := model.OrganizationType
				if p, ok := st.resources[r.ParentID]; ok {
					pt = p.TypeSlug
				}
				if !slices.Contains(*u.ParentTypeSlugs, pt) {
					return workos.Conflict("resource %s of type %q is under a %q; move it before removing that parent type", r.ID, slug, pt)
				}
			}
			t.ParentTypeSlugs = slices.Clone(*u.ParentTypeSlugs)
		}
		t.UpdatedAt = now
		st.types[slug] = t
		return nil
	})
	return t, rev, err
}

func (s *memStore) DeleteResourceType(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.resourceType(slug); err != nil {
			return err
		}
		for _, t := range st.types {
			if slices.Contains(t.ParentTypeSlugs, slug) {
				return workos.Conflict("resource type %q is a parent type of %q", slug, t.Slug)
			}
		}
		for _, r := range st.resources {
			if r.TypeSlug == slug {
				return workos.Conflict("resource type %q still has resources", slug)
			}
		}
		for _, p := range st.perms {
			if p.ResourceTypeSlug == slug {
				return workos.Conflict("resource type %q still has permission %q", slug, p.Slug)
			}
		}
		for _, r := range st.roles {
			if r.ResourceTypeSlug == slug {
				return workos.Conflict("resource type %q still has role %q", slug, r.Slug)
			}
		}
		delete(st.types, slug)
		return nil
	})
}

// ---- permissions ----

func (s *memStore) CreatePermission(ctx context.Context, in workos.PermissionInput) (p workos.Permission, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if _, ok := st.perms[in.Slug]; ok {
			return workos.Conflict("permission %q already exists", in.Slug)
		}
		p = workos.Permission{ID: model.NewID(workos.PrefixPermission), Slug: in.Slug, Name: in.Name, Description: in.Description,
			ResourceTypeSlug: in.ResourceTypeSlug, CreatedAt: now, UpdatedAt: now}
		st.perms[p.Slug] = p
		return nil
	})
	return p, rev, err
}

func (st *memState) permission(slug string) (workos.Permission, error) {
	p, ok := st.perms[slug]
	if !ok {
		return p, workos.NotFound("permission", slug)
	}
	return p, nil
}

func (s *memStore) GetPermission(_ context.Context, slug string) (workos.Permission, error) {
	return s.read().permission(slug)
}

func (s *memStore) GetPermissions(_ context.Context, slugs []string) ([]workos.Permission, error) {
	st := s.read()
	var out []workos.Permission
	for _, slug := range slugs {
		if p, ok := st.perms[slug]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *memStore) ListPermissions(_ context.Context, o workos.ListOptions) ([]workos.Permission, error) {
	return page(filter(s.read().perms, all), func(p workos.Permission) string { return p.ID }, o), nil
}

func (s *memStore) UpdatePermission(ctx context.Context, slug string, u workos.PermissionUpdate) (p workos.Permission, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if p, err = st.permission(slug); err != nil {
			return err
		}
		if u.Name != nil {
			p.Name = *u.Name
		}
		if u.Description != nil {
			p.Description = *u.Description
		}
		p.UpdatedAt = now
		st.perms[slug] = p
		return nil
	})
	return p, rev, err
}

func (s *memStore) DeletePermission(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(st *memState, now time.Time) error {
		if _, err := st.permission(slug); err != nil {
			return err
		}
		delete(st.perms, slug)
		for k, r := range st.roles {
			if slices.Contains(r.Permissions, slug) {
				r.Permissions = slices.DeleteFunc(slices.Clone(r.Permissions), func(p string) bool { return p == slug })
				r.UpdatedAt = now
				st.roles[k] = r
			}
		}
		return nil
	})
}

// ---- roles ----

func (s *memStore) CreateRole(ctx context.Context, orgID string, in workos.RoleInput) (r workos.Role, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if orgID != "" {
			if _, err := st.org(orgID); err != nil {
				return err
			}
		}
		for _, other := range st.roles {
			if other.Slug == in.Slug && (other.OrganizationID == "" || orgID == "" || other.OrganizationID == orgID) {
				return workos.Conflict("role slug %q is already used", in.Slug)
			}
		}
		r = workos.Role{ID: model.NewID(workos.PrefixRole), Slug: in.Slug, Name: in.Name, Description: in.Description,
			ResourceTypeSlug: in.ResourceTypeSlug, OrganizationID: orgID, Permissions: []string{}, CreatedAt: now, UpdatedAt: now}
		st.roles[model.RoleKey(orgID, in.Slug)] = r
		st.lastPrio++
		st.priority[model.RoleKey(orgID, in.Slug)] = st.lastPrio
		return nil
	})
	return r, rev, err
}

func (st *memState) role(orgID, slug string, fallback bool) (workos.Role, error) {
	if orgID != "" {
		if _, err := st.org(orgID); err != nil {
			return workos.Role{}, err
		}
		if r, ok := st.roles[model.RoleKey(orgID, slug)]; ok {
			return r, nil
		}
		if !fallback {
			return workos.Role{}, workos.NotFound("organization role", slug)
		}
	}
	if r, ok := st.roles[slug]; ok {
		return r, nil
	}
	return workos.Role{}, workos.NotFound("role", slug)
}

func (s *memStore) GetRole(_ context.Context, orgID, slug string) (workos.Role, error) {
	return s.read().role(orgID, slug, true)
}

func (s *memStore) ListRoles(_ context.Context, orgID string) ([]workos.Role, error) {
	st := s.read()
	if orgID != "" {
		if _, err := st.org(orgID); err != nil {
			return nil, err
		}
	}
	return st.listRoles(orgID), nil
}

// listRoles is ListRoles on st.
func (st *memState) listRoles(orgID string) []workos.Role {
	out := st.rolesOf("")
	if orgID != "" {
		out = append(out, st.rolesOf(orgID)...)
	}
	return out
}

// rolesOf returns the environment roles (orgID "") or orgID's custom roles
// in priority order.
func (st *memState) rolesOf(orgID string) []workos.Role {
	out := filter(st.roles, func(r workos.Role) bool { return r.OrganizationID == orgID })
	slices.SortFunc(out, func(a, b workos.Role) int {
		return cmp.Compare(st.priority[model.RoleKey(a.OrganizationID, a.Slug)], st.priority[model.RoleKey(b.OrganizationID, b.Slug)])
	})
	return out
}

func (s *memStore) ReorderRoles(ctx context.Context, orgID string, slugs []string) (out []workos.Role, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, _ time.Time) error {
		if orgID != "" {
			if _, err := st.org(orgID); err != nil {
				return err
			}
		}
		if err := workos.CheckOrder(st.rolesOf(orgID), slugs); err != nil {
			return err
		}
		for _, slug := range slugs {
			st.lastPrio++
			st.priority[model.RoleKey(orgID, slug)] = st.lastPrio
		}
		out = st.listRoles(orgID)
		return nil
	})
	return out, rev, err
}

func (s *memStore) DefaultRole(context.Context) (string, error) { return s.read().defRole, nil }

func (s *memStore) SetDefaultRole(ctx context.Context, slug string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if slug != "" {
			r, ok := st.roles[slug]
			switch {
			case !ok:
				return unknown("role_slug", "environment role %q does not exist", slug)
			case r.ResourceTypeSlug != model.OrganizationType:
				return workos.Invalid("role_slug", model.CodeInvalid, "role %q is a %s role; the default role must be an organization-level role", slug, r.ResourceTypeSlug)
			}
		}
		st.defRole = slug
		return nil
	})
}

func (s *memStore) UpdateRole(ctx context.Context, orgID, slug string, u workos.RoleUpdate) (r workos.Role, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if r, err = st.role(orgID, slug, false); err != nil {
			return err
		}
		if u.Name != nil {
			r.Name = *u.Name
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		perms := slices.Clone(r.Permissions)
		if u.SetPermissions != nil {
			perms = slices.Clone(*u.SetPermissions)
		}
		for _, p := range u.AddPermissions {
			if !slices.Contains(perms, p) {
				perms = append(perms, p)
			}
		}
		for _, p := range u.RemovePermissions {
			if !slices.Contains(perms, p) {
				return workos.NotFound(fmt.Sprintf("permission of role %q", slug), p)
			}
			perms = slices.DeleteFunc(perms, func(x string) bool { return x == p })
		}
		r.Permissions, r.UpdatedAt = perms, now
		st.roles[model.RoleKey(orgID, slug)] = r
		return nil
	})
	return r, rev, err
}

func (s *memStore) DeleteRole(ctx context.Context, orgID, slug, fallback string) (int64, error) {
	return s.write(ctx, func(st *memState, now time.Time) error {
		if _, err := st.role(orgID, slug, false); err != nil {
			return err
		}
		if st.defRole == slug && orgID == "" {
			return workos.Conflict("role %q is the default role, which every membership falls back to: make another role the default first", slug)
		}
		delete(st.roles, model.RoleKey(orgID, slug))
		delete(st.priority, model.RoleKey(orgID, slug))
		inScope := func(memberID string) bool {
			m, ok := st.members[memberID]
			return ok && (orgID == "" || m.OrganizationID == orgID)
		}
		for k, a := range st.assigns {
			if a.RoleSlug == slug && inScope(a.MembershipID) {
				delete(st.assigns, k)
			}
		}
		for k, m := range st.members {
			if slices.Contains(m.RoleSlugs, slug) && inScope(k) {
				m.RoleSlugs = slices.DeleteFunc(slices.Clone(m.RoleSlugs), func(x string) bool { return x == slug })
				if len(m.RoleSlugs) == 0 && fallback != "" {
					m.RoleSlugs = []string{fallback}
				}
				m.UpdatedAt = now
				st.members[k] = m
			}
		}
		st.dropDangling()
		return nil
	})
}

// ---- resources ----

func (st *memState) rootResource(o workos.Organization) workos.Resource {
	return workos.Resource{ID: o.RootResourceID, ExternalID: o.ID, Name: o.Name, TypeSlug: model.OrganizationType,
		OrganizationID: o.ID, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// resolve finds the resource ref names, roots included.
func (st *memState) resolve(ref workos.ResourceRef) (workos.Resource, bool) {
	if ref.ID != "" {
		if r, ok := st.resources[ref.ID]; ok {
			return r, true
		}
		if o, ok := st.rootOrg(ref.ID); ok {
			return st.rootResource(o), true
		}
		return workos.Resource{}, false
	}
	if ref.TypeSlug == model.OrganizationType {
		if o, ok := st.orgs[ref.ExternalID]; ok && o.ID == ref.OrganizationID {
			return st.rootResource(o), true
		}
		return workos.Resource{}, false
	}
	for _, r := range st.resources {
		if r.OrganizationID == ref.OrganizationID && r.TypeSlug == ref.TypeSlug && r.ExternalID == ref.ExternalID {
			return r, true
		}
	}
	return workos.Resource{}, false
}

func (st *memState) resource(ref workos.ResourceRef) (workos.Resource, error) {
	r, ok := st.resolve(ref)
	if !ok {
		return r, workos.NotFound("resource", ref.String())
	}
	return r, nil
}

// parentID resolves a parent reference for a resource of organization org
// to the ParentID to store ("" for the root).
func (st *memState) parentID(ref workos.ResourceRef, org string) (string, error) {
	if ref.IsZero() {
		return "", nil
	}
	if ref.ID == "" {
		ref.OrganizationID = org
	}
	p, ok := st.resolve(ref)
	if !ok {
		return "", unknown("parent_resource_id", "parent resource %s does not exist", ref)
	}
	if p.TypeSlug != model.OrganizationType {
		return p.ID, nil // model.Validate checks the organization
	}
	if p.OrganizationID != org {
		return "", workos.Invalid("parent_resource_id", model.CodeCrossOrganization, "parent %s is in organization %q, not %q", ref, p.OrganizationID, org)
	}
	return "", nil
}

func (s *memStore) CreateResource(ctx context.Context, in workos.ResourceInput) (r workos.Resource, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if _, ok := st.orgs[in.OrganizationID]; !ok {
			return unknown("organization_id", "organization %q does not exist", in.OrganizationID)
		}
		parent, err := st.parentID(in.Parent, in.OrganizationID)
		if err != nil {
			return err
		}
		r = workos.Resource{ID: model.NewID(workos.PrefixResource), ExternalID: in.ExternalID, Name: in.Name, Description: in.Description,
			TypeSlug: in.TypeSlug, OrganizationID: in.OrganizationID, ParentID: parent, Attributes: in.Attributes, CreatedAt: now, UpdatedAt: now}
		st.resources[r.ID] = r
		return nil
	})
	return r, rev, err
}

func (s *memStore) GetResource(_ context.Context, ref workos.ResourceRef) (workos.Resource, error) {
	return s.read().resource(ref)
}

func (s *memStore) GetResources(_ context.Context, ids []string) ([]workos.Resource, error) {
	st := s.read()
	var out []workos.Resource
	for _, id := range ids {
		if r, ok := st.resolve(workos.ResourceRef{ID: id}); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memStore) ListResources(_ context.Context, f workos.ResourceFilter, o workos.ListOptions) ([]workos.Resource, error) {
	st := s.read()
	items := filter(st.resources, func(r workos.Resource) bool {
		if f.OrganizationID != "" && r.OrganizationID != f.OrganizationID || f.TypeSlug != "" && r.TypeSlug != f.TypeSlug {
			return false
		}
		if f.Search != "" && !strings.Contains(strings.ToLower(r.Name), strings.ToLower(f.Search)) {
			return false
		}
		parent, ok := st.resources[r.ParentID]
		if !ok {
			parent = st.rootResource(st.orgs[r.OrganizationID])
		}
		if f.ParentID != "" && parent.ID != f.ParentID {
			return false
		}
		return f.ParentTypeSlug == "" || parent.TypeSlug == f.ParentTypeSlug && parent.ExternalID == f.ParentExternalID
	})
	return page(items, func(r workos.Resource) string { return r.ID }, o), nil
}

func (s *memStore) UpdateResource(ctx context.Context, ref workos.ResourceRef, u workos.ResourceUpdate) (r workos.Resource, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if r, err = st.resource(ref); err != nil {
			return err
		}
		if r.TypeSlug == model.OrganizationType {
			return workos.Invalid("id", model.CodeInvalid, "an organization's root resource cannot be changed")
		}
		if u.Name != nil {
			r.Name = *u.Name
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		if u.Parent != nil {
			if r.ParentID, err = st.parentID(*u.Parent, r.OrganizationID); err != nil {
				return err
			}
		}
		if u.Attributes != nil {
			r.Attributes = *u.Attributes
		}
		r.UpdatedAt = now
		st.resources[r.ID] = r
		return nil
	})
	return r, rev, err
}

func (s *memStore) DeleteResource(ctx context.Context, ref workos.ResourceRef, cascade bool) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		r, err := st.resource(ref)
		if err != nil {
			return err
		}
		if r.TypeSlug == model.OrganizationType {
			return workos.Invalid("id", model.CodeInvalid, "an organization's root resource cannot be deleted; delete the organization")
		}
		subtree := map[string]bool{r.ID: true}
		for grew := true; grew; {
			grew = false
			for id, c := range st.resources {
				if subtree[c.ParentID] && !subtree[id] {
					subtree[id], grew = true, true
				}
			}
		}
		if !cascade {
			if len(subtree) > 1 {
				return workos.Conflict("resource %s has child resources; delete them first or pass cascade_delete=true", r.ID)
			}
			for _, a := range st.assigns {
				if a.ResourceID == r.ID {
					return workos.Conflict("resource %s has role assignments; remove them first or pass cascade_delete=true", r.ID)
				}
			}
			for _, a := range st.gassigns {
				if a.ResourceID == r.ID {
					return workos.Conflict("resource %s has group role assignments; remove them first or pass cascade_delete=true", r.ID)
				}
			}
		}
		for id := range subtree {
			delete(st.resources, id)
		}
		st.dropDangling()
		return nil
	})
}

// ---- role assignments ----

func (s *memStore) CreateAssignment(ctx context.Context, om, roleSlug string, ref workos.ResourceRef) (a workos.Assignment, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		m, err := st.member(om)
		if err != nil {
			return err
		}
		if ref.ID == "" {
			ref.OrganizationID = m.OrganizationID
		}
		res, ok := st.resolve(ref)
		if !ok {
			return unknown("resource_id", "resource %s does not exist", ref)
		}
		for _, other := range st.assigns {
			if other.MembershipID == om && other.RoleSlug == roleSlug && other.ResourceID == res.ID {
				return workos.Conflict("membership %s already has role %q on resource %s", om, roleSlug, res.ID)
			}
		}
		a = workos.Assignment{ID: model.NewID(workos.PrefixAssignment), MembershipID: om, RoleSlug: roleSlug, ResourceID: res.ID,
			ResourceExternalID: res.ExternalID, ResourceTypeSlug: res.TypeSlug, CreatedAt: now, UpdatedAt: now}
		st.assigns[a.ID] = a
		return nil
	})
	return a, rev, err
}

func (s *memStore) ListAssignments(_ context.Context, f workos.AssignmentFilter, o workos.ListOptions) ([]workos.Assignment, error) {
	st := s.read()
	if f.MembershipID != "" {
		if _, err := st.member(f.MembershipID); err != nil {
			return nil, err
		}
	}
	resID := f.ResourceID
	if !f.Resource.IsZero() {
		r, err := st.resource(f.Resource)
		if err != nil {
			return nil, err
		}
		resID = r.ID
	}
	all := maps.Clone(st.assigns)
	if f.MembershipID != "" {
		for _, g := range st.gassigns {
			if st.gmembers[model.GroupMember{GroupID: g.GroupID, MembershipID: f.MembershipID}] {
				all[g.ID] = workos.Assignment{ID: g.ID, MembershipID: f.MembershipID, RoleSlug: g.RoleSlug, ResourceID: g.ResourceID,
					ResourceExternalID: g.ResourceExternalID, ResourceTypeSlug: g.ResourceTypeSlug, GroupAssignmentID: g.ID,
					CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
			}
		}
	}
	items := filter(all, func(a workos.Assignment) bool {
		return (f.MembershipID == "" || a.MembershipID == f.MembershipID) && (resID == "" || a.ResourceID == resID) &&
			(f.ResourceExternalID == "" || a.ResourceExternalID == f.ResourceExternalID) &&
			(f.ResourceTypeSlug == "" || a.ResourceTypeSlug == f.ResourceTypeSlug) && (f.RoleSlug == "" || a.RoleSlug == f.RoleSlug)
	})
	return page(items, func(a workos.Assignment) string { return a.ID }, o), nil
}

func (s *memStore) DeleteAssignment(ctx context.Context, om, id string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		a, ok := st.assigns[id]
		if !ok || a.MembershipID != om {
			return workos.NotFound("role assignment", id)
		}
		delete(st.assigns, id)
		return nil
	})
}

func (s *memStore) DeleteAssignmentByRole(ctx context.Context, om, roleSlug string, ref workos.ResourceRef) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		m, err := st.member(om)
		if err != nil {
			return err
		}
		if ref.ID == "" {
			ref.OrganizationID = m.OrganizationID
		}
		res, ok := st.resolve(ref)
		if !ok {
			return unknown("resource_id", "resource %s does not exist", ref)
		}
		for k, a := range st.assigns {
			if a.MembershipID == om && a.RoleSlug == roleSlug && a.ResourceID == res.ID {
				delete(st.assigns, k)
				return nil
			}
		}
		return workos.NotFound("role assignment", fmt.Sprintf("%s on %s", roleSlug, res.ID))
	})
}

// ---- groups ----

// group returns group id of organization org ("" matches any).
func (st *memState) group(org, id string) (workos.Group, error) {
	g, ok := st.groups[id]
	if !ok || org != "" && g.OrganizationID != org {
		return workos.Group{}, workos.NotFound("group", id)
	}
	return g, nil
}

func (s *memStore) CreateGroup(ctx context.Context, org string, in workos.GroupInput) (g workos.Group, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		if _, err := st.org(org); err != nil {
			return err
		}
		g = workos.Group{ID: model.NewID(workos.PrefixGroup), OrganizationID: org, Name: in.Name, Description: in.Description,
			CreatedAt: now, UpdatedAt: now}
		st.groups[g.ID] = g
		return nil
	})
	return g, rev, err
}

func (s *memStore) GetGroup(_ context.Context, org, id string) (workos.Group, error) {
	return s.read().group(org, id)
}

func (s *memStore) ListGroups(_ context.Context, org string, o workos.ListOptions) ([]workos.Group, error) {
	st := s.read()
	if _, err := st.org(org); err != nil {
		return nil, err
	}
	return page(filter(st.groups, func(g workos.Group) bool { return g.OrganizationID == org }),
		func(g workos.Group) string { return g.ID }, o), nil
}

func (s *memStore) UpdateGroup(ctx context.Context, org, id string, u workos.GroupUpdate) (g workos.Group, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		var err error
		if g, err = st.group(org, id); err != nil {
			return err
		}
		if u.Name != nil {
			g.Name = *u.Name
		}
		if u.Description != nil {
			g.Description = *u.Description
		}
		g.UpdatedAt = now
		st.groups[id] = g
		return nil
	})
	return g, rev, err
}

func (s *memStore) DeleteGroup(ctx context.Context, org, id string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.group(org, id); err != nil {
			return err
		}
		delete(st.groups, id)
		st.dropDangling()
		return nil
	})
}

func (s *memStore) AddGroupMember(ctx context.Context, org, id, om string) (g workos.Group, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, _ time.Time) error {
		var err error
		if g, err = st.group(org, id); err != nil {
			return err
		}
		gm := model.GroupMember{GroupID: id, MembershipID: om}
		if st.gmembers[gm] {
			return workos.Conflict("membership %q is already a member of group %q", om, id)
		}
		st.gmembers[gm] = true // a membership of another organization fails Validate
		return nil
	})
	return g, rev, err
}

func (s *memStore) RemoveGroupMember(ctx context.Context, org, id, om string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.group(org, id); err != nil {
			return err
		}
		gm := model.GroupMember{GroupID: id, MembershipID: om}
		if !st.gmembers[gm] {
			return workos.NotFound("member of group "+id, om)
		}
		delete(st.gmembers, gm)
		return nil
	})
}

func (s *memStore) ListGroupMembers(_ context.Context, org, id string, o workos.ListOptions) ([]workos.Membership, error) {
	st := s.read()
	if _, err := st.group(org, id); err != nil {
		return nil, err
	}
	members := filter(st.members, func(m workos.Membership) bool { return st.gmembers[model.GroupMember{GroupID: id, MembershipID: m.ID}] })
	out := page(members, func(m workos.Membership) string { return m.ID }, o)
	for i, m := range out {
		out[i] = st.withOrgName(m)
	}
	return out, nil
}

func (s *memStore) ListMembershipGroups(_ context.Context, om string, o workos.ListOptions) ([]workos.Group, error) {
	st := s.read()
	if _, err := st.member(om); err != nil {
		return nil, err
	}
	return page(filter(st.groups, func(g workos.Group) bool { return st.gmembers[model.GroupMember{GroupID: g.ID, MembershipID: om}] }),
		func(g workos.Group) string { return g.ID }, o), nil
}

// groupTarget resolves the resource of a group assignment in organization
// org: its root when in names none.
func (st *memState) groupTarget(org string, in workos.GroupAssignmentInput) (workos.Resource, error) {
	ref := in.Target(org)
	res, ok := st.resolve(ref)
	if !ok {
		return res, unknown("resource_id", "resource %s does not exist", ref)
	}
	return res, nil
}

// groupAssignment returns the group's assignment of role on resource.
func (st *memState) groupAssignment(id, role, resource string) (workos.GroupAssignment, bool) {
	for _, a := range st.gassigns {
		if a.GroupID == id && a.RoleSlug == role && a.ResourceID == resource {
			return a, true
		}
	}
	return workos.GroupAssignment{}, false
}

func (st *memState) assignGroup(id, role string, res workos.Resource, now time.Time) workos.GroupAssignment {
	a := workos.GroupAssignment{ID: model.NewID(workos.PrefixGroupAssignment), GroupID: id, RoleSlug: role, ResourceID: res.ID,
		ResourceExternalID: res.ExternalID, ResourceTypeSlug: res.TypeSlug, CreatedAt: now, UpdatedAt: now}
	st.gassigns[a.ID] = a
	return a
}

func (st *memState) groupAssignments(id string) []workos.GroupAssignment {
	return page(filter(st.gassigns, func(a workos.GroupAssignment) bool { return a.GroupID == id }),
		func(a workos.GroupAssignment) string { return a.ID }, workos.ListOptions{Limit: len(st.gassigns)})
}

func (s *memStore) CreateGroupAssignment(ctx context.Context, id string, in workos.GroupAssignmentInput) (a workos.GroupAssignment, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		g, err := st.group("", id)
		if err != nil {
			return err
		}
		res, err := st.groupTarget(g.OrganizationID, in)
		if err != nil {
			return err
		}
		if _, dup := st.groupAssignment(id, in.RoleSlug, res.ID); dup {
			return workos.Conflict("group %s already has role %q on resource %s", id, in.RoleSlug, res.ID)
		}
		a = st.assignGroup(id, in.RoleSlug, res, now)
		return nil
	})
	return a, rev, err
}

func (s *memStore) GetGroupAssignment(_ context.Context, id, aid string) (workos.GroupAssignment, error) {
	st := s.read()
	if _, err := st.group("", id); err != nil {
		return workos.GroupAssignment{}, err
	}
	a, ok := st.gassigns[aid]
	if !ok || a.GroupID != id {
		return a, workos.NotFound("group role assignment", aid)
	}
	return a, nil
}

func (s *memStore) ListGroupAssignments(_ context.Context, id string, o workos.ListOptions) ([]workos.GroupAssignment, error) {
	st := s.read()
	if _, err := st.group("", id); err != nil {
		return nil, err
	}
	return page(st.groupAssignments(id), func(a workos.GroupAssignment) string { return a.ID }, o), nil
}

func (s *memStore) ReplaceGroupAssignments(ctx context.Context, id string, in []workos.GroupAssignmentInput) (out []workos.GroupAssignment, _ int64, _ error) {
	rev, err := s.write(ctx, func(st *memState, now time.Time) error {
		g, err := st.group("", id)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		var add []workos.GroupAssignmentInput
		var targets []workos.Resource
		for _, e := range in {
			res, err := st.groupTarget(g.OrganizationID, e)
			if err != nil {
				return err
			}
			if k := e.RoleSlug + " " + res.ID; !want[k] {
				want[k] = true
				add, targets = append(add, e), append(targets, res)
			}
		}
		for k, a := range st.gassigns {
			if a.GroupID == id && !want[a.RoleSlug+" "+a.ResourceID] {
				delete(st.gassigns, k)
			}
		}
		for i, e := range add {
			if _, have := st.groupAssignment(id, e.RoleSlug, targets[i].ID); !have {
				st.assignGroup(id, e.RoleSlug, targets[i], now)
			}
		}
		out = st.groupAssignments(id)
		return nil
	})
	return out, rev, err
}

func (s *memStore) DeleteGroupAssignment(ctx context.Context, id, aid string) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		if _, err := st.group("", id); err != nil {
			return err
		}
		if a, ok := st.gassigns[aid]; !ok || a.GroupID != id {
			return workos.NotFound("group role assignment", aid)
		}
		delete(st.gassigns, aid)
		return nil
	})
}

func (s *memStore) DeleteGroupAssignmentByRole(ctx context.Context, id string, in workos.GroupAssignmentInput) (int64, error) {
	return s.write(ctx, func(st *memState, _ time.Time) error {
		g, err := st.group("", id)
		if err != nil {
			return err
		}
		res, err := st.groupTarget(g.OrganizationID, in)
		if err != nil {
			return err
		}
		a, ok := st.groupAssignment(id, in.RoleSlug, res.ID)
		if !ok {
			return workos.NotFound("group role assignment", in.RoleSlug+" on "+res.ID)
		}
		delete(st.gassigns, a.ID)
		return nil
	})
}

var _ workos.Store = (*memStore)(nil)
