package relstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// TestConcurrentApplyAndReads: while writers apply batches (one moves two
// projects together between two workspaces, another adds and removes
// assignments and reloads the whole dataset), readers never see a batch in
// part: within one read transaction both projects have the same parent, and
// the one the revision says. Run with -race.
func TestConcurrentApplyAndReads(t *testing.T) {
	ds := small()
	ds.Revision = 0
	ds.Resources = append(ds.Resources, model.Resource{ID: "r_ws2", OrganizationID: "org_a", Type: "workspace", ExternalID: "w2"})
	s := loaded(t, ds, relstore.Options{})
	ctx := context.Background()
	const batches = 300
	move := func(parent string) []model.Change {
		var chs []model.Change
		for _, p := range []string{"r_p1", "r_p2"} {
			r := model.Resource{ID: p, OrganizationID: "org_a", Type: "project", ExternalID: p[2:], ParentID: parent}
			chs = append(chs, model.Change{Op: model.OpUpsert, Resource: &r})
		}
		return chs
	}

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	wg.Add(1)
	go func() { // the mover: even revisions have the projects under r_ws1, odd under r_ws2
		defer wg.Done()
		defer done.Store(true)
		for rev := int64(1); rev <= batches; rev++ {
			parent := map[bool]string{false: "r_ws1", true: "r_ws2"}[rev%2 == 1]
			if err := apply(s, rev, move(parent)); err != nil {
				errs <- fmt.Errorf("move at revision %d: %w", rev, err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // the churner: grants in another organization, and reloads
		defer wg.Done()
		a := model.Assignment{ID: "ra_x", MembershipID: "om_3", RoleSlug: "ws-admin", ResourceID: "r_wsb"}
		for i := 0; !done.Load() && i < 10*batches; i++ {
			txn, err := s.NewTransaction(ctx, storage.WriteParams)
			if err != nil {
				errs <- err
				return
			}
			rev, err := readRevision(s, txn)
			if err == nil {
				op := []model.Op{model.OpUpsert, model.OpDelete}[i%2]
				err = s.Apply(ctx, txn, rev, []model.Change{{Op: op, Assignment: &a}})
			}
			if err != nil {
				s.Abort(ctx, txn)
				errs <- fmt.Errorf("churn: %w", err)
				return
			}
			if i%3 == 0 {
				s.Abort(ctx, txn) // and nothing happened
			} else if err := s.Commit(ctx, txn); err != nil {
				errs <- err
				return
			}
		}
	}()
	var reads atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Minute)
			for !done.Load() && time.Now().Before(deadline) {
				if err := consistentRead(s); err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads.Load() == 0 {
		t.Error("no reads ran alongside the writers")
	}
	t.Logf("%d read transactions alongside %d batches", reads.Load(), batches)
}

// consistentRead reads both projects and the revision in one transaction.
func consistentRead(s *relstore.Store) error {
	ctx := context.Background()
	txn, err := s.NewTransaction(ctx)
	if err != nil {
		return err
	}
	defer s.Abort(ctx, txn)
	rev, err := readRevision(s, txn)
	if err != nil {
		return err
	}
	want := map[bool]string{false: "r_ws1", true: "r_ws2"}[rev%2 == 1]
	for _, p := range []string{"r_p1", "r_p2"} {
		v, err := s.Read(ctx, txn, storage.Path{index.Root, "resources", p, "3", "1"})
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if v != want {
			return fmt.Errorf("revision %d: %s is under %v, want %s: a batch seen in part", rev, p, v, want)
		}
	}
	return nil
}

func readRevision(s *relstore.Store, txn storage.Transaction) (int64, error) {
	v, err := s.Read(context.Background(), txn, storage.Path{index.Root, "revision"})
	if err != nil {
		return 0, err
	}
	return v.(json.Number).Int64()
}

// TestConcurrentLoad: a reload builds outside the lock and swaps in whole;
// readers see the old document or the new one.
func TestConcurrentLoad(t *testing.T) {
	a := gen.Generate(gen.Spec{Seed: 1, Organizations: 2, Resources: 2000, Assignments: 2000, Depth: 4})
	b := gen.Generate(gen.Spec{Seed: 2, Organizations: 2, Resources: 3000, Assignments: 2000, Depth: 4})
	a.Revision, b.Revision = 1, 2
	s := loaded(t, a, relstore.Options{})
	ctx := context.Background()
	inOrg := func(ds *model.Dataset) int { // org_1's resources, its root included
		n := 0
		for _, v := range newReference(t, ds).document(t)["resources"].(map[string]any) {
			if v.([]any)[0] == "org_1" {
				n++
			}
		}
		return n
	}
	counts := map[int64]int{1: inOrg(a), 2: inOrg(b)} // revision → the root's tree
	page := `{"starts":["authz_resource_root_org_1"],"limit":10000}`
	var done atomic.Bool
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				err := storage.Txn(ctx, s, storage.TransactionParams{}, func(txn storage.Transaction) error {
					rev, err := readRevision(s, txn)
					if err != nil {
						return err
					}
					v, err := s.Read(ctx, txn, storage.Path{index.Root, "tree_page", page})
					if err != nil {
						return err
					}
					if n := len(v.(map[string]any)["paths"].([]any)); n != counts[rev] {
						return fmt.Errorf("revision %d with %d resources in the root's tree, want %d", rev, n, counts[rev])
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 20 {
		ds := []*model.Dataset{b, a}[i%2]
		if err := storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error { return s.Load(ctx, txn, ds) }); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
