package authz_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// TestWalkUnderWrites walks every page of list-resources and of
// list-memberships, in both orders, while writers create resources (or
// memberships with a grant) and delete the ones they created: each that
// exists for the whole walk is listed exactly once, and nothing is listed
// that never existed. Run it with -race.
func TestWalkUnderWrites(t *testing.T) {
	ctx := context.Background()
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 2, Resources: 1500, Assignments: 500, Depth: 5, Wide: true})
	e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(ctx, ds); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, authz.Config{Engine: e})
	// The first workspace's resources, none of which a writer touches.
	resources := map[string]bool{}
	ws := gen.WideResource(0, -1, -1, -1)
	for _, r := range ds.Resources {
		if r.OrganizationID == gen.WideOrganization && (r.ID == ws || len(r.ID) > len(ws) && r.ID[:len(ws)+1] == ws+"p") {
			resources[r.ID] = true
		}
	}
	// The members of the second workspace (gen.WideMembers), and the
	// organization's admin.
	members := map[string]bool{gen.WideOrgMember: true}
	for _, a := range ds.Assignments {
		if a.ResourceID == gen.WideResource(1, -1, -1, -1) {
			members[a.MembershipID] = true
		}
	}
	for _, l := range []struct {
		name string
		stay map[string]bool
		want int
		// write makes writer w's i-th new entity and the changes that
		// create and delete it.
		write func(w, i int) (id string, create, del []model.Change)
		page  func(after string, desc bool) (authz.Page, error)
	}{
		{"resources", resources, 10_001, func(w, i int) (string, []model.Change, []model.Change) {
			// Beside and among the walked ones, in the first workspace's
			// projects and folders.
			parent := gen.WideResource(0, (i*7+w)%1000, (i+w)%3, -1)
			id := "authz_resource_walk_" + strconv.Itoa(w) + "_" + strconv.Itoa(i)
			r := model.Resource{ID: id, OrganizationID: gen.WideOrganization, Type: "document", ExternalID: id, Name: id, ParentID: parent}
			return id, []model.Change{{Op: model.OpUpsert, Resource: &r}}, []model.Change{{Op: model.OpDelete, Resource: &r}}
		}, func(after string, desc bool) (authz.Page, error) {
			p, _, err := svc.ListResources(ctx, authz.Subject{MembershipID: gen.WideWorkspaceMember},
				authz.ListRequest{Permission: "document:view", After: after, Descending: desc, Limit: 37}, authz.Consistency{})
			return p, err
		}},
		{"memberships", members, gen.WideMembers + 1, func(w, i int) (string, []model.Change, []model.Change) {
			// Ids among the walked ones.
			id := "om_wide_m" + strconv.Itoa((i*37+w)%gen.WideMembers) + "_walk_" + strconv.Itoa(w) + "_" + strconv.Itoa(i)
			m := model.Membership{ID: id, UserID: "user_" + id, OrganizationID: gen.WideOrganization, Status: model.StatusActive}
			a := model.Assignment{ID: "role_assignment_" + id, MembershipID: id, RoleSlug: "workspace-viewer", ResourceID: gen.WideResource(1, -1, -1, -1)}
			return id, []model.Change{{Op: model.OpUpsert, Membership: &m}, {Op: model.OpUpsert, Assignment: &a}},
				[]model.Change{{Op: model.OpDelete, Assignment: &a}, {Op: model.OpDelete, Membership: &m}}
		}, func(after string, desc bool) (authz.Page, error) {
			p, _, err := svc.ListMemberships(ctx, authz.MembersRequest{Permission: "document:view",
				Resource: authz.ResourceRef{ID: gen.WideCrowdedResource}, After: after, Descending: desc, Limit: 37}, authz.Consistency{})
			return p, err
		}},
	} {
		t.Run(l.name, func(t *testing.T) {
			if len(l.stay) != l.want {
				t.Fatalf("%d %s there all along, want %d", len(l.stay), l.name, l.want)
			}
			walkUnderWrites(t, e, l.stay, l.write, l.page)
		})
	}
}

// walkUnderWrites walks all pages of a list (page) three times, while 4
// writers create entities and delete them again (write), and checks what
// each walk lists against stay, the entities there all along.
func walkUnderWrites(t *testing.T, e *engine.Engine, stay map[string]bool,
	write func(w, i int) (string, []model.Change, []model.Change), page func(after string, desc bool) (authz.Page, error)) {
	ctx := context.Background()
	var (
		mu      sync.Mutex
		created = map[string]bool{}
		rev     = e.Revision()
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	apply := func(chs []model.Change) error {
		mu.Lock()
		defer mu.Unlock()
		rev++
		return e.Apply(ctx, rev, chs)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ { // until the walks end
				select {
				case <-stop:
					return
				default:
				}
				id, create, del := write(w, i)
				// Marked before it exists: a walk that ends between the
				// create and the mark must not count it as never created.
				mu.Lock()
				created[id] = true
				mu.Unlock()
				if err := apply(create); err != nil {
					t.Error(err)
					return
				}
				if err := apply(del); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	walk := func(desc bool) error {
		seen := map[string]int{}
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10_000 {
				return fmt.Errorf("no end after %d pages", pages)
			}
			p, err := page(after, desc)
			if err != nil {
				return err
			}
			for _, id := range p.IDs {
				seen[id]++
			}
			if !p.HasMore {
				break
			}
			after = p.Positions[len(p.Positions)-1]
		}
		mu.Lock()
		defer mu.Unlock()
		for id := range stay {
			if seen[id] != 1 {
				return fmt.Errorf("desc %v: %s, there all along, listed %d times", desc, id, seen[id])
			}
		}
		for id, n := range seen {
			if !stay[id] && !created[id] || n != 1 {
				return fmt.Errorf("desc %v: %s listed %d times (created by a writer: %v)", desc, id, n, created[id])
			}
		}
		return nil
	}
	for _, desc := range []bool{false, true, false} {
		before := e.Revision()
		if err := walk(desc); err != nil {
			t.Error(err)
		}
		if during := e.Revision() - before; during == 0 {
			t.Errorf("desc %v: no write during the walk", desc)
		} else {
			t.Logf("desc %v: %d writes during the walk", desc, during)
		}
	}
	close(stop)
	wg.Wait()
}
