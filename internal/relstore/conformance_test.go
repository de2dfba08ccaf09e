package relstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// small is a two-organization dataset that exercises every key of the
// document: a derived and an explicit root id, an external id reused across
// organizations, organization and environment roles (one resolving in two
// organizations), an organization role shadowing nothing, an inactive and a
// pending membership, a membership without grants, two sources of one role
// on one resource, and a role with no permissions.
func small() *model.Dataset {
	return &model.Dataset{
		Revision: 42,
		Organizations: []model.Organization{
			{ID: "org_a", Name: "A"},
			{ID: "org_b", Name: "B", RootResourceID: "root_b"},
			{ID: "org_empty"},
		},
		ResourceTypes: []model.ResourceType{
			{Slug: "workspace", ParentTypes: []string{model.OrganizationType}},
			{Slug: "project", ParentTypes: []string{"workspace"}},
		},
		Permissions: []model.Permission{
			{Slug: "org:view", ResourceType: model.OrganizationType},
			{Slug: "ws:view", ResourceType: "workspace"},
			{Slug: "p:edit", ResourceType: "project"},
		},
		Roles: []model.Role{
			{Slug: "admin", ResourceType: model.OrganizationType, Permissions: []string{"org:view", "ws:view", "p:edit"}},
			{Slug: "ws-admin", ResourceType: "workspace", Permissions: []string{"ws:view", "p:edit"}},
			{Slug: "nothing", ResourceType: "project"},
			{Slug: "billing", ResourceType: model.OrganizationType, OrganizationID: "org_a", Permissions: []string{"org:view"}},
			{Slug: "billing", ResourceType: model.OrganizationType, OrganizationID: "org_b", Permissions: []string{"org:view"}},
		},
		Memberships: []model.Membership{
			{ID: "om_1", UserID: "user_1", OrganizationID: "org_a", Status: model.StatusActive, RoleSlugs: []string{"billing", "admin"}},
			{ID: "om_2", UserID: "user_2", OrganizationID: "org_a", Status: model.StatusInactive},
			{ID: "om_3", UserID: "user_3", OrganizationID: "org_b", Status: model.StatusActive, RoleSlugs: []string{"admin"}},
			{ID: "om_4", UserID: "user_4", OrganizationID: "org_b", Status: model.StatusPending, RoleSlugs: []string{"billing"}},
			{ID: "om_5", UserID: "user_5", OrganizationID: "org_empty", Status: model.StatusActive},
		},
		Resources: []model.Resource{
			{ID: "r_ws1", OrganizationID: "org_a", Type: "workspace", ExternalID: "w1"},
			{ID: "r_p2", OrganizationID: "org_a", Type: "project", ExternalID: "p2", ParentID: "r_ws1"},
			{ID: "r_p1", OrganizationID: "org_a", Type: "project", ExternalID: "p1", ParentID: "r_ws1"},
			{ID: "r_wsb", OrganizationID: "org_b", Type: "workspace", ExternalID: "w1", ParentID: "root_b"},
		},
		Assignments: []model.Assignment{
			{ID: "ra_1", MembershipID: "om_2", RoleSlug: "ws-admin", ResourceID: "r_ws1"},
			{ID: "ra_2", MembershipID: "om_3", RoleSlug: "ws-admin", ResourceID: "r_wsb"},
			{ID: "ra_3", MembershipID: "om_1", RoleSlug: "ws-admin", ResourceID: "r_ws1"},
			{ID: "ra_4", MembershipID: "om_1", RoleSlug: "admin", ResourceID: "authz_resource_root_org_a"},
			{ID: "ra_5", MembershipID: "om_1", RoleSlug: "nothing", ResourceID: "r_p1"},
		},
	}
}

// withGroups adds groups to ds (small): one of two members of org_a with
// grants on the root and a workspace, one member also in a second group
// without grants, and an empty group of org_b.
// withAttributes is ds with attributes on every other resource (some
// equal) and on its first organization.
func withAttributes(ds *model.Dataset) *model.Dataset {
	for i := range ds.Resources {
		switch i % 4 {
		case 0:
			ds.Resources[i].Attributes = model.Attributes{"confidential": true}
		case 1:
			ds.Resources[i].Attributes = model.Attributes{"tags": []any{"a", json.Number("1.50")}, "confidential": false}
		}
	}
	ds.Organizations[0].Attributes = model.Attributes{"networks": []any{"10.0.0.0/8"}}
	return ds
}

func withGroups(ds *model.Dataset) *model.Dataset {
	ds.Groups = []model.Group{
		{ID: "group_eng", OrganizationID: "org_a", Name: "Engineering"},
		{ID: "group_idle", OrganizationID: "org_a", Name: "Idle", Description: "no grants"},
		{ID: "group_b", OrganizationID: "org_b", Name: "B team"},
	}
	ds.GroupMembers = []model.GroupMember{
		{GroupID: "group_eng", MembershipID: "om_2"},
		{GroupID: "group_eng", MembershipID: "om_1"},
		{GroupID: "group_idle", MembershipID: "om_1"},
	}
	ds.Assignments = append(ds.Assignments,
		model.Assignment{ID: "ra_g1", GroupID: "group_eng", RoleSlug: "ws-admin", ResourceID: "r_ws1"},
		model.Assignment{ID: "ra_g2", GroupID: "group_eng", RoleSlug: "billing", ResourceID: "authz_resource_root_org_a"},
		model.Assignment{ID: "ra_g3", GroupID: "group_b", RoleSlug: "admin", ResourceID: "root_b"})
	return ds
}

// isolated is ds after poison, with the organizations whose data it breaks
// held out by model.Dataset.Isolate: a dataset with quarantine entries.
func isolated(ds *model.Dataset, poison func(*model.Dataset)) *model.Dataset {
	poison(ds)
	out, err := ds.Isolate()
	if err != nil {
		panic(fmt.Sprintf("isolate: %v", err))
	}
	if len(out.Quarantined) == 0 {
		panic("the poison broke no organization's data")
	}
	return out
}

// quarantineDatasets are datasets with quarantined organizations: one
// (a cycle in org_b of small), two (an assignment across organizations,
// which leaves only org_empty), and one of a random dataset.
func quarantineDatasets() map[string]*model.Dataset {
	return map[string]*model.Dataset{
		"small, org_b quarantined": isolated(small(), func(ds *model.Dataset) { ds.Resources[3].ParentID = "r_wsb" }),
		"small, org_a and org_b quarantined": isolated(small(), func(ds *model.Dataset) {
			ds.Assignments[1].ResourceID = "r_ws1"
		}),
		"gen seed 7, one organization quarantined": isolated(
			gen.Generate(gen.Spec{Seed: 7, Organizations: 3, Resources: 300, Assignments: 300, MembershipsPerOrg: 8, Depth: 5}),
			func(ds *model.Dataset) {
				r := &ds.Resources[len(ds.Resources)/2]
				r.ParentID = r.ID
			}),
	}
}

// conformanceDatasets are the datasets every read is compared on: small,
// the demo, datasets with quarantined organizations, the random datasets
// of the engine's oracle, other random ones and, unless short, tier S of
// package gen.
func conformanceDatasets(short bool) map[string]*model.Dataset {
	out := quarantineDatasets()
	out["small"], out["demo"], out["groups"] = small(), datafile.Demo(), withGroups(small())
	out["attributes"] = withAttributes(withGroups(small()))
	oracle := func(seed int64, depth int) gen.Spec {
		return gen.Spec{Seed: seed, Organizations: 3, Resources: 300, Assignments: 300, MembershipsPerOrg: 8,
			Depth: depth, Skew: 1.2, InactiveRatio: 0.2}
	}
	specs := []gen.Spec{oracle(1, 5), oracle(2, 4)}
	if !short {
		specs = append(specs, oracle(3, 5), oracle(4, 4),
			gen.Spec{Seed: 5, Organizations: 20, Resources: 2000, Assignments: 2500, MembershipsPerOrg: 5, Depth: 7, Skew: 1.1, InactiveRatio: 0.05},
			gen.Spec{Seed: 6, Organizations: 1, Resources: 500, Assignments: 50, Depth: 2})
	}
	for _, spec := range specs {
		out[fmt.Sprintf("gen seed %d depth %d", spec.Seed, spec.Depth)] = gen.Generate(spec)
	}
	if !short {
		tierS, _ := gen.Spec{Seed: 1}.Tier("S") // 100,000 resources: a few seconds
		out["gen tier S"] = gen.Generate(tierS)
	}
	return out
}

// TestReadsMatchInmem: for every path the policies read, the compact store
// returns what an in-memory store holding index.Build's document returns,
// values and errors alike.
func TestReadsMatchInmem(t *testing.T) {
	for name, ds := range conformanceDatasets(testing.Short()) {
		t.Run(name, func(t *testing.T) {
			if err := ds.Validate(); err != nil {
				t.Fatalf("the dataset is invalid: %v", err)
			}
			sameReads(t, loaded(t, ds, relstore.Options{}), newReference(t, ds))
		})
	}
}

// TestWholeReads: whole collections are refused with a clear error, and
// with Options.WholeReads they are materialized exactly as the in-memory
// store returns them.
func TestWholeReads(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 3, Resources: 300, Assignments: 300, Depth: 5})
	ref := newReference(t, ds)
	refusing, whole := loaded(t, ds, relstore.Options{}), loaded(t, ds, relstore.Options{WholeReads: true})
	for _, path := range append(wholePaths, storage.Path{index.Root, "tree_page"}, storage.Path{index.Root, "member_page"}, storage.Path{}) {
		_, err := storage.ReadOne(context.Background(), refusing, path)
		if !relstore.IsWholeCollection(err) || !strings.Contains(err.Error(), "whole collection") {
			t.Errorf("read %v: got error %v, want a whole-collection error", path, err)
		}
	}
	for _, path := range wholePaths {
		if msg := sameRead(whole, ref, path); msg != "" {
			t.Error(msg)
		}
	}
	got, err := storage.ReadOne(context.Background(), whole, storage.Path{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]any{index.Root: ref.document(t)}); diff != "" {
		t.Errorf("data root (-got +want):\n%s", diff)
	}
}

// TestExport: the exported JSON is index.Build's document.
func TestExport(t *testing.T) {
	for name, ds := range conformanceDatasets(true) {
		t.Run(name, func(t *testing.T) {
			s := loaded(t, ds, relstore.Options{})
			if diff := cmp.Diff(exported(t, s), jsonDocument(t, newReference(t, ds).document(t))); diff != "" {
				t.Errorf("export (-got +want):\n%s", diff)
			}
		})
	}
}

func exported(tb testing.TB, s *relstore.Store) any {
	tb.Helper()
	var buf bytes.Buffer
	ctx := context.Background()
	err := storage.Txn(ctx, s, storage.TransactionParams{}, func(txn storage.Transaction) error { return s.Export(ctx, txn, &buf) })
	if err != nil {
		tb.Fatalf("Export: %v", err)
	}
	return decodeJSON(tb, buf.Bytes())
}

// jsonDocument is doc as JSON decodes it, for comparing with an export.
func jsonDocument(tb testing.TB, doc map[string]any) any {
	tb.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return decodeJSON(tb, b)
}

func decodeJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("not JSON: %v\n%.300s", err, b)
	}
	return v
}

// chain is one organization whose resources form a single path of n
// resources below the root.
func chain(n, maxDepth int) *model.Dataset {
	ds := &model.Dataset{MaxDepth: maxDepth, Organizations: []model.Organization{{ID: "org_c"}}}
	parent := ""
	for i := 1; i <= n; i++ {
		typ := fmt.Sprintf("t%d", i)
		pt := model.OrganizationType
		if i > 1 {
			pt = fmt.Sprintf("t%d", i-1)
		}
		ds.ResourceTypes = append(ds.ResourceTypes, model.ResourceType{Slug: typ, ParentTypes: []string{pt}})
		id := fmt.Sprintf("r%d", i)
		ds.Resources = append(ds.Resources, model.Resource{ID: id, OrganizationID: "org_c", Type: typ, ExternalID: id, ParentID: parent})
		parent = id
	}
	return ds
}

// TestLoadRefusals: a dataset index.Build refuses is refused with the same
// error text, and the document stays as it was.
func TestLoadRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*model.Dataset)
	}{
		{"cycle", func(ds *model.Dataset) {
			ds.Resources = append(ds.Resources,
				model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "workspace", ExternalID: "x", ParentID: "r_y"},
				model.Resource{ID: "r_y", OrganizationID: "org_a", Type: "workspace", ExternalID: "y", ParentID: "r_x"})
		}},
		{"own parent", func(ds *model.Dataset) {
			ds.Resources = append(ds.Resources, model.Resource{ID: "r_x", OrganizationID: "org_a", Type: "workspace", ExternalID: "x", ParentID: "r_x"})
		}},
		{"too deep", func(ds *model.Dataset) { *ds = *chain(5, 0) }},
		{"too deep for a configured limit", func(ds *model.Dataset) { ds.MaxDepth = 2 }},
		{"unknown parent", func(ds *model.Dataset) { ds.Resources[1].ParentID = "r_nope" }},
		{"unknown organization", func(ds *model.Dataset) { ds.Resources[0].OrganizationID = "org_nope" }},
		{"unknown organization role", func(ds *model.Dataset) { ds.Memberships[0].RoleSlugs = []string{"nope"} }},
		{"another organization's role", func(ds *model.Dataset) { ds.Memberships[4].RoleSlugs = []string{"billing"} }},
		{"unknown assigned role", func(ds *model.Dataset) { ds.Assignments[0].RoleSlug = "nope" }},
		{"assignment of an unknown membership", func(ds *model.Dataset) { ds.Assignments[0].MembershipID = "om_nope" }},
		{"assignment on an unknown resource", func(ds *model.Dataset) { ds.Assignments[0].ResourceID = "r_nope" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := small()
			tc.mutate(ds)
			_, wantErr := index.Build(ds)
			if wantErr == nil {
				t.Fatal("index.Build accepts the dataset: the case tests nothing")
			}
			s := loaded(t, small(), relstore.Options{})
			ctx := context.Background()
			err := storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error { return s.Load(ctx, txn, ds) })
			if err == nil {
				t.Fatal("Load accepted the dataset")
			}
			if got, want := refusal(err.Error()), refusal(wantErr.Error()); got != want {
				t.Errorf("error %q, index.Build's %q", err, wantErr)
			}
			sameReads(t, s, newReference(t, small()))
		})
	}
}

// refusal is an error text with the resource it names left out: which
// resource of a cycle or of a too deep tree index.Build names depends on
// its map order.
func refusal(msg string) string {
	if i := strings.Index(msg, ": tree deeper"); strings.HasPrefix(msg, "resource ") && i > 0 {
		return "resource …" + msg[i:]
	}
	return msg
}

// TestLoadInvariants: data that index.Build would take but that breaks an
// invariant of the compact form (and model.Validate) is refused with
// ErrInvariant.
func TestLoadInvariants(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*model.Dataset)
	}{
		{"duplicate resource id", func(ds *model.Dataset) { ds.Resources[2].ID = ds.Resources[1].ID }},
		{"resource id of a root", func(ds *model.Dataset) { ds.Resources[0].ID = "root_b" }},
		{"duplicate external id", func(ds *model.Dataset) { ds.Resources[2].ExternalID = ds.Resources[1].ExternalID }},
		{"parent in another organization", func(ds *model.Dataset) { ds.Resources[3].ParentID = "r_ws1" }},
		{"duplicate organization", func(ds *model.Dataset) { ds.Organizations[1].ID = "org_a" }},
		{"duplicate membership", func(ds *model.Dataset) { ds.Memberships[1].ID = "om_1" }},
		{"roles in an unknown organization", func(ds *model.Dataset) { ds.Memberships[2].OrganizationID = "org_nope" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := small()
			tc.mutate(ds)
			if ds.Validate() == nil {
				t.Fatal("model.Validate accepts the dataset: the case tests nothing")
			}
			s := relstore.New(relstore.Options{})
			ctx := context.Background()
			err := storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error { return s.Load(ctx, txn, ds) })
			if !errors.Is(err, relstore.ErrInvariant) {
				t.Errorf("Load: %v, want ErrInvariant", err)
			}
		})
	}
}

// TestQuarantineAfterChanges: the quarantine entries stay as loaded through
// changes to the other organizations and a compaction, which renumbers
// their strings.
func TestQuarantineAfterChanges(t *testing.T) {
	for name, ds := range quarantineDatasets() {
		t.Run(name, func(t *testing.T) {
			s, ref := loaded(t, ds, relstore.Options{}), newReference(t, ds)
			batch := []model.Change{{Op: model.OpDelete, Organization: &model.Organization{ID: ds.Organizations[0].ID}}}
			if err := apply(s, 43, batch); err != nil {
				t.Fatal(err)
			}
			if err := ref.apply(43, batch); err != nil {
				t.Fatal(err)
			}
			s.Compact()
			sameReads(t, s, ref)
			if diff := cmp.Diff(exported(t, s), jsonDocument(t, ref.document(t))); diff != "" {
				t.Errorf("export (-got +want):\n%s", diff)
			}
		})
	}
}
