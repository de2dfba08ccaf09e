// Package gen generates synthetic relationship data: deterministic, valid
// model.Datasets of any size, for benchmarks, load tests and the correctness
// oracles that compare the policies with a brute-force answer.
//
// The schema is fixed by the depth: a chain of resource types (organization →
// workspace → project → folder → document, then level5, level6, …), where each
// type allows the previous one as parent and the deepest type also allows the
// one two levels up, so the type graph is a DAG rather than a chain. Every
// type has the permissions <type>:view, <type>:edit and <type>:delete.
//
// Environment roles, for every type T below the organization:
//
//	T-admin         every permission of T and of its descendant types
//	T-editor        view and edit of T and of its descendant types
//	T-viewer        view of T and of its descendant types
//	T-child-editor  edit of the descendant types only (types with children)
//
// and, on the organization type, org-admin (every permission) and org-member
// (organization:view and view of the first level). Every other organization
// (the first included) also has organization roles: org-billing-admin and
// org-reader (organization:view and view of the deepest type) on the
// organization type, <first level>-auditor (view and edit of the first level
// only) and <type>-custom, a random set of permissions on a random type.
// Organization roles never reuse an environment role's slug (Validate forbids
// it), but one custom slug names a different role in each organization.
//
// Resource trees grow by preferential attachment, so fan-out is heavy-tailed
// (a few resources with many children, most with few); organization sizes
// follow a Zipf-like law (Spec.Skew).
package gen

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trellis-authz/trellis/internal/model"
)

// Spec describes a dataset to generate. Zero fields get the defaults their
// comments name.
type Spec struct {
	// Seed selects the dataset: Generate returns equal datasets for equal
	// Specs.
	Seed int64
	// Organizations is the number of organizations (at least 1).
	Organizations int
	// Resources is the approximate total number of resources, organization
	// roots excluded. It is ignored when Depth is 1.
	Resources int
	// Assignments is the approximate number of role assignments (duplicates
	// are dropped, and organizations without resources get none).
	Assignments int
	// MembershipsPerOrg is the average number of memberships per
	// organization (default 10). Every organization gets at least one.
	MembershipsPerOrg int
	// Depth is the number of levels of a resource tree, the organization
	// root included (default model.DefaultMaxDepth, at most 255). A Depth
	// above model.DefaultMaxDepth raises the dataset's MaxDepth to match.
	Depth int
	// Skew is the exponent s of the Zipf-like law of organization sizes
	// (resources, memberships and assignments): the k-th organization's
	// share is proportional to 1/k^s. Use s > 1 for a few large
	// organizations and many small; 0 gives every organization the same
	// share.
	Skew float64
	// InactiveRatio is the fraction of memberships that are not active:
	// three in four of them inactive, the rest pending.
	InactiveRatio float64
	// GroupsPerOrg is the number of groups of each organization (0: no
	// groups, and the dataset is the one the other fields give without
	// them). Each membership is a member of 0 to 3 of its organization's
	// groups, uniformly.
	GroupsPerOrg int
	// GroupAssignmentRatio is the fraction of assignments made to a group
	// of the organization instead of a membership; only with GroupsPerOrg.
	GroupAssignmentRatio float64
	// Wide adds the wide organization (wide.go) to a dataset of depth 5:
	// WideResources resources in one organization, and memberships that
	// see all of them, a tenth, and 500.
	Wide bool
}

// tiers are the named dataset sizes of Spec.Tier.
var tiers = map[string]Spec{
	"S": {Organizations: 100, Resources: 100_000, Assignments: 100_000, MembershipsPerOrg: 20, Depth: 4, Skew: 1.1, InactiveRatio: 0.05},
	"M": {Organizations: 10_000, Resources: 1_000_000, Assignments: 1_000_000, MembershipsPerOrg: 10, Depth: 5, Skew: 1.1, InactiveRatio: 0.05},
	"L": {Organizations: 100_000, Resources: 10_000_000, Assignments: 10_000_000, MembershipsPerOrg: 10, Depth: 6, Skew: 1.1, InactiveRatio: 0.05},
}

// withGroups are the fields a tier name's "+groups" suffix sets.
const (
	tierGroupsPerOrg         = 10
	tierGroupAssignmentRatio = 0.2
)

// Tier returns the named size tier with s's Seed, and whether the tier
// exists. The tiers are
//
//	"S"  100 organizations, ~100k resources, ~100k assignments, depth 4
//	"M"  10,000 organizations, ~1M resources, ~1M assignments, depth 5
//	"L"  100,000 organizations, ~10M resources, ~10M assignments, depth 6
//	     (its MaxDepth is 6; generating it takes several GiB)
//
// all with Skew 1.1 and 5% of memberships not active. A name with the
// suffix "+groups" ("M+groups") is the tier with groups: 10 per
// organization, each membership in 0–3 of them, 20 % of the assignments
// to groups; the tier without the suffix stays as it was, so that its
// figures stay comparable. The suffix "+wide" ("M+wide", depth 5 only;
// after "+groups" when both) adds the wide organization (Spec.Wide).
func (s Spec) Tier(name string) (Spec, bool) {
	name, wide := strings.CutSuffix(name, "+wide")
	base, groups := strings.CutSuffix(name, "+groups")
	t, ok := tiers[base]
	if !ok {
		return Spec{}, false
	}
	t.Seed = s.Seed
	if groups {
		t.GroupsPerOrg, t.GroupAssignmentRatio = tierGroupsPerOrg, tierGroupAssignmentRatio
	}
	if wide {
		if t.Depth != 5 {
			return Spec{}, false
		}
		t.Wide = true
	}
	return t, true
}

// shared holds the datasets Shared generated, by tier name.
var shared sync.Map // string → func() *model.Dataset

// Shared returns the dataset of the named tier with seed 1, generated once
// per process, for benchmarks that share it; it panics for an unknown tier.
// Callers share the value and must not change it.
func Shared(tier string) *model.Dataset {
	spec, ok := Spec{Seed: 1}.Tier(tier)
	if !ok {
		panic("gen: no tier " + strconv.Quote(tier))
	}
	once, _ := shared.LoadOrStore(tier, sync.OnceValue(func() *model.Dataset { return Generate(spec) }))
	return once.(func() *model.Dataset)()
}

// withDefaults returns s with its zero fields defaulted and its values
// clamped to what Generate can honour.
func (s Spec) withDefaults() Spec {
	if s.Organizations < 1 {
		s.Organizations = 1
	}
	if s.MembershipsPerOrg <= 0 {
		s.MembershipsPerOrg = 10
	}
	if s.Depth <= 0 {
		s.Depth = model.DefaultMaxDepth
	}
	s.Depth = min(s.Depth, math.MaxUint8) // type indices are stored as bytes
	if s.Depth < 2 || s.Resources < 0 {
		s.Resources = 0
	}
	if s.Assignments < 0 {
		s.Assignments = 0
	}
	if s.Skew < 0 {
		s.Skew = 0
	}
	s.InactiveRatio = min(max(s.InactiveRatio, 0), 1)
	s.GroupsPerOrg = max(s.GroupsPerOrg, 0)
	s.GroupAssignmentRatio = min(max(s.GroupAssignmentRatio, 0), 1)
	if s.GroupsPerOrg == 0 {
		s.GroupAssignmentRatio = 0
	}
	return s
}

// Names of the resource types by level; deeper levels are named level<n>.
var typeNames = []string{model.OrganizationType, "workspace", "project", "folder", "document"}

// Permission actions, in the order of the permission slugs of a type.
const (
	actView = iota
	actEdit
	actDelete
	numActions
)

var actions = [numActions]string{"view", "edit", "delete"}

// Generate returns the dataset s describes. It runs in time and memory
// linear in the size of the dataset. The caller owns the returned value.
func Generate(spec Spec) *model.Dataset {
	spec = spec.withDefaults()
	g := &generator{
		spec: spec,
		rng:  rand.New(rand.NewPCG(uint64(spec.Seed), 0x7472656c6c6973)), // "trellis"
		ds:   &model.Dataset{Revision: 1},
	}
	if spec.Depth > model.DefaultMaxDepth {
		g.ds.MaxDepth = spec.Depth
	}
	g.schema()
	g.organizations()
	g.resources()
	g.memberships()
	g.groups()
	g.assignments()
	if spec.Wide && spec.Depth == 5 {
		g.wide()
	}
	return g.ds
}

type generator struct {
	spec Spec
	rng  *rand.Rand
	ds   *model.Dataset

	types []string // slug by type index; 0 is the organization type
	last  int      // index of the deepest (leaf) type

	weights []float64 // Zipf-like share of each organization

	// Per organization: the range of its resources in ds.Resources and of
	// its memberships in ds.Memberships, and the roles that may be assigned
	// on each type (nil: the environment's choices).
	resStart, memStart []int
	choices            [][][]string
	envChoices         [][]string // per type: assignable environment role slugs
	orgTypeRoles       [][]string // per organization: its own organization-type role slugs
	resType            []uint8    // type index of each resource in ds.Resources
	// groupStart is the range of each organization's groups in ds.Groups.
	groupStart []int
}

// groups creates each organization's groups and their members. Without
// groups it draws nothing from the random source, so that the rest of the
// dataset is the same as before groups existed.
func (g *generator) groups() {
	ds := g.ds
	n := g.spec.GroupsPerOrg
	if n == 0 {
		return
	}
	g.groupStart = make([]int, len(ds.Organizations)+1)
	ds.Groups = make([]model.Group, 0, n*len(ds.Organizations))
	for k, o := range ds.Organizations {
		base := len(ds.Groups)
		g.groupStart[k] = base
		for i := range n {
			num := strconv.Itoa(base + i + 1)
			ds.Groups = append(ds.Groups, model.Group{ID: "group_" + num, OrganizationID: o.ID, Name: "Group " + num})
		}
		for m := g.memStart[k]; m < g.memStart[k+1]; m++ {
			for _, i := range g.rng.Perm(n)[:min(g.rng.IntN(4), n)] {
				ds.GroupMembers = append(ds.GroupMembers, model.GroupMember{GroupID: ds.Groups[base+i].ID, MembershipID: ds.Memberships[m].ID})
			}
		}
	}
	g.groupStart[len(ds.Organizations)] = len(ds.Groups)
}

// schema creates the resource types, permissions and environment roles.
func (g *generator) schema() {
	ds := g.ds
	g.last = g.spec.Depth - 1
	g.types = make([]string, g.spec.Depth)
	for t := range g.types {
		if t < len(typeNames) {
			g.types[t] = typeNames[t]
		} else {
			g.types[t] = "level" + strconv.Itoa(t)
		}
	}
	for t := 1; t <= g.last; t++ {
		parents := []string{g.types[t-1]}
		if t == g.last && t >= 2 {
			parents = append(parents, g.types[t-2])
		}
		ds.ResourceTypes = append(ds.ResourceTypes, model.ResourceType{
			Slug:        g.types[t],
			Name:        title(g.types[t]),
			ParentTypes: parents,
		})
	}
	for _, typ := range g.types {
		for _, a := range actions {
			ds.Permissions = append(ds.Permissions, model.Permission{
				Slug:         g.perm(typ, a),
				Name:         title(a) + " " + typ,
				ResourceType: typ,
			})
		}
	}

	ds.Roles = append(ds.Roles,
		model.Role{Slug: "org-admin", Name: "Organization admin", ResourceType: model.OrganizationType,
			Permissions: g.perms(0, g.last, actView, actEdit, actDelete)},
		model.Role{Slug: "org-member", Name: "Organization member", ResourceType: model.OrganizationType,
			Permissions: g.orgMemberPerms(1)},
	)
	g.envChoices = make([][]string, len(g.types))
	for t := 1; t <= g.last; t++ {
		typ := g.types[t]
		roles := []model.Role{
			{Slug: typ + "-admin", Name: title(typ) + " admin", Permissions: g.perms(t, g.last, actView, actEdit, actDelete)},
			{Slug: typ + "-editor", Name: title(typ) + " editor", Permissions: g.perms(t, g.last, actView, actEdit)},
			{Slug: typ + "-viewer", Name: title(typ) + " viewer", Permissions: g.perms(t, g.last, actView)},
		}
		if t < g.last {
			roles = append(roles, model.Role{Slug: typ + "-child-editor", Name: title(typ) + " child editor",
				Permissions: g.perms(t+1, g.last, actEdit)})
		}
		for _, r := range roles {
			r.ResourceType = typ
			ds.Roles = append(ds.Roles, r)
			g.envChoices[t] = append(g.envChoices[t], r.Slug)
		}
	}
}

// orgMemberPerms returns the permissions of an org-member role that also
// grants view on type t (t clamped to the deepest type).
func (g *generator) orgMemberPerms(t int) []string {
	ps := []string{g.perm(model.OrganizationType, actions[actView])}
	if t = min(t, g.last); t > 0 {
		ps = append(ps, g.perm(g.types[t], actions[actView]))
	}
	return ps
}

func (g *generator) perm(typ, action string) string { return typ + ":" + action }

// perms returns the given actions' permissions of types from..to.
func (g *generator) perms(from, to int, acts ...int) []string {
	var ps []string
	for t := from; t <= to; t++ {
		for _, a := range acts {
			ps = append(ps, g.perm(g.types[t], actions[a]))
		}
	}
	return ps
}

// organizations creates the organizations, their organization roles and the
// Zipf-like weights of their sizes.
func (g *generator) organizations() {
	n := g.spec.Organizations
	ds := g.ds
	ds.Organizations = make([]model.Organization, n)
	g.weights = make([]float64, n)
	g.choices = make([][][]string, n)
	g.orgTypeRoles = make([][]string, n)
	for k := range n {
		id := "org_" + strconv.Itoa(k+1)
		ds.Organizations[k] = model.Organization{ID: id, Name: "Organization " + strconv.Itoa(k+1)}
		g.weights[k] = 1
		if g.spec.Skew > 0 {
			g.weights[k] = math.Pow(float64(k+1), -g.spec.Skew)
		}
		if k%2 == 0 {
			g.customRoles(k, id)
		}
	}
}

// customRoles gives organization k its organization roles.
func (g *generator) customRoles(k int, org string) {
	ds := g.ds
	ds.Roles = append(ds.Roles,
		model.Role{Slug: "org-billing-admin", Name: "Billing admin", ResourceType: model.OrganizationType, OrganizationID: org,
			Permissions: g.perms(0, 0, actView, actEdit)},
		model.Role{Slug: "org-reader", Name: "Reader", ResourceType: model.OrganizationType, OrganizationID: org,
			Permissions: g.orgMemberPerms(g.last)},
	)
	g.orgTypeRoles[k] = []string{"org-billing-admin", "org-reader"}
	if g.last < 1 {
		return
	}
	first := g.types[1]
	auditor := first + "-auditor"
	ds.Roles = append(ds.Roles, model.Role{Slug: auditor, Name: title(first) + " auditor", ResourceType: first,
		OrganizationID: org, Permissions: g.perms(1, 1, actView, actEdit)})
	t := 1 + g.rng.IntN(g.last)
	all := g.perms(t, g.last, actView, actEdit, actDelete)
	var ps []string
	for _, p := range all {
		if g.rng.IntN(2) == 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		ps = all[:1]
	}
	custom := g.types[t] + "-custom"
	ds.Roles = append(ds.Roles, model.Role{Slug: custom, Name: title(g.types[t]) + " custom", ResourceType: g.types[t],
		OrganizationID: org, Permissions: ps})

	g.choices[k] = make([][]string, len(g.types))
	for typ := 1; typ <= g.last; typ++ {
		g.choices[k][typ] = g.envChoices[typ]
	}
	g.choices[k][1] = append(slices.Clone(g.envChoices[1]), auditor)
	g.choices[k][t] = append(slices.Clone(g.choices[k][t]), custom)
}

// shares splits total over the organizations in proportion to weights, with
// cumulative rounding so the shares add up to total exactly.
func shares(total int, weights []float64) []int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	out := make([]int, len(weights))
	if sum == 0 {
		return out
	}
	var cum float64
	prev := 0
	for k, w := range weights {
		cum += w
		next := int(math.Round(cum / sum * float64(total)))
		if k == len(weights)-1 {
			next = total
		}
		out[k] = next - prev
		prev = next
	}
	return out
}

// resources grows each organization's tree by preferential attachment: a
// new resource picks its parent with probability proportional to the
// parent's child count plus one, among the resources whose type has child
// types.
func (g *generator) resources() {
	ds := g.ds
	counts := shares(g.spec.Resources, g.weights)
	ds.Resources = make([]model.Resource, 0, g.spec.Resources)
	g.resType = make([]uint8, 0, g.spec.Resources)
	g.resStart = make([]int, len(counts)+1)
	var slots []int32 // local indices; 0 is the root, i is resource base+i-1
	typeOf := []uint8{0}
	for k, n := range counts {
		org := ds.Organizations[k].ID
		base := len(ds.Resources)
		g.resStart[k] = base
		slots = append(slots[:0], 0)
		typeOf = typeOf[:1]
		for i := 1; i <= n; i++ {
			p := slots[g.rng.IntN(len(slots))]
			pt := int(typeOf[p])
			ct := pt + 1
			// The deepest type may also hang from the type two levels up.
			if pt+2 == g.last && g.rng.IntN(5) == 0 {
				ct = g.last
			}
			typeOf = append(typeOf, uint8(ct))
			slots = append(slots, p)
			if ct < g.last {
				slots = append(slots, int32(i))
			}
			num := strconv.Itoa(base + i)
			r := model.Resource{
				ID:             "authz_resource_" + num,
				OrganizationID: org,
				Type:           g.types[ct],
				ExternalID:     g.types[ct] + "-" + num,
			}
			r.Name = r.ExternalID
			if p > 0 {
				r.ParentID = ds.Resources[base+int(p)-1].ID
			}
			ds.Resources = append(ds.Resources, r)
			g.resType = append(g.resType, uint8(ct))
		}
	}
	g.resStart[len(counts)] = len(ds.Resources)
}

// memberships creates each organization's memberships and their
// organization roles.
func (g *generator) memberships() {
	ds := g.ds
	counts := shares(g.spec.Organizations*g.spec.MembershipsPerOrg, g.weights)
	g.memStart = make([]int, len(counts)+1)
	for k, n := range counts {
		g.memStart[k] = len(ds.Memberships)
		org := ds.Organizations[k].ID
		for range max(n, 1) {
			num := strconv.Itoa(len(ds.Memberships) + 1)
			m := model.Membership{
				ID:             "om_" + num,
				UserID:         "user_" + num,
				OrganizationID: org,
				Status:         model.StatusActive,
			}
			if g.rng.Float64() < g.spec.InactiveRatio {
				m.Status = model.StatusInactive
				if g.rng.IntN(4) == 0 {
					m.Status = model.StatusPending
				}
			}
			switch x := g.rng.IntN(20); {
			case x < 2: // no organization role
			case x < 5:
				m.RoleSlugs = []string{"org-admin"}
			case x < 18:
				m.RoleSlugs = []string{"org-member"}
			default:
				second := "org-admin"
				if own := g.orgTypeRoles[k]; len(own) > 0 {
					second = own[g.rng.IntN(len(own))]
				}
				m.RoleSlugs = []string{"org-member", second}
			}
			ds.Memberships = append(ds.Memberships, m)
		}
	}
	g.memStart[len(counts)] = len(ds.Memberships)
}

// assignKey identifies an assignment within one organization.
type assignKey struct {
	res, mem uint32
	role     string
}

// assignments assigns random roles to random memberships on random resources
// of each organization, in proportion to its resources.
func (g *generator) assignments() {
	ds := g.ds
	if g.spec.Assignments == 0 || len(ds.Resources) == 0 {
		return
	}
	sizes := make([]float64, len(ds.Organizations))
	for k := range sizes {
		sizes[k] = float64(g.resStart[k+1] - g.resStart[k])
	}
	counts := shares(g.spec.Assignments, sizes)
	ds.Assignments = make([]model.Assignment, 0, g.spec.Assignments)
	for k, n := range counts {
		rb, re := g.resStart[k], g.resStart[k+1]
		mb, me := g.memStart[k], g.memStart[k+1]
		if n == 0 || rb == re {
			continue
		}
		seen := make(map[assignKey]struct{}, n)
		for range n {
			// Retry a few times on a duplicate, then give up on this one.
			for range 3 {
				r := rb + g.rng.IntN(re-rb)
				m := mb + g.rng.IntN(me-mb)
				group := -1 // an index into ds.Groups
				if g.spec.GroupAssignmentRatio > 0 && g.rng.Float64() < g.spec.GroupAssignmentRatio {
					gb := g.groupStart[k]
					group = gb + g.rng.IntN(g.groupStart[k+1]-gb)
					m = me + group - gb // a key of its own in seen
				}
				t := g.resType[r]
				roles := g.envChoices[t]
				if g.choices[k] != nil {
					roles = g.choices[k][t]
				}
				role := roles[g.rng.IntN(len(roles))]
				key := assignKey{uint32(r - rb), uint32(m - mb), role}
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
				a := model.Assignment{
					ID:         "role_assignment_" + strconv.Itoa(len(ds.Assignments)+1),
					RoleSlug:   role,
					ResourceID: ds.Resources[r].ID,
				}
				if group >= 0 {
					a.GroupID = ds.Groups[group].ID
				} else {
					a.MembershipID = ds.Memberships[m].ID
				}
				ds.Assignments = append(ds.Assignments, a)
				break
			}
		}
	}
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
