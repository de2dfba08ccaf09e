// Package authz is the service layer every decision route shares (the native
// /v1 API, the OPA Data API and the WorkOS-compatible routes). It verifies
// tokens, validates and shapes requests into policy input, waits for the
// requested consistency and reads the policy's answer back. It never decides:
// allowed is exactly the policy's "allowed" value.
package authz

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/token"
)

// Evaluator evaluates the policies (implemented by *engine.Engine).
type Evaluator interface {
	Decide(ctx context.Context, ep engine.Entrypoint, input ast.Value) (engine.Result, error)
	// Session evaluates several decisions on one state of the data: a
	// list's pages (engine.Engine.Session).
	Session(ctx context.Context, fn func(decide func(engine.Entrypoint, ast.Value) (engine.Result, error)) error) error
	Data(ctx context.Context, path string, input ast.Value) (engine.Result, error)
	WaitFor(ctx context.Context, rev int64, timeout time.Duration) error
	Revision() int64
	// Loaded reports whether data has been loaded: before, every request
	// fails with ErrNotReady.
	Loaded() bool
}

// Verifier verifies session tokens (implemented by *token.Verifier). Errors
// are *token.Error.
type Verifier interface {
	Verify(ctx context.Context, raw string) (token.Claims, error)
}

// Config configures a Service. Zero fields get defaults.
type Config struct {
	Engine Evaluator // required
	// Tokens verifies tokens; nil means the token layer is off and a request
	// carrying a token is rejected.
	Tokens Verifier
	// Head returns the data source's current head revision, for
	// fully_consistent requests; nil means the loaded revision is the head.
	// Concurrent requests share its calls (one at a time, each answering
	// every request that arrived before it started).
	Head func(ctx context.Context) (int64, error)
	// FullyConsistent makes every decision that asks for no consistency
	// fully consistent: it reflects every write committed (to the database
	// Head reads) before the request arrived, for clients that cannot pass
	// revisions (the WorkOS SDK). Requests with at_least_revision keep it.
	FullyConsistent bool
	// MaxWait bounds how long a request waits for a revision (default 5s).
	MaxWait time.Duration
	// MaxBatch bounds the checks in one batch (default 1000).
	MaxBatch int
	// DecisionCacheSize bounds the single-check answers kept; 0 keeps
	// none. A cache needs an Engine that is Cacheable.
	DecisionCacheSize int
}

// Cacheable is implemented by evaluators whose answers the decision cache
// can keep (*engine.Engine): Generations numbers the states of their data
// by scope, and Owners looks up the organizations of a membership and of
// resources by id in the current data ("" for an id it does not hold).
type Cacheable interface {
	Generations() *engine.Generations
	Owners(ctx context.Context, om string, rids ...string) (memberOrg string, resourceOrgs []string, err error)
}

// Service answers decision requests. It is safe for concurrent use.
//
// Read-your-writes: every decision (Check, CheckBatch, EffectivePermissions,
// ListResources, ListMemberships, Data) waits, bounded by MaxWait, until
// the engine has applied every revision passed to Acknowledged before the
// request arrived, whatever route made the write; a StaleError otherwise.
// Acknowledged itself first waits for the engine to apply the write, so
// decisions wait only for a write answered past MaxWait.
//
// Every method fails with ErrNotReady until the Engine has loaded data (an
// empty store would deny everything, indistinguishably from real denies),
// and with *OrganizationUnavailableError when the policy answers
// organization_unavailable, about a quarantined organization.
type Service struct {
	cfg    Config
	cache  *decisionCache
	owners Cacheable           // with a cache
	gens   *engine.Generations // with a cache
	// acked is the highest revision Acknowledged was told of: the least
	// revision every decision waits for.
	acked atomic.Int64
	head  *headBatcher // with a Head
	// extended and contextFree are the engine's Extended and ContextFree,
	// if it has them (see caching).
	extended, contextFree func() bool
}

// Acknowledged records that a write this instance is about to acknowledge
// (answer as done) committed at revision rev. Every decision requested
// after Acknowledged returns reflects that write. It first waits, bounded
// by MaxWait (and ctx, the write's), for the engine to apply rev: so the
// write, not every decision after it, waits out the time the change takes
// to come back from the database, and decisions wait only while a write
// is past that bound. Safe for concurrent use; a rev at or below the
// current mark changes nothing.
func (s *Service) Acknowledged(ctx context.Context, rev int64) {
	_ = s.cfg.Engine.WaitFor(ctx, rev, s.cfg.MaxWait) // past it, or without it, decisions wait (await)
	for {
		cur := s.acked.Load()
		if rev <= cur || s.acked.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// AcknowledgedRevision returns the highest revision passed to Acknowledged
// (0 before the first).
func (s *Service) AcknowledgedRevision() int64 { return s.acked.Load() }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil {
		return nil, errors.New("authz: an engine is required")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	s := &Service{cfg: cfg, cache: newDecisionCache(cfg.DecisionCacheSize), extended: func() bool { return false }, contextFree: func() bool { return true }}
	if x, ok := cfg.Engine.(interface{ Extended() bool }); ok {
		s.extended = x.Extended
	}
	if x, ok := cfg.Engine.(interface{ ContextFree() bool }); ok {
		s.contextFree = x.ContextFree
	}
	if cfg.Head != nil {
		s.head = &headBatcher{read: cfg.Head, timeout: cfg.MaxWait}
	}
	if s.cache != nil {
		c, ok := cfg.Engine.(Cacheable)
		if !ok {
			return nil, fmt.Errorf("authz: a decision cache needs an engine that numbers its data's generations; %T does not", cfg.Engine)
		}
		s.owners, s.gens = c, c.Generations()
	}
	return s, nil
}

// MaxBatch returns the largest batch the service accepts.
func (s *Service) MaxBatch() int { return s.cfg.MaxBatch }

// Subject says who is asking: a session token, or a membership named by the
// caller (which the HTTP layer only accepts with an API key).
type Subject struct {
	Token        string `json:"token,omitempty"`
	MembershipID string `json:"organization_membership_id,omitempty"`
	// Context is the request's context, the text of a JSON object (IP,
	// time, anything the application passes) the extensions read as
	// input.context; "" for none.
	Context string `json:"-"`
}

// ResourceRef names a resource by id or by type and external id. The
// organization may be left out when the subject's token names it.
type ResourceRef struct {
	ID             string `json:"id,omitempty"`
	Type           string `json:"type,omitempty"`
	ExternalID     string `json:"external_id,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
}

// Consistency asks for a minimum data revision.
type Consistency struct {
	AtLeastRevision int64 `json:"at_least_revision,omitempty"`
	FullyConsistent bool  `json:"fully_consistent,omitempty"`
}

// Check is one (permission, resource) question.
type Check struct {
	Permission string      `json:"permission"`
	Resource   ResourceRef `json:"resource"`
	// Explain asks an allow by assignment for the path from the role's
	// resource down to the one checked (reason.path). Single checks only;
	// such answers bypass the decision cache.
	Explain bool `json:"explain,omitempty"`
}

// Decision is the policy's answer to one check.
type Decision struct {
	Allowed   bool           `json:"allowed"`
	DecidedBy string         `json:"decided_by"`
	Reason    map[string]any `json:"reason"`
}

// Answer carries what every response has besides its payload.
type Answer struct {
	Revision   int64  `json:"revision"`
	DecisionID string `json:"decision_id"`
}

// ListRequest asks for the resources the subject has Permission on.
type ListRequest struct {
	Permission     string       `json:"permission"`
	ResourceType   string       `json:"resource_type,omitempty"`
	Parent         *ResourceRef `json:"parent,omitempty"`
	OrganizationID string       `json:"organization_id,omitempty"`
	// After is a position in the list's order (a Positions entry of an
	// earlier page): the page starts after it. "": at the start.
	After string `json:"after,omitempty"`
	// Descending lists in reverse tree order.
	Descending bool `json:"descending,omitempty"`
	Limit      int  `json:"limit,omitempty"`
}

// MembersRequest asks for the memberships with Permission on Resource.
type MembersRequest struct {
	Permission string      `json:"permission"`
	Resource   ResourceRef `json:"resource"`
	Direct     bool        `json:"direct,omitempty"`
	// After is an id: the page starts after it. "": at the start.
	After string `json:"after,omitempty"`
	// Descending lists in reverse id order.
	Descending bool `json:"descending,omitempty"`
	Limit      int  `json:"limit,omitempty"`
	// Context is as Subject.Context.
	Context string `json:"-"`
}

// Page is one page of ids. HasMore says a next page exists: ask again with
// After set to the last id (of list-resources: to the last position).
type Page struct {
	IDs []string `json:"ids"`
	// Positions are the IDs' positions in the list's order, what a cursor
	// holds: for list-resources, in tree order (the ids from the
	// organization root down, joined by "/"); for list-memberships, the
	// ids.
	Positions []string       `json:"-"`
	HasMore   bool           `json:"has_more"`
	Reason    map[string]any `json:"reason,omitempty"`
}

// Permissions are the effective permissions of a subject on a resource.
type Permissions struct {
	Resource    map[string]any `json:"resource,omitempty"`
	Permissions []string       `json:"permissions"`
	Reason      map[string]any `json:"reason,omitempty"`
}

// MaxPageSize bounds list pages; DefaultPageSize is a page's size when
// the request gives none.
const (
	MaxPageSize     = 1000
	DefaultPageSize = 100
)

// Check answers one check, from the decision cache when it holds an answer
// that is still valid (see decisionCache).
func (s *Service) Check(ctx context.Context, sub Subject, c Check, cons Consistency) (Decision, Answer, error) {
	if err := s.ready(); err != nil {
		return Decision{}, Answer{}, err
	}
	v, err := s.verify(ctx, sub)
	if err != nil {
		return Decision{}, Answer{}, err
	}
	if err := validCheck(c); err != nil {
		return Decision{}, Answer{}, err
	}
	if err := s.await(ctx, cons); err != nil {
		return Decision{}, Answer{}, err
	}
	var buf [256]byte
	var key []byte
	var rev int64
	if s.caching() && !c.Explain {
		key, rev = appendCheckKey(buf[:0], v, c, s.extended()), s.cfg.Engine.Revision()
	}
	if e, ok := s.cache.get(s.gens, rev, key); ok {
		return e.d, Answer{Revision: rev, DecisionID: NewDecisionID()}, nil
	}
	var st []stamped
	if key != nil {
		if st, err = s.stamp(ctx, v, []Check{c}, []int{0}); err != nil {
			return Decision{}, Answer{}, err
		}
	}
	in := v.input()
	in.Insert(ast.InternedTerm("permission"), ast.StringTerm(c.Permission))
	in.Insert(ast.InternedTerm("resource"), c.Resource.term())
	if c.Explain {
		in.Insert(ast.InternedTerm("explain"), ast.BooleanTerm(true))
	}
	var d Decision
	ans, err := s.evaluate(ctx, engine.Check, in, func(v any) error { return decodeDecision(v, &d) })
	if d, ok := s.extensionFailed(err); ok {
		return d, Answer{Revision: s.cfg.Engine.Revision(), DecisionID: NewDecisionID()}, nil
	}
	if err != nil {
		return Decision{}, Answer{}, err
	}
	if key != nil && st[0].ok {
		s.cache.put(s.gens, key, cached{d: d, rev: ans.Revision, stamp: st[0].stamp})
	}
	return d, ans, nil
}

// CheckBatch answers checks with one token verification, in order. Checks
// the decision cache holds valid answers for are not evaluated again, as
// long as every answer holds at one revision, the one reported.
func (s *Service) CheckBatch(ctx context.Context, sub Subject, checks []Check, cons Consistency) ([]Decision, Answer, error) {
	if err := s.ready(); err != nil {
		return nil, Answer{}, err
	}
	if len(checks) == 0 {
		return nil, Answer{}, invalid("checks", "give at least one check")
	}
	if len(checks) > s.cfg.MaxBatch {
		return nil, Answer{}, invalid("checks", fmt.Sprintf("at most %d checks per batch, got %d", s.cfg.MaxBatch, len(checks)))
	}
	v, err := s.verify(ctx, sub)
	if err != nil {
		return nil, Answer{}, err
	}
	for i, c := range checks {
		if c.Explain {
			return nil, Answer{}, invalid(fmt.Sprintf("checks[%d].explain", i), "explain is for single checks (POST /v1/check)")
		}
		if err := validCheck(c); err != nil {
			var bad *InvalidError
			if errors.As(err, &bad) {
				bad.Field = fmt.Sprintf("checks[%d].%s", i, bad.Field)
			}
			return nil, Answer{}, err
		}
	}
	if err := s.await(ctx, cons); err != nil {
		return nil, Answer{}, err
	}
	ds := make([]Decision, len(checks))
	if !s.caching() {
		return s.evaluateBatch(ctx, v, checks, indexes(len(checks)), ds)
	}
	rev, extended := s.cfg.Engine.Revision(), s.extended()
	keys := make([][]byte, len(checks))
	stamps := make([]engine.Stamp, len(checks))
	var missing []int
	for i, c := range checks {
		keys[i] = appendCheckKey(nil, v, c, extended)
		e, ok := s.cache.get(s.gens, rev, keys[i])
		if !ok {
			missing = append(missing, i)
		}
		ds[i], stamps[i] = e.d, e.stamp
	}
	if len(missing) == 0 {
		return ds, Answer{Revision: rev, DecisionID: NewDecisionID()}, nil
	}
	if keys[0] == nil { // a failed token: nothing is cached
		return s.evaluateBatch(ctx, v, checks, missing, ds)
	}
	st, err := s.stamp(ctx, v, checks, missing)
	if err != nil {
		return nil, Answer{}, err
	}
	_, ans, err := s.evaluateBatch(ctx, v, checks, missing, ds)
	if err != nil {
		return nil, Answer{}, err
	}
	if len(missing) < len(checks) {
		// The cached and the evaluated answers hold at one revision if
		// they all hold at the published one (see decisionCache);
		// otherwise evaluate them all on one state of the data.
		rev := s.cfg.Engine.Revision()
		one := ans.Revision <= rev
		for j, i := range missing {
			one = one && st[j].ok
			stamps[i] = st[j].stamp
		}
		for i := range stamps {
			one = one && s.gens.Valid(&stamps[i])
		}
		if one {
			ans.Revision = rev
		} else if _, ans, err = s.evaluateBatch(ctx, v, checks, indexes(len(checks)), ds); err != nil {
			return nil, Answer{}, err
		}
	}
	for j, i := range missing {
		if st[j].ok {
			s.cache.put(s.gens, keys[i], cached{d: ds[i], rev: ans.Revision, stamp: st[j].stamp})
		}
	}
	return ds, ans, nil
}

// indexes returns 0, 1, …, n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// evaluateBatch evaluates checks[i] for each i in which, in one batch
// query, into ds[i].
func (s *Service) evaluateBatch(ctx context.Context, v subject, checks []Check, which []int, ds []Decision) ([]Decision, Answer, error) {
	terms := make([]*ast.Term, len(which))
	for j, i := range which {
		terms[j] = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("permission"), ast.StringTerm(checks[i].Permission)),
			ast.Item(ast.InternedTerm("resource"), checks[i].Resource.term()),
		)
	}
	in := v.input()
	in.Insert(ast.InternedTerm("checks"), ast.ArrayTerm(terms...))
	ans, err := s.evaluate(ctx, engine.Batch, in, func(val any) error {
		arr, ok := val.([]any)
		if !ok || len(arr) != len(which) {
			return fmt.Errorf("authz: batch result has %d decisions for %d checks", len(arr), len(which))
		}
		for j, i := range which {
			if err := decodeDecision(arr[j], &ds[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if d, ok := s.extensionFailed(err); ok {
		for _, i := range which {
			ds[i] = d
		}
		return ds, Answer{Revision: s.cfg.Engine.Revision(), DecisionID: NewDecisionID()}, nil
	}
	if err != nil {
		return nil, Answer{}, err
	}
	return ds, ans, nil
}

// extensionFailed is the denial a check gets when an extension made its
// evaluation fail (*engine.ExtensionError): nothing was decided, and, as
// on every error, nothing is allowed; the reason names the rule, where it
// failed and why. A batch is denied whole, as it is one evaluation.
func (s *Service) extensionFailed(err error) (Decision, bool) {
	var xe *engine.ExtensionError
	if !errors.As(err, &xe) {
		return Decision{}, false
	}
	reason := map[string]any{"code": "extension_error", "rule": xe.Rule, "message": xe.Error()}
	if xe.Location != "" {
		reason["location"] = xe.Location
	}
	if xe.Budget > 0 {
		reason["code"] = "extension_timeout"
	}
	return Decision{Allowed: false, DecidedBy: "extension", Reason: reason}, true
}

// EffectivePermissions lists the subject's permissions on a resource.
func (s *Service) EffectivePermissions(ctx context.Context, sub Subject, r ResourceRef, cons Consistency) (Permissions, Answer, error) {
	if err := s.ready(); err != nil {
		return Permissions{}, Answer{}, err
	}
	in, err := s.subjectInput(ctx, sub)
	if err != nil {
		return Permissions{}, Answer{}, err
	}
	if err := r.valid("resource"); err != nil {
		return Permissions{}, Answer{}, err
	}
	in.Insert(ast.InternedTerm("resource"), r.term())
	var p Permissions
	ans, err := s.decide(ctx, engine.EffectivePermissions, in, cons, func(v any) error { return decodeJSON(v, &p) })
	return p, ans, err
}

// ListResources pages through the resources the subject has a permission on.
func (s *Service) ListResources(ctx context.Context, sub Subject, req ListRequest, cons Consistency) (Page, Answer, error) {
	if err := s.ready(); err != nil {
		return Page{}, Answer{}, err
	}
	v, err := s.verify(ctx, sub)
	if err != nil {
		return Page{}, Answer{}, err
	}
	in := v.input()
	if req.Permission == "" {
		return Page{}, Answer{}, invalid("permission", "is required")
	}
	if req.Parent != nil {
		if err := req.Parent.valid("parent"); err != nil {
			return Page{}, Answer{}, err
		}
		in.Insert(ast.InternedTerm("parent"), req.Parent.term())
	}
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return Page{}, Answer{}, err
	}
	in.Insert(ast.InternedTerm("permission"), ast.StringTerm(req.Permission))
	putString(in, "resource_type", req.ResourceType)
	putString(in, "organization_id", req.OrganizationID)
	if req.Descending {
		putString(in, "order", "desc")
	}
	if !s.caching() || v.tokenErr != nil {
		p, ans, _, err := s.pages(ctx, engine.ListResources, in, req.After, limit, cons)
		return p, ans, err
	}
	return s.cachedPages(ctx, v, req, in, limit, cons)
}

// cachedPages is pages of list-resources through the decision cache: a
// page the policy answered in one evaluation is kept with the stamp of
// what it depends on, and served while the stamp is valid, as a check's
// answer is (see decisionCache). A list by membership M (or a token naming
// M) in organization O reads the shared data, O's (its resources, their
// grants, its groups' grants: principals keeps O's groups only) and M's
// (its entry, groups, grants and anchors); O is the parent's organization,
// else organization_id, else the token's, else M's, and the answer depends
// on each of them (dependsOn, with the parent, or organization_id, as the
// reference). Pages of list-memberships are not cached: they read every
// listed membership's data.
func (s *Service) cachedPages(ctx context.Context, v subject, req ListRequest, in ast.Object, limit int, cons Consistency) (Page, Answer, error) {
	if err := s.await(ctx, cons); err != nil {
		return Page{}, Answer{}, err
	}
	// The input holds every field of the request but the page's position
	// and size; its text is canonical for a given request.
	key := appendFields([]byte{'l'}, strconv.Itoa(limit), req.After, in.String())
	rev := s.cfg.Engine.Revision()
	if e, ok := s.cache.get(s.gens, rev, key); ok {
		s.cache.listHits.Add(1)
		return e.page.clone(), Answer{Revision: rev, DecisionID: NewDecisionID()}, nil
	}
	s.cache.listMisses.Add(1)
	since := s.gens.Current()
	scope := ResourceRef{OrganizationID: req.OrganizationID}
	var rids []string
	if req.Parent != nil {
		scope = *req.Parent
		rids = []string{scope.ID}
	}
	om := v.membership()
	memberOrg, orgs, err := s.owners.Owners(ctx, om, rids...)
	if err != nil {
		return Page{}, Answer{}, err
	}
	d := dependsOn(v, scope, om, memberOrg, append(orgs, "")[0])
	if req.OrganizationID != "" {
		d.Orgs = append(d.Orgs, req.OrganizationID)
	}
	stamp, ok := s.gens.Stamp(since, d)
	p, ans, rounds, err := s.pages(ctx, engine.ListResources, in, req.After, limit, Consistency{AtLeastRevision: rev})
	if err == nil && ok && rounds == 1 && p.Reason == nil {
		kept := p.clone()
		s.cache.put(s.gens, key, cached{page: &kept, rev: ans.Revision, stamp: stamp})
	}
	return p, ans, err
}

// clone returns a copy of p whose slices are its own.
func (p Page) clone() Page {
	p.IDs, p.Positions = slices.Clone(p.IDs), slices.Clone(p.Positions)
	return p
}

// policyPage is the policy's answer to a list page.
type policyPage struct {
	IDs     []string       `json:"ids"`
	Paths   [][]string     `json:"paths"`
	HasMore bool           `json:"has_more"`
	Resume  any            `json:"resume"` // a path (list-resources) or an id
	Reason  map[string]any `json:"reason"`
}

// pages evaluates the pages of list entrypoint ep from after until it
// holds limit + 1 ids or the list ends, and answers the first limit: one
// evaluation, unless an extension's denials leave the policy's pages short
// (it then says where to resume); rounds is how many. They are evaluated
// in one session, on one state of the data, the revision answered. A
// list-resources position is a path, its ids joined by "/"; a
// list-memberships position is the id.
func (s *Service) pages(ctx context.Context, ep engine.Entrypoint, base ast.Object, after string, limit int, cons Consistency) (out Page, ans Answer, rounds int, err error) {
	if err := s.await(ctx, cons); err != nil {
		return Page{}, Answer{}, 0, err
	}
	tree := ep == engine.ListResources
	err = s.cfg.Engine.Session(ctx, func(decide func(engine.Entrypoint, ast.Value) (engine.Result, error)) error {
		for ; ; rounds++ {
			in := base.Copy()
			if after != "" {
				pos := ast.StringTerm(after)
				if tree {
					pos = stringsTerm(strings.Split(after, "/"))
				}
				in.Insert(ast.InternedTerm("after"), pos)
			}
			in.Insert(ast.InternedTerm("limit"), ast.IntNumberTerm(limit+1))
			var p policyPage
			res, err := decide(ep, in)
			a, err := answered(ep, res, err, func(v any) error { return decodeJSON(v, &p) })
			if err != nil {
				return err
			}
			if rounds == 0 {
				ans = a
			}
			if p.Reason != nil {
				out = Page{IDs: []string{}, Reason: p.Reason}
				rounds++
				return nil
			}
			resume := position(p.Resume)
			switch {
			case tree && len(p.Paths) != len(p.IDs):
				return fmt.Errorf("authz: %s result: %d paths for %d ids", ep, len(p.Paths), len(p.IDs))
			case p.HasMore && resume == "": // never a silently short list
				return fmt.Errorf("authz: %s result: has_more without resume", ep)
			}
			out.IDs = append(out.IDs, p.IDs...)
			if tree {
				for _, path := range p.Paths {
					out.Positions = append(out.Positions, strings.Join(path, "/"))
				}
			} else {
				out.Positions = append(out.Positions, p.IDs...)
			}
			if len(out.IDs) > limit || !p.HasMore {
				rounds++
				return nil
			}
			after = resume
		}
	})
	if err != nil {
		return Page{}, Answer{}, 0, err
	}
	if out.HasMore = len(out.IDs) > limit; out.HasMore {
		out.IDs, out.Positions = out.IDs[:limit], out.Positions[:limit]
	}
	if out.IDs == nil {
		out.IDs = []string{}
	}
	return out, ans, rounds, nil
}

// position is a policy page's resume as a position: an id, or a path's
// ids joined by "/"; "" for none.
func position(resume any) string {
	switch r := resume.(type) {
	case string:
		return r
	case []any:
		ids := make([]string, len(r))
		for i, id := range r {
			ids[i], _ = id.(string)
		}
		return strings.Join(ids, "/")
	}
	return ""
}

// ListMemberships pages through the memberships with a permission on a
// resource. It needs no subject: the HTTP layer requires an API key.
func (s *Service) ListMemberships(ctx context.Context, req MembersRequest, cons Consistency) (Page, Answer, error) {
	if err := s.ready(); err != nil {
		return Page{}, Answer{}, err
	}
	if req.Permission == "" {
		return Page{}, Answer{}, invalid("permission", "is required")
	}
	if err := req.Resource.valid("resource"); err != nil {
		return Page{}, Answer{}, err
	}
	if req.Resource.ID == "" && req.Resource.OrganizationID == "" {
		return Page{}, Answer{}, invalid("resource.organization_id", "is required with type and external_id")
	}
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return Page{}, Answer{}, err
	}
	in := ast.NewObject(
		ast.Item(ast.InternedTerm("permission"), ast.StringTerm(req.Permission)),
		ast.Item(ast.InternedTerm("resource"), req.Resource.term()),
		ast.Item(ast.InternedTerm("direct"), ast.InternedTerm(req.Direct)),
	)
	if req.Descending {
		putString(in, "order", "desc")
	}
	c, err := contextTerm(req.Context)
	if err != nil {
		return Page{}, Answer{}, err
	}
	if c != nil {
		in.Insert(ast.InternedTerm("context"), c)
	}
	p, ans, _, err := s.pages(ctx, engine.ListMemberships, in, req.After, limit, cons)
	return p, ans, err
}

// Data evaluates data.<path> for the OPA Data API. A string input.token is
// verified and replaced by its claims exactly as for a check; any other
// input.token, and any input.token_error, is rejected, so a caller can never
// supply claims of its own. ok is false when the result is undefined.
func (s *Service) Data(ctx context.Context, path string, input ast.Value) (result any, ok bool, ans Answer, err error) {
	if err := s.ready(); err != nil {
		return nil, false, Answer{}, err
	}
	if err := s.await(ctx, Consistency{}); err != nil {
		return nil, false, Answer{}, err
	}
	if obj, isObj := input.(ast.Object); isObj {
		if obj.Get(ast.InternedTerm("token_error")) != nil {
			return nil, false, Answer{}, invalid("input.token_error", "is set by Trellis, not by callers")
		}
		if obj.Get(ast.InternedTerm("token")) != nil && obj.Get(ast.InternedTerm("subject")) != nil {
			return nil, false, Answer{}, invalid("input", "give token or subject, not both")
		}
		if t := obj.Get(ast.InternedTerm("token")); t != nil {
			raw, isStr := t.Value.(ast.String)
			if !isStr {
				return nil, false, Answer{}, invalid("input.token", "must be the raw JWT string")
			}
			in, err := s.subjectInput(ctx, Subject{Token: string(raw)})
			if err != nil {
				return nil, false, Answer{}, err
			}
			input = replaceSubject(obj, in)
		}
	}
	ans.DecisionID = NewDecisionID()
	res, err := s.cfg.Engine.Data(ctx, path, input)
	if errors.Is(err, engine.ErrUndefined) {
		ans.Revision = s.cfg.Engine.Revision()
		return nil, false, ans, nil
	}
	if err != nil {
		return nil, false, ans, err
	}
	if err := unavailableIn(res.Value); err != nil {
		return nil, false, ans, err
	}
	ans.Revision = res.Revision
	return res.Value, true, ans, nil
}

func replaceSubject(obj ast.Object, subject ast.Object) ast.Object {
	out := ast.NewObject()
	obj.Foreach(func(k, v *ast.Term) {
		if k.Value.Compare(ast.String("token")) != 0 {
			out.Insert(k, v)
		}
	})
	subject.Foreach(out.Insert)
	return out
}

// subject is a verified subject: a membership named by the caller, the
// claims of a verified token, or why a token failed verification.
type subject struct {
	membershipID string
	claims       *token.Claims
	tokenErr     *token.Error
	context      *ast.Term // input.context, when given
}

// verify checks the subject's shape and verifies its token. A failed
// verification is not an error: it becomes input.token_error so the policy
// denies with its reason.
func (s *Service) verify(ctx context.Context, sub Subject) (subject, error) {
	c, err := contextTerm(sub.Context)
	if err != nil {
		return subject{}, err
	}
	v, err := s.verifyWho(ctx, sub)
	v.context = c
	return v, err
}

// contextTerm is input.context: raw, a JSON object, or nil when raw is
// empty or null.
func contextTerm(raw string) (*ast.Term, error) {
	if raw == "" || raw == "null" {
		return nil, nil
	}
	v, err := ast.ValueFromReader(strings.NewReader(raw))
	if _, isObject := v.(ast.Object); err != nil || !isObject {
		return nil, invalid("context", "must be a JSON object")
	}
	return ast.NewTerm(v), nil
}

func (s *Service) verifyWho(ctx context.Context, sub Subject) (subject, error) {
	switch {
	case sub.Token != "" && sub.MembershipID != "":
		return subject{}, invalid("subject", "give token or subject, not both")
	case sub.MembershipID != "":
		return subject{membershipID: sub.MembershipID}, nil
	case sub.Token != "":
		if s.cfg.Tokens == nil {
			return subject{}, invalid("token", "the token layer is switched off on this server; give subject.organization_membership_id")
		}
		claims, err := s.cfg.Tokens.Verify(ctx, sub.Token)
		if err != nil {
			var te *token.Error
			if !errors.As(err, &te) {
				te = &token.Error{Code: "token_invalid", Message: "the token could not be verified"}
			}
			return subject{tokenErr: te}, nil
		}
		return subject{claims: &claims}, nil
	}
	return subject{}, invalid("subject", "give a token or subject.organization_membership_id")
}

// input returns a new policy input holding the subject.
func (v subject) input() ast.Object {
	in := ast.NewObject()
	switch {
	case v.tokenErr != nil:
		in.Insert(ast.InternedTerm("token_error"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("code"), ast.StringTerm(v.tokenErr.Code)),
			ast.Item(ast.InternedTerm("message"), ast.StringTerm(v.tokenErr.Message)),
		))
	case v.claims != nil:
		in.Insert(ast.InternedTerm("token"), claimsTerm(*v.claims))
	default:
		in.Insert(ast.InternedTerm("subject"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("organization_membership_id"), ast.StringTerm(v.membershipID))))
	}
	if v.context != nil {
		in.Insert(ast.InternedTerm("context"), v.context)
	}
	return in
}

// subjectInput verifies the subject and returns the policy input holding it.
func (s *Service) subjectInput(ctx context.Context, sub Subject) (ast.Object, error) {
	v, err := s.verify(ctx, sub)
	if err != nil {
		return nil, err
	}
	return v.input(), nil
}

// claimsTerm is input.token: the verified claims the policies (and teams'
// own Rego, package trellis.ext.*) may read — sub, org_id, membership_id,
// role, roles, permissions, sid, feature_flags and entitlements; an absent
// claim is "" or [].
func claimsTerm(c token.Claims) *ast.Term {
	return ast.ObjectTerm(
		ast.Item(ast.InternedTerm("sub"), ast.StringTerm(c.Subject)),
		ast.Item(ast.InternedTerm("org_id"), ast.StringTerm(c.OrganizationID)),
		ast.Item(ast.InternedTerm("membership_id"), ast.StringTerm(c.MembershipID)),
		ast.Item(ast.InternedTerm("role"), ast.StringTerm(c.Role)),
		ast.Item(ast.InternedTerm("roles"), stringsTerm(c.Roles)),
		ast.Item(ast.InternedTerm("permissions"), stringsTerm(c.Permissions)),
		ast.Item(ast.InternedTerm("sid"), ast.StringTerm(c.SessionID)),
		ast.Item(ast.InternedTerm("feature_flags"), stringsTerm(c.FeatureFlags)),
		ast.Item(ast.InternedTerm("entitlements"), stringsTerm(c.Entitlements)),
	)
}

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

// decide waits for the requested consistency, evaluates ep and hands the
// value to decode. Every failure is an error, never a decision.
func (s *Service) decide(ctx context.Context, ep engine.Entrypoint, in ast.Object, cons Consistency, decode func(any) error) (Answer, error) {
	if err := s.await(ctx, cons); err != nil {
		return Answer{}, err
	}
	return s.evaluate(ctx, ep, in, decode)
}

// evaluate evaluates ep on in and hands the value to decode.
func (s *Service) evaluate(ctx context.Context, ep engine.Entrypoint, in ast.Object, decode func(any) error) (Answer, error) {
	res, err := s.cfg.Engine.Decide(ctx, ep, in)
	return answered(ep, res, err, decode)
}

// answered is the answer of ep's evaluation (res, err), its value handed to
// decode.
func answered(ep engine.Entrypoint, res engine.Result, err error, decode func(any) error) (Answer, error) {
	if err != nil {
		return Answer{}, err
	}
	if err := unavailableIn(res.Value); err != nil {
		return Answer{}, err
	}
	if err := decode(res.Value); err != nil {
		return Answer{}, fmt.Errorf("authz: %s result: %w", ep, err)
	}
	return Answer{Revision: res.Revision, DecisionID: NewDecisionID()}, nil
}

// caching reports whether answers go through the decision cache: not while
// the policies hold extensions that may read the request's context, the
// clock or data beyond what an answer is known to depend on
// (engine.Engine.ContextFree), so that no answer is known to hold for
// another request. (Policies that change move every generation, so nothing
// cached before is served after.)
func (s *Service) caching() bool { return s.cache != nil && s.contextFree() }

// ready fails with ErrNotReady until the engine has loaded data.
func (s *Service) ready() error {
	if !s.cfg.Engine.Loaded() {
		return ErrNotReady
	}
	return nil
}

// await waits, bounded by MaxWait, until the engine has applied the
// revision cons asks for and every acknowledged write (see Acknowledged).
func (s *Service) await(ctx context.Context, cons Consistency) error {
	// Read before the head: a write acknowledged before this request is at
	// or below both.
	acked := s.acked.Load()
	if s.cfg.FullyConsistent && cons == (Consistency{}) {
		cons.FullyConsistent = true
	}
	want := cons.AtLeastRevision
	if cons.FullyConsistent {
		if cons.AtLeastRevision != 0 {
			return invalid("consistency", "give at_least_revision or fully_consistent, not both")
		}
		want = s.cfg.Engine.Revision()
		if s.head != nil {
			head, err := s.head.get(ctx)
			if err != nil {
				return fmt.Errorf("%w: read head revision: %w", ErrUnavailable, err)
			}
			want = head
		}
	}
	if want < 0 {
		return invalid("consistency.at_least_revision", "must not be negative")
	}
	want = max(want, acked)
	if want == 0 {
		return nil
	}
	if err := s.cfg.Engine.WaitFor(ctx, want, s.cfg.MaxWait); err != nil {
		if errors.Is(err, engine.ErrStale) {
			return &StaleError{Wanted: want, Applied: s.cfg.Engine.Revision()}
		}
		return err
	}
	return nil
}

// NewDecisionID returns a random 128-bit id in hex. It names a decision in
// logs and is no secret, so it comes from the runtime's fast ChaCha8
// generator (math/rand/v2) rather than from the operating system.
func NewDecisionID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, invalid("limit", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	return n, nil
}

func putString(in ast.Object, key, val string) {
	if val != "" {
		in.Insert(ast.InternedTerm(key), ast.StringTerm(val))
	}
}

func validCheck(c Check) error {
	if c.Permission == "" {
		return invalid("permission", "is required")
	}
	return c.Resource.valid("resource")
}

func (r ResourceRef) valid(field string) error {
	switch {
	case r.ID != "" && (r.Type != "" || r.ExternalID != ""):
		return invalid(field, "give id, or type and external_id, not both")
	case r.ID != "":
		return nil
	case r.Type == "" || r.ExternalID == "":
		return invalid(field, "give id, or type and external_id")
	}
	return nil
}

func (r ResourceRef) term() *ast.Term {
	obj := ast.NewObject()
	putString(obj, "id", r.ID)
	putString(obj, "type", r.Type)
	putString(obj, "external_id", r.ExternalID)
	putString(obj, "organization_id", r.OrganizationID)
	return ast.NewTerm(obj)
}
