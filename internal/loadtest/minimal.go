package loadtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// MinimalLevels is how many levels of a resource tree, the organization
// root included, the hand-written rule of package baseline walks.
const MinimalLevels = 6

// WriteMinimal writes into dir what stock OPA serves as the system
// opa-minimal: the hand-written rule of package baseline (rbac.rego) and
// ds's relationships as a plain data.json in the shape that rule reads
// (policies/baseline/rbac.rego), with issuer and jwks (a JWKS document)
// for the session tokens. Go only reshapes: each membership's organization
// roles become assignments on the organization root, and each assignment
// names the role its slug resolves to in the membership's organization
// (an organization role shadows the environment role of that slug; an
// unresolved slug grants nothing and is left out). It fails when ds allows
// trees deeper than MinimalLevels, which the rule would not walk.
func WriteMinimal(dir string, ds *model.Dataset, issuer string, jwks []byte) error {
	if ds.Depth() > MinimalLevels {
		return fmt.Errorf("loadtest: opa-minimal: the dataset allows trees of %d levels; the hand-written rule walks %d", ds.Depth(), MinimalLevels)
	}
	if !json.Valid(jwks) {
		return errors.New("loadtest: opa-minimal: the JWKS is not JSON")
	}
	type resource struct {
		Organization string `json:"organization"`
		Parent       string `json:"parent,omitempty"`
	}
	type membership struct {
		Organization string `json:"organization"`
		Active       bool   `json:"active"`
	}
	type grant struct {
		Role     string `json:"role"`
		Resource string `json:"resource"`
	}
	doc := struct {
		Issuer          string                `json:"issuer"`
		JWKS            string                `json:"jwks"`
		Resources       map[string]resource   `json:"resources"`
		Memberships     map[string]membership `json:"memberships"`
		RoleAssignments map[string][]grant    `json:"role_assignments"`
		Roles           map[string][]string   `json:"roles"`
	}{
		Issuer:          issuer,
		JWKS:            string(jwks),
		Resources:       make(map[string]resource, len(ds.Organizations)+len(ds.Resources)),
		Memberships:     make(map[string]membership, len(ds.Memberships)),
		RoleAssignments: make(map[string][]grant, len(ds.Memberships)),
		Roles:           make(map[string][]string, len(ds.Roles)),
	}
	for _, org := range ds.Organizations {
		doc.Resources[org.RootID()] = resource{Organization: org.ID}
	}
	for _, r := range ds.Resources {
		parent := r.ParentID
		if parent == "" {
			parent = model.RootResourceID(r.OrganizationID)
		}
		doc.Resources[r.ID] = resource{Organization: r.OrganizationID, Parent: parent}
	}
	for _, r := range ds.Roles {
		doc.Roles[r.Key()] = append([]string{}, r.Permissions...)
	}
	roles := model.NewRoleIndex(ds.Roles)
	assign := func(m model.Membership, slug, rid string) {
		if role, ok := roles.Resolve(m.OrganizationID, slug); ok {
			doc.RoleAssignments[m.ID] = append(doc.RoleAssignments[m.ID], grant{Role: role.Key(), Resource: rid})
		}
	}
	members := make(map[string]model.Membership, len(ds.Memberships))
	for _, m := range ds.Memberships {
		members[m.ID] = m
		doc.Memberships[m.ID] = membership{Organization: m.OrganizationID, Active: m.Status == model.StatusActive}
		for _, slug := range m.RoleSlugs {
			assign(m, slug, model.RootResourceID(m.OrganizationID))
		}
	}
	for _, a := range ds.Assignments {
		if m, ok := members[a.MembershipID]; ok {
			assign(m, a.RoleSlug, a.ResourceID)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "rbac.rego"), []byte(policies.Baseline()), 0o600); err != nil {
		return fmt.Errorf("loadtest: opa-minimal: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "data.json"))
	if err != nil {
		return fmt.Errorf("loadtest: opa-minimal: %w", err)
	}
	bw := bufio.NewWriter(f)
	err = errors.Join(json.NewEncoder(bw).Encode(doc), bw.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("loadtest: opa-minimal: write data.json: %w", err)
	}
	return nil
}

// MinimalOPAArgs are the arguments of the stock opa binary that serve dir,
// written by WriteMinimal, on the loopback address addr. OPA's cache of
// verified tokens (the io_jwt inter-query value cache, off by default) is
// on, as Trellis's verified-token cache is; no decision is cached.
func MinimalOPAArgs(addr, dir string) []string {
	return []string{"run", "--server", "--addr", addr, "--log-level", "error",
		"--set", "caching.inter_query_builtin_value_cache.named.io_jwt.max_num_entries=10000", dir}
}

// MinimalAPI is the Data API of stock OPA on WriteMinimal's files: POST
// /v1/data/baseline/allow with input {token, permission, resource: id},
// answered {"result": true|false}. It asks single checks only: a batch or
// list request does not encode.
type MinimalAPI struct{}

// Encode implements API.
func (MinimalAPI) Encode(r Request) (string, []byte, error) {
	if r.List != nil || r.Kind == KindBatch || len(r.Checks) != 1 {
		return "", nil, fmt.Errorf("opa-minimal answers single checks only, not a %s request", r.Kind)
	}
	q := r.Checks[0]
	type input struct {
		Token      string `json:"token"`
		Permission string `json:"permission"`
		Resource   string `json:"resource"`
	}
	b, err := json.Marshal(struct {
		Input input `json:"input"`
	}{input{r.Token, q.Permission, q.ResourceID}})
	return "/v1/data/baseline/allow", b, err
}

// Decode implements API. A result that is not a boolean (undefined
// included) is an error.
func (MinimalAPI) Decode(_ Request, body []byte) (Answer, error) {
	var d struct {
		Result *bool `json:"result"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return Answer{}, err
	}
	if d.Result == nil {
		return Answer{}, errors.New(`no boolean "result" in the answer`)
	}
	return Answer{Allowed: []bool{*d.Result}}, nil
}
