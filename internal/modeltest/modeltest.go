// Package modeltest runs model test files (`trellis test`): a data file
// and assertions about the decisions Trellis makes on it — checks, resource
// and membership lists, effective permissions — evaluated by the embedded
// engine with the same policies as the server, with session tokens
// described by their claims and signed by the runner.
//
// A test file is YAML:
//
//	data: demo.yaml                 # the data file, relative to this file;
//	                                # absent: the embedded demo dataset
//	attributes:                     # resource attributes to set on the data
//	  "project:web": {confidential: true}  # by id, or type:external_id
//	organization_attributes:        # likewise, by organization id
//	  org_globex: {networks: ["10.20.0.0/16"]}
//	tokens:                         # session tokens, by name
//	  bob: {membership: om_bob}     # the claims AuthKit issues for om_bob
//	  forged:                       # or (also) claims as given
//	    claims: {org_id: org_acme, permissions: ["org:manage"]}
//	tests:
//	  - name: bob edits api through his workspace role
//	    check:
//	      - {membership: om_bob, permission: "project:edit", resource: "project:api", allowed: true, decided_by: assignment}
//	      - {token: bob, permission: "project:edit", resource: "project:web", allowed: false}
//	    list_resources:
//	      - {membership: om_bob, permission: "project:edit", resource_type: project, want: ["project:api"]}
//	    list_memberships:
//	      - {permission: "project:edit", resource: "project:api", organization: org_acme, want: [om_bob]}
//	    effective_permissions:
//	      - {membership: om_bob, resource: "project:api", want: ["project:view", "project:edit"]}
//
// The subject is membership (an organization membership id) or token (a
// name under tokens). A resource is its id or type:external_id, in the
// organization given, else the subject's. Lists and permissions compare as
// sets; resources are shown as type:external_id.
package modeltest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/client"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// File is a parsed test file.
type File struct {
	Data string `yaml:"data"`
	// Attributes replace the attributes of resources (by id, or by
	// type:external_id when that names one resource), OrgAttributes those
	// of organizations, in the data before the tests run: for extensions.
	Attributes    map[string]map[string]any `yaml:"attributes"`
	OrgAttributes map[string]map[string]any `yaml:"organization_attributes"`
	Tokens        map[string]TokenSpec      `yaml:"tokens"`
	Tests         []Test                    `yaml:"tests"`
}

// TokenSpec describes a session token: the claims AuthKit issues for
// Membership, with Claims added or replacing them.
type TokenSpec struct {
	Membership string         `yaml:"membership"`
	Claims     map[string]any `yaml:"claims"`
}

// Test is a named group of assertions.
type Test struct {
	Name                 string              `yaml:"name"`
	Check                []CheckCase         `yaml:"check"`
	ListResources        []ListResourcesCase `yaml:"list_resources"`
	ListMemberships      []ListMembersCase   `yaml:"list_memberships"`
	EffectivePermissions []PermissionsCase   `yaml:"effective_permissions"`
}

// Subject names who asks: a membership, or a token of File.Tokens; and
// the request's context, which extensions read as input.context.
type Subject struct {
	Membership string         `yaml:"membership"`
	Token      string         `yaml:"token"`
	Context    map[string]any `yaml:"context"`
}

// CheckCase asserts one check's answer.
type CheckCase struct {
	Subject      `yaml:",inline"`
	Permission   string `yaml:"permission"`
	Resource     string `yaml:"resource"`
	Organization string `yaml:"organization"`
	Allowed      *bool  `yaml:"allowed"`
	DecidedBy    string `yaml:"decided_by"`
}

// ListResourcesCase asserts the exact set of resources a subject may act on.
type ListResourcesCase struct {
	Subject      `yaml:",inline"`
	Permission   string   `yaml:"permission"`
	ResourceType string   `yaml:"resource_type"`
	Parent       string   `yaml:"parent"`
	Organization string   `yaml:"organization"`
	Want         []string `yaml:"want"`
}

// ListMembersCase asserts the exact set of memberships with a permission on
// a resource.
type ListMembersCase struct {
	Permission   string   `yaml:"permission"`
	Resource     string   `yaml:"resource"`
	Organization string   `yaml:"organization"`
	Want         []string `yaml:"want"`
}

// PermissionsCase asserts a subject's exact effective permissions on a
// resource.
type PermissionsCase struct {
	Subject      `yaml:",inline"`
	Resource     string   `yaml:"resource"`
	Organization string   `yaml:"organization"`
	Want         []string `yaml:"want"`
}

// Load reads and parses the test file at path and loads its dataset.
func Load(path string) (*File, *model.Dataset, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	ds := datafile.Demo()
	if f.Data != "" {
		data := f.Data
		if !filepath.IsAbs(data) {
			data = filepath.Join(filepath.Dir(path), data)
		}
		if ds, err = datafile.Load(data); err != nil {
			return nil, nil, fmt.Errorf("%s: data: %w", path, err)
		}
	}
	if err := f.setAttributes(ds); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, ds, nil
}

// setAttributes sets f's attributes on ds, and checks ds again.
func (f *File) setAttributes(ds *model.Dataset) error {
	if len(f.Attributes) == 0 && len(f.OrgAttributes) == 0 {
		return nil
	}
	set := func(dst *model.Attributes, what string, a map[string]any) error {
		n, err := model.NormalizeAttributes(a)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		*dst = n
		return nil
	}
	for ref, a := range f.Attributes {
		var found []int
		for i, r := range ds.Resources {
			if r.ID == ref || r.Type+":"+r.ExternalID == ref {
				found = append(found, i)
			}
		}
		switch len(found) {
		case 0:
			return fmt.Errorf("attributes: no resource %s", ref)
		case 1:
		default:
			return fmt.Errorf("attributes: %s names %d resources (of several organizations): use the resource id", ref, len(found))
		}
		if err := set(&ds.Resources[found[0]].Attributes, "attributes of "+ref, a); err != nil {
			return err
		}
	}
	for id, a := range f.OrgAttributes {
		i := slices.IndexFunc(ds.Organizations, func(o model.Organization) bool { return o.ID == id })
		if i < 0 {
			return fmt.Errorf("organization_attributes: no organization %s", id)
		}
		if err := set(&ds.Organizations[i].Attributes, "organization_attributes of "+id, a); err != nil {
			return err
		}
	}
	return ds.Validate()
}

// Parse parses a test file strictly: unknown keys are errors.
func Parse(raw []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(f.Tests) == 0 {
		return nil, errors.New("no tests: the file needs a tests list")
	}
	return &f, nil
}

// Result is the outcome of one assertion.
type Result struct {
	Test, Assertion string
	// Failure is "" for a pass, else what was wrong (a diff of sets, or
	// the error).
	Failure string
}

// Run evaluates every assertion of f on ds with the policy modules (nil:
// Trellis's own, policies.Modules) and returns the results in file order.
// An error is returned only when the runner itself cannot start.
func Run(ctx context.Context, f *File, ds *model.Dataset, modules map[string]string) ([]Result, error) {
	r, err := newRunner(ctx, f, ds, modules)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var out []Result
	for i, t := range f.Tests {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("test #%d", i+1)
		}
		add := func(what string, err error) {
			res := Result{Test: name, Assertion: what}
			if err != nil {
				res.Failure = err.Error()
			}
			out = append(out, res)
		}
		for _, c := range t.Check {
			add(fmt.Sprintf("check %s %s %s", c.Subject, c.Permission, c.Resource), r.check(ctx, c))
		}
		for _, c := range t.ListResources {
			add(fmt.Sprintf("list_resources %s %s", c.Subject, c.Permission), r.listResources(ctx, c))
		}
		for _, c := range t.ListMemberships {
			add(fmt.Sprintf("list_memberships %s %s", c.Permission, c.Resource), r.listMemberships(ctx, c))
		}
		for _, c := range t.EffectivePermissions {
			add(fmt.Sprintf("effective_permissions %s %s", c.Subject, c.Resource), r.effectivePermissions(ctx, c))
		}
	}
	return out, nil
}

// String names the subject as a test report shows it.
func (s Subject) String() string {
	if s.Token != "" {
		return "token " + s.Token
	}
	return s.Membership
}

// issuer is the issuer of the runner's tokens.
const issuer = "https://trellis-test.invalid"

type runner struct {
	ds      *model.Dataset
	svc     *authz.Service
	tokens  map[string]string // name → signed JWT
	members map[string]model.Membership
	byID    map[string]string // resource id → type:external_id
	cleanup func()
}

func newRunner(ctx context.Context, f *File, ds *model.Dataset, modules map[string]string) (*runner, error) {
	if modules == nil {
		modules = policies.Modules()
	}
	eng, err := engine.New(ctx, engine.Options{Modules: modules})
	if err != nil {
		return nil, err
	}
	if err := eng.LoadDataset(ctx, ds); err != nil {
		return nil, err
	}
	signer, err := token.NewSigner(token.RS256, "trellis-test")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "trellis-test-")
	if err != nil {
		return nil, err
	}
	r := &runner{ds: ds, tokens: map[string]string{}, members: map[string]model.Membership{}, byID: map[string]string{},
		cleanup: func() { _ = os.RemoveAll(dir) }}
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, signer.JWKS(), 0o600); err != nil {
		r.close()
		return nil, err
	}
	verifier, err := token.New(ctx, token.Config{JWKSFile: jwks, Issuer: issuer})
	if err != nil {
		r.close()
		return nil, err
	}
	if r.svc, err = authz.New(authz.Config{Engine: eng, Tokens: verifier}); err != nil {
		r.close()
		return nil, err
	}
	for _, m := range ds.Memberships {
		r.members[m.ID] = m
	}
	for _, o := range ds.Organizations {
		r.byID[o.RootID()] = model.OrganizationType + ":" + o.ID
	}
	for _, res := range ds.Resources {
		r.byID[res.ID] = res.Type + ":" + res.ExternalID
	}
	for name, spec := range f.Tokens {
		claims := map[string]any{}
		if spec.Membership != "" {
			if claims, err = token.AuthKitClaims(ds, spec.Membership); err != nil {
				r.close()
				return nil, fmt.Errorf("token %s: %w", name, err)
			}
		}
		for k, v := range spec.Claims {
			claims[k] = v
		}
		now := time.Now()
		claims["iss"], claims["iat"], claims["exp"] = issuer, now.Unix(), now.Add(time.Hour).Unix()
		if r.tokens[name], err = signer.Sign(claims); err != nil {
			r.close()
			return nil, fmt.Errorf("token %s: %w", name, err)
		}
	}
	return r, nil
}

func (r *runner) close() { r.cleanup() }

// subject resolves a Subject to the service's, and the organization its
// resources default to.
func (r *runner) subject(s Subject) (authz.Subject, string, error) {
	sub, org, err := r.who(s)
	if err == nil && s.Context != nil {
		var raw []byte
		raw, err = json.Marshal(s.Context)
		sub.Context = string(raw)
	}
	return sub, org, err
}

func (r *runner) who(s Subject) (authz.Subject, string, error) {
	switch {
	case s.Token != "" && s.Membership != "":
		return authz.Subject{}, "", errors.New("give membership or token, not both")
	case s.Token != "":
		jwt, ok := r.tokens[s.Token]
		if !ok {
			return authz.Subject{}, "", fmt.Errorf("no token %q under tokens", s.Token)
		}
		return authz.Subject{Token: jwt}, "", nil // the service takes the organization from the token
	case s.Membership != "":
		return authz.Subject{MembershipID: s.Membership}, r.members[s.Membership].OrganizationID, nil
	}
	return authz.Subject{}, "", errors.New("no subject: give membership or token")
}

// subjectAndResource resolves an assertion's subject and its resource, in
// org or else the subject's organization.
func (r *runner) subjectAndResource(s Subject, ref, org string) (authz.Subject, authz.ResourceRef, error) {
	sub, subOrg, err := r.subject(s)
	if err != nil {
		return sub, authz.ResourceRef{}, err
	}
	res, err := client.Resource(ref, cmp.Or(org, subOrg))
	return sub, res, err
}

func (r *runner) check(ctx context.Context, c CheckCase) error {
	if c.Allowed == nil {
		return errors.New("no expectation: give allowed: true or false")
	}
	sub, res, err := r.subjectAndResource(c.Subject, c.Resource, c.Organization)
	if err != nil {
		return err
	}
	d, _, err := r.svc.Check(ctx, sub, authz.Check{Permission: c.Permission, Resource: res}, authz.Consistency{})
	switch {
	case err != nil:
		return err
	case d.Allowed != *c.Allowed:
		return fmt.Errorf("allowed = %t, want %t (decided_by %s, reason %v)", d.Allowed, *c.Allowed, d.DecidedBy, d.Reason)
	case c.DecidedBy != "" && d.DecidedBy != c.DecidedBy:
		return fmt.Errorf("decided_by = %s, want %s (reason %v)", d.DecidedBy, c.DecidedBy, d.Reason)
	}
	return nil
}

func (r *runner) listResources(ctx context.Context, c ListResourcesCase) error {
	sub, org, err := r.subject(c.Subject)
	if err != nil {
		return err
	}
	org = cmp.Or(c.Organization, org)
	req := authz.ListRequest{Permission: c.Permission, ResourceType: c.ResourceType, OrganizationID: c.Organization}
	if c.Parent != "" {
		p, err := client.Resource(c.Parent, org)
		if err != nil {
			return err
		}
		req.Parent = &p
	}
	got, err := every(func(after string) (authz.Page, error) {
		req.After = after
		page, _, err := r.svc.ListResources(ctx, sub, req, authz.Consistency{})
		return page, err
	})
	if err != nil {
		return err
	}
	return r.sameSet(c.Want, got)
}

func (r *runner) listMemberships(ctx context.Context, c ListMembersCase) error {
	res, err := client.Resource(c.Resource, c.Organization)
	if err != nil {
		return err
	}
	req := authz.MembersRequest{Permission: c.Permission, Resource: res}
	got, err := every(func(after string) (authz.Page, error) {
		req.After = after
		page, _, err := r.svc.ListMemberships(ctx, req, authz.Consistency{})
		return page, err
	})
	if err != nil {
		return err
	}
	return r.sameSet(c.Want, got)
}

// every returns the ids of every page of a list, asking for each page
// after the last id of the one before.
func every(page func(after string) (authz.Page, error)) ([]string, error) {
	var ids []string
	after := ""
	for {
		p, err := page(after)
		if err != nil {
			return nil, err
		}
		ids = append(ids, p.IDs...)
		if !p.HasMore || len(p.IDs) == 0 {
			return ids, nil
		}
		after = p.IDs[len(p.IDs)-1]
	}
}

func (r *runner) effectivePermissions(ctx context.Context, c PermissionsCase) error {
	sub, res, err := r.subjectAndResource(c.Subject, c.Resource, c.Organization)
	if err != nil {
		return err
	}
	p, _, err := r.svc.EffectivePermissions(ctx, sub, res, authz.Consistency{})
	if err != nil {
		return err
	}
	return r.sameSet(c.Want, p.Permissions)
}

// sameSet compares want and got as sets, resource ids shown (and
// accepted) as type:external_id, and describes the difference.
func (r *runner) sameSet(want, got []string) error {
	norm := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = cmp.Or(r.byID[id], id)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	w, g := norm(want), norm(got)
	var missing, extra []string
	for _, x := range w {
		if _, found := slices.BinarySearch(g, x); !found {
			missing = append(missing, x)
		}
	}
	for _, x := range g {
		if _, found := slices.BinarySearch(w, x); !found {
			extra = append(extra, x)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "got %v, want %v", g, w)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\n  - missing: %s", strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, "\n  + unexpected: %s", strings.Join(extra, ", "))
	}
	return errors.New(b.String())
}

// Report writes one line per assertion (ok or FAIL with what was wrong)
// and a summary, and returns how many failed.
func Report(w io.Writer, file string, results []Result) (failed int) {
	for _, res := range results {
		if res.Failure == "" {
			fmt.Fprintf(w, "ok    %s: %s\n", res.Test, res.Assertion)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s: %s\n      %s\n", res.Test, res.Assertion, strings.ReplaceAll(res.Failure, "\n", "\n      "))
	}
	fmt.Fprintf(w, "%s: %d of %d assertions passed\n", file, len(results)-failed, len(results))
	return failed
}
