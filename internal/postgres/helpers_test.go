package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore returns a migrated Store on a fresh database.
// demoStore returns a store on a new database holding the demo dataset.
func demoStore(t testing.TB) *postgres.Store {
	t.Helper()
	s, _ := newStore(t)
	if _, err := s.Import(context.Background(), datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	return s
}

func newStore(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.URL(t)
	return openStore(t, dsn), dsn
}

func openStore(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// memApplier is a reference Applier: it keeps the dataset in maps and
// applies changes literally, so tests can compare what the change feed
// delivered with a fresh snapshot.
type memApplier struct {
	mu       sync.Mutex
	rev      int64
	maxDepth int
	loads    int
	applies  int
	orgs     map[string]model.Organization
	members  map[string]model.Membership
	types    map[string]model.ResourceType
	perms    map[string]model.Permission
	roles    map[string]model.Role
	res      map[string]model.Resource
	assigns  map[string]model.Assignment
	held     map[string]model.Quarantine
	changed  chan struct{}
	// gate, if set, is called with each revision before it is applied.
	gate func(rev int64)
}

func newMemApplier() *memApplier { return &memApplier{changed: make(chan struct{}, 1)} }

func (m *memApplier) LoadDataset(_ context.Context, ds *model.Dataset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.orgs, m.members, m.types, m.perms = map[string]model.Organization{}, map[string]model.Membership{}, map[string]model.ResourceType{}, map[string]model.Permission{}
	m.roles, m.res, m.assigns = map[string]model.Role{}, map[string]model.Resource{}, map[string]model.Assignment{}
	m.held = map[string]model.Quarantine{}
	for _, q := range ds.Quarantined {
		m.held[q.Organization] = q
	}
	for _, o := range ds.Organizations {
		m.orgs[o.ID] = o
	}
	for _, x := range ds.Memberships {
		m.members[x.ID] = x
	}
	for _, x := range ds.ResourceTypes {
		m.types[x.Slug] = x
	}
	for _, x := range ds.Permissions {
		m.perms[x.Slug] = x
	}
	for _, x := range ds.Roles {
		m.roles[x.Key()] = x
	}
	for _, x := range ds.Resources {
		m.res[x.ID] = x
	}
	for _, x := range ds.Assignments {
		m.assigns[x.ID] = x
	}
	m.rev, m.maxDepth = ds.Revision, ds.MaxDepth
	m.loads++
	m.signal()
	return nil
}

func (m *memApplier) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *memApplier) Apply(_ context.Context, rev int64, changes []model.Change) error {
	if m.gate != nil {
		m.gate(rev)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev <= m.rev {
		return fmt.Errorf("revision %d applied after %d", rev, m.rev)
	}
	for _, c := range changes {
		del := c.Op == model.OpDelete
		switch {
		case c.Organization != nil:
			putOrDelete(m.orgs, del, c.Organization.ID, *c.Organization)
		case c.Membership != nil:
			putOrDelete(m.members, del, c.Membership.ID, *c.Membership)
		case c.ResourceType != nil:
			putOrDelete(m.types, del, c.ResourceType.Slug, *c.ResourceType)
		case c.Permission != nil:
			putOrDelete(m.perms, del, c.Permission.Slug, *c.Permission)
		case c.Role != nil:
			putOrDelete(m.roles, del, c.Role.Key(), *c.Role)
		case c.Resource != nil:
			putOrDelete(m.res, del, c.Resource.ID, *c.Resource)
		case c.Assignment != nil:
			putOrDelete(m.assigns, del, c.Assignment.ID, *c.Assignment)
		default:
			return fmt.Errorf("revision %d: empty change", rev)
		}
	}
	m.rev = rev
	m.applies++
	m.signal()
	return nil
}

// Quarantine removes the organizations' rows and keeps their ids.
func (m *memApplier) Quarantine(_ context.Context, orgs []string) ([]model.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var qs []model.Quarantine
	for _, org := range orgs {
		q := m.remove(org)
		m.held[org] = q
		qs = append(qs, q)
	}
	m.signal()
	return qs, nil
}

// PutOrganization replaces one organization's rows with part's.
func (m *memApplier) PutOrganization(_ context.Context, org string, part *model.Dataset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remove(org)
	delete(m.held, org)
	if q := part.QuarantineOf(org); q != nil {
		m.held[org] = *q
		m.signal()
		return nil
	}
	for _, x := range part.Organizations {
		m.orgs[x.ID] = x
	}
	for _, x := range part.Roles {
		if x.OrganizationID == org {
			m.roles[x.Key()] = x
		}
	}
	for _, x := range part.Memberships {
		m.members[x.ID] = x
	}
	for _, x := range part.Resources {
		m.res[x.ID] = x
	}
	for _, x := range part.Assignments {
		m.assigns[x.ID] = x
	}
	m.signal()
	return nil
}

// remove deletes org's rows and returns its quarantine, without problems.
func (m *memApplier) remove(org string) model.Quarantine {
	q := model.Quarantine{Organization: org}
	if o, ok := m.orgs[org]; ok {
		q.Resources = append(q.Resources, o.RootID())
		delete(m.orgs, org)
	}
	for id, x := range m.res {
		if x.OrganizationID == org {
			q.Resources = append(q.Resources, id)
			delete(m.res, id)
		}
	}
	for id, x := range m.members {
		if x.OrganizationID == org {
			q.Memberships = append(q.Memberships, id)
			delete(m.members, id)
		}
	}
	for key, x := range m.roles {
		if x.OrganizationID == org {
			delete(m.roles, key)
		}
	}
	ours := map[string]bool{}
	for _, id := range append(q.Resources, q.Memberships...) {
		ours[id] = true
	}
	for id, x := range m.assigns {
		if ours[x.MembershipID] || ours[x.ResourceID] {
			delete(m.assigns, id)
		}
	}
	return q
}

// dataset returns the applier's data as a Dataset, sorted.
func (m *memApplier) dataset() *model.Dataset {
	m.mu.Lock()
	defer m.mu.Unlock()
	ds := &model.Dataset{Revision: m.rev, MaxDepth: m.maxDepth}
	for _, x := range m.orgs {
		ds.Organizations = append(ds.Organizations, x)
	}
	for _, x := range m.members {
		ds.Memberships = append(ds.Memberships, x)
	}
	for _, x := range m.types {
		ds.ResourceTypes = append(ds.ResourceTypes, x)
	}
	for _, x := range m.perms {
		ds.Permissions = append(ds.Permissions, x)
	}
	for _, x := range m.roles {
		ds.Roles = append(ds.Roles, x)
	}
	for _, x := range m.res {
		ds.Resources = append(ds.Resources, x)
	}
	for _, x := range m.assigns {
		ds.Assignments = append(ds.Assignments, x)
	}
	return sortDataset(ds)
}

// applierCounts are how often a memApplier loaded a dataset and applied
// a batch of changes.
type applierCounts struct{ loads, applies int }

func (m *memApplier) counts() applierCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return applierCounts{m.loads, m.applies}
}

func (m *memApplier) revision() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// sortDataset orders every slice (and list field) so datasets compare.
func sortDataset(ds *model.Dataset) *model.Dataset {
	sort.Slice(ds.Organizations, func(i, j int) bool { return ds.Organizations[i].ID < ds.Organizations[j].ID })
	sort.Slice(ds.Memberships, func(i, j int) bool { return ds.Memberships[i].ID < ds.Memberships[j].ID })
	for i := range ds.Memberships {
		sort.Strings(ds.Memberships[i].RoleSlugs)
		if len(ds.Memberships[i].RoleSlugs) == 0 {
			ds.Memberships[i].RoleSlugs = nil
		}
	}
	sort.Slice(ds.ResourceTypes, func(i, j int) bool { return ds.ResourceTypes[i].Slug < ds.ResourceTypes[j].Slug })
	for i := range ds.ResourceTypes {
		sort.Strings(ds.ResourceTypes[i].ParentTypes)
	}
	sort.Slice(ds.Permissions, func(i, j int) bool { return ds.Permissions[i].Slug < ds.Permissions[j].Slug })
	sort.Slice(ds.Roles, func(i, j int) bool { return ds.Roles[i].Key() < ds.Roles[j].Key() })
	for i := range ds.Roles {
		sort.Strings(ds.Roles[i].Permissions)
		if len(ds.Roles[i].Permissions) == 0 {
			ds.Roles[i].Permissions = nil
		}
	}
	sort.Slice(ds.Resources, func(i, j int) bool { return ds.Resources[i].ID < ds.Resources[j].ID })
	sort.Slice(ds.Assignments, func(i, j int) bool { return ds.Assignments[i].ID < ds.Assignments[j].ID })
	return ds
}

// document builds the data document of ds as JSON-shaped values, for
// cmp.Diff.
func document(t testing.TB, ds *model.Dataset) any {
	t.Helper()
	doc, err := index.BuildAST(ds)
	if err != nil {
		t.Fatalf("index.Build: %v", err)
	}
	var v any
	if err := json.Unmarshal([]byte(doc.String()), &v); err != nil {
		t.Fatalf("document JSON: %v", err)
	}
	return v
}

// sameDocument fails the test when two datasets build different data
// documents (revisions aside).
func sameDocument(t testing.TB, got, want *model.Dataset) {
	t.Helper()
	g, w := *got, *want
	g.Revision, w.Revision = 0, 0
	if diff := cmp.Diff(document(t, &w), document(t, &g)); diff != "" {
		t.Fatalf("data documents differ (-want +got):\n%s", diff)
	}
}

func asValidation(err error, target **postgres.ValidationError) bool {
	return err != nil && errors.As(err, target)
}

// putOrDelete sets m[k] to v, or deletes k when del.
func putOrDelete[K comparable, V any](m map[K]V, del bool, k K, v V) {
	if del {
		delete(m, k)
		return
	}
	m[k] = v
}
