package workosdb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
)

// The HTTP behaviour of this store is checked by the conformance suite of
// package workos (routes_test.go runs every route against it). These tests
// cover what HTTP tests cannot pin down: concurrency and atomicity.

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t testing.TB) (*workosdb.Store, *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	pg, err := postgres.Open(ctx, pgtest.URL(t), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return workosdb.New(pg), pg
}

// TestConcurrentCreates: of several concurrent creates of one key, exactly
// one succeeds and the others are conflicts.
func TestConcurrentCreates(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	org, _, err := s.CreateOrganization(ctx, workos.OrganizationInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		create func(i int) error
	}{
		{"permission", func(int) error {
			_, _, err := s.CreatePermission(ctx, workos.PermissionInput{Slug: "doc:read", Name: "Read", ResourceTypeSlug: "organization"})
			return err
		}},
		{"membership", func(int) error {
			_, _, err := s.CreateMembership(ctx, workos.MembershipInput{OrganizationID: org.ID, UserID: "user_1"})
			return err
		}},
		{"organization external id", func(i int) error {
			_, _, err := s.CreateOrganization(ctx, workos.OrganizationInput{Name: fmt.Sprint(i), ExternalID: "ext"})
			return err
		}},
		{"role slug, environment and custom", func(i int) error {
			orgID := ""
			if i%2 == 1 {
				orgID = org.ID
			}
			_, _, err := s.CreateRole(ctx, orgID, workos.RoleInput{Slug: "admin", Name: "Admin", ResourceTypeSlug: "organization"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 6
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { errs[i] = tc.create(i) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, workos.ErrConflict):
					t.Errorf("a concurrent create failed with %v, want a conflict", err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent creates succeeded, want 1", ok, n)
			}
		})
	}
}

// TestFailedWriteChangesNothing: a write that fails part-way leaves the
// data and the change feed as they were.
func TestFailedWriteChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, pg := newStore(t)
	for _, slug := range []string{"a:read", "a:write"} {
		if _, _, err := s.CreatePermission(ctx, workos.PermissionInput{Slug: slug, Name: slug, ResourceTypeSlug: "organization"}); err != nil {
			t.Fatal(err)
		}
	}
	role, _, err := s.CreateRole(ctx, "", workos.RoleInput{Slug: "member", Name: "Member", ResourceTypeSlug: "organization"})
	if err != nil {
		t.Fatal(err)
	}
	head, err := pg.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "Renamed"
	for _, tc := range []struct {
		name string
		u    workos.RoleUpdate
		want error
	}{
		// The rename and the set are applied before the removal fails.
		{"remove an absent permission", workos.RoleUpdate{Name: &name, SetPermissions: &[]string{"a:read"}, RemovePermissions: []string{"a:write"}}, workos.ErrNotFound},
		{"unknown permission", workos.RoleUpdate{Name: &name, AddPermissions: []string{"a:read", "nope"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.UpdateRole(ctx, "", "member", tc.u)
			var ve *workos.ValidationError
			switch {
			case err == nil:
				t.Fatal("the update succeeded")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			case tc.want == nil && !errors.As(err, &ve):
				t.Fatalf("error %v, want a *workos.ValidationError", err)
			}
			got, err := s.GetRole(ctx, "", "member")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, role); d != "" {
				t.Errorf("role after a failed update (-got +want):\n%s", d)
			}
			if h, _ := pg.Head(ctx); h != head {
				t.Errorf("head revision %d after a failed write, want %d", h, head)
			}
		})
	}
}

// TestPagesUnderConcurrentInserts: walking a list page by page while
// organizations are created returns every organization that existed for the
// whole walk exactly once, in id order.
func TestPagesUnderConcurrentInserts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var before []string
	for i := range 30 {
		o, _, err := s.CreateOrganization(ctx, workos.OrganizationInput{Name: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, o.ID)
	}
	if !slices.IsSorted(before) {
		t.Fatalf("ids are not in creation order: %v", before)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := s.CreateOrganization(ctx, workos.OrganizationInput{Name: fmt.Sprint("late ", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var seen []string
	after := ""
	for {
		page, err := s.ListOrganizations(ctx, workos.OrganizationFilter{}, workos.ListOptions{After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			seen = append(seen, o.ID)
		}
		if len(page) < 7 || len(seen) > 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	close(stop)
	wg.Wait()
	if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
		t.Fatalf("pages are not in strictly increasing id order: %v", seen)
	}
	for _, id := range before {
		if _, found := slices.BinarySearch(seen, id); !found {
			t.Errorf("organization %s, created before the walk, was skipped", id)
		}
	}
}

// TestImportRolePriorityAndDefault: an imported data file's roles follow
// the database's in the file's order, and its default_role becomes the
// environment's default role, replacing the one set before.
func TestImportRolePriorityAndDefault(t *testing.T) {
	ctx := context.Background()
	s, pg := newStore(t)
	if _, _, err := s.CreateRole(ctx, "", workos.RoleInput{Slug: "first", Name: "First", ResourceTypeSlug: model.OrganizationType}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDefaultRole(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	ds := &model.Dataset{DefaultRole: "viewer", Roles: []model.Role{
		{Slug: "zeta", Name: "Zeta", ResourceType: model.OrganizationType, Permissions: []string{}},
		{Slug: "viewer", Name: "Viewer", ResourceType: model.OrganizationType, Permissions: []string{}},
		{Slug: "alpha", Name: "Alpha", ResourceType: model.OrganizationType, Permissions: []string{}},
	}}
	if _, err := pg.Import(ctx, ds); err != nil {
		t.Fatal(err)
	}
	roles, err := s.ListRoles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range roles {
		got = append(got, r.Slug)
	}
	if want := []string{"first", "zeta", "viewer", "alpha"}; !slices.Equal(got, want) {
		t.Errorf("roles after the import = %v, want %v", got, want)
	}
	if def, err := s.DefaultRole(ctx); err != nil || def != "viewer" {
		t.Errorf("default role after the import = %q (%v), want viewer", def, err)
	}
}
