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

// TestWalkUnderWrites walks every page of list-resources, in both orders,
// while writers create resources and delete the ones they created: each
// resource that exists for the whole walk is listed exactly once, and
// nothing is listed that never existed. Run it with -race.
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
	stay := map[string]bool{} // the workspace's resources, none of which a writer touches
	ws := gen.WideResource(0, -1, -1, -1)
	for _, r := range ds.Resources {
		if r.OrganizationID == gen.WideOrganization && (r.ID == ws || len(r.ID) > len(ws) && r.ID[:len(ws)+1] == ws+"p") {
			stay[r.ID] = true
		}
	}
	var (
		mu      sync.Mutex
		created = map[string]bool{}
		rev     = ds.Revision
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	apply := func(ch model.Change) error {
		mu.Lock()
		defer mu.Unlock()
		rev++
		return e.Apply(ctx, rev, []model.Change{ch})
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
				// New resources beside and among the walked ones (in
				// the first workspace's projects and folders), deleted
				// again one step later.
				parent := gen.WideResource(0, (i*7+w)%1000, (i+w)%3, -1)
				id := "authz_resource_walk_" + strconv.Itoa(w) + "_" + strconv.Itoa(i)
				r := model.Resource{ID: id, OrganizationID: gen.WideOrganization, Type: "document", ExternalID: id, Name: id, ParentID: parent}
				if err := apply(model.Change{Op: model.OpUpsert, Resource: &r}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				created[id] = true
				mu.Unlock()
				if err := apply(model.Change{Op: model.OpDelete, Resource: &r}); err != nil {
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
			p, _, err := svc.ListResources(ctx, authz.Subject{MembershipID: gen.WideWorkspaceMember},
				authz.ListRequest{Permission: "document:view", After: after, Descending: desc, Limit: 37}, authz.Consistency{})
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
	if len(stay) != 10_001 {
		t.Errorf("%d resources in the first workspace, want 10,001", len(stay))
	}
}
