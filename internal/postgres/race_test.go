package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/postgres/postgrestest"
)

// racePairs is how many pairs of concurrent writes each race sends.
const racePairs = 50

// raceOrg is the organization the races write in.
const raceOrg = "org_race"

// raceSchema is the base every race builds on: types t1 … t5, each of which
// may be under the organization root or any type before it, so that types
// never bound a tree and only max depth (5, the root included) does.
func raceSchema() []model.Change {
	cs := []model.Change{upsert(&model.Organization{ID: raceOrg, Name: "Race"})}
	parents := []string{model.OrganizationType}
	for i := 1; i <= 5; i++ {
		slug := fmt.Sprint("t", i)
		cs = append(cs, upsert(&model.ResourceType{Slug: slug, Name: slug, ParentTypes: append([]string(nil), parents...)}))
		parents = append(parents, slug)
	}
	return append(cs, raceResource("authz_resource_p", "t1", ""))
}

func raceResource(id, typ, parent string) model.Change {
	return upsert(&model.Resource{ID: id, OrganizationID: raceOrg, Type: typ, ExternalID: id, Name: id, ParentID: parent})
}

func raceType(slug string, parents ...string) model.Change {
	return upsert(&model.ResourceType{Slug: slug, Name: slug, ParentTypes: parents})
}

// race is a pair of writes that are each valid alone and together break
// the rule whose code is code. Pair i uses its own entities, set up by
// setup(i) (and plant(i), SQL run after the setup, when set).
type race struct {
	name   string
	setup  func(i int) []model.Change
	plant  func(i int) string
	writes [2]func(i int) []model.Change
	code   string
	// ignore is a rule of postgrestest that the setup breaks on purpose.
	ignore string
}

var races = []race{
	{
		// root > a, b, c > d > e: c under b reaches depth 5, b under a
		// depth 3; both make e depth 6.
		name: "re-parents exceeding max depth",
		setup: func(i int) []model.Change {
			id := func(s string) string { return fmt.Sprintf("authz_resource_%s%d", s, i) }
			return []model.Change{raceResource(id("a"), "t1", ""), raceResource(id("b"), "t2", ""),
				raceResource(id("c"), "t3", ""), raceResource(id("d"), "t4", id("c")), raceResource(id("e"), "t5", id("d"))}
		},
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{raceResource(fmt.Sprint("authz_resource_c", i), "t3", fmt.Sprint("authz_resource_b", i))}
			},
			func(i int) []model.Change {
				return []model.Change{raceResource(fmt.Sprint("authz_resource_b", i), "t2", fmt.Sprint("authz_resource_a", i))}
			},
		},
		code: model.CodeDepthExceeded,
	},
	{
		// Types u and v may each be under the other (planted in SQL: the
		// write path refuses type cycles, and without one no two resources
		// can be each other's parent), m (u) and n (v) under the root.
		name: "re-parents forming a cycle",
		setup: func(i int) []model.Change {
			u, v := fmt.Sprint("u", i), fmt.Sprint("v", i)
			return []model.Change{raceType(u, model.OrganizationType), raceType(v, model.OrganizationType, u),
				raceResource(fmt.Sprint("authz_resource_m", i), u, ""), raceResource(fmt.Sprint("authz_resource_n", i), v, "")}
		},
		plant: func(i int) string {
			return fmt.Sprintf("INSERT INTO resource_type_parents VALUES ('u%d', 'v%d')", i, i)
		},
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{raceResource(fmt.Sprint("authz_resource_m", i), fmt.Sprint("u", i), fmt.Sprint("authz_resource_n", i))}
			},
			func(i int) []model.Change {
				return []model.Change{raceResource(fmt.Sprint("authz_resource_n", i), fmt.Sprint("v", i), fmt.Sprint("authz_resource_m", i))}
			},
		},
		code:   model.CodeCycle,
		ignore: "type_cycle",
	},
	{
		// Type x may be under the root or a t1; resource x is under the
		// root. One write drops t1 from x's parent types, the other moves
		// x under p (a t1).
		name: "narrowing parent types vs moving under the removed type",
		setup: func(i int) []model.Change {
			x := fmt.Sprint("x", i)
			return []model.Change{raceType(x, model.OrganizationType, "t1"), raceResource(fmt.Sprint("authz_resource_x", i), x, "")}
		},
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{raceType(fmt.Sprint("x", i), model.OrganizationType)}
			},
			func(i int) []model.Change {
				return []model.Change{raceResource(fmt.Sprint("authz_resource_x", i), fmt.Sprint("x", i), "authz_resource_p")}
			},
		},
		code: model.CodeParentTypeNotAllowed,
	},
	{
		// Type w is below t1; role r (t1) gets permission w:use while w
		// stops being below t1.
		name: "adding a descendant-type permission vs narrowing the type",
		setup: func(i int) []model.Change {
			w := fmt.Sprint("w", i)
			return []model.Change{raceType(w, model.OrganizationType, "t1"),
				upsert(&model.Permission{Slug: w + ":use", Name: w, ResourceType: w}),
				upsert(&model.Role{Slug: fmt.Sprint("r", i), Name: "r", ResourceType: "t1", Permissions: []string{}})}
		},
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{upsert(&model.Role{Slug: fmt.Sprint("r", i), Name: "r", ResourceType: "t1",
					Permissions: []string{fmt.Sprint("w", i, ":use")}})}
			},
			func(i int) []model.Change {
				return []model.Change{raceType(fmt.Sprint("w", i), model.OrganizationType)}
			},
		},
		code: model.CodePermissionTypeNotAllowed,
	},
	{
		// y under z and z under y: each alone a valid type graph.
		name: "parent types forming a type cycle",
		setup: func(i int) []model.Change {
			return []model.Change{raceType(fmt.Sprint("y", i), model.OrganizationType), raceType(fmt.Sprint("z", i), model.OrganizationType)}
		},
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{raceType(fmt.Sprint("y", i), model.OrganizationType, fmt.Sprint("z", i))}
			},
			func(i int) []model.Change {
				return []model.Change{raceType(fmt.Sprint("z", i), model.OrganizationType, fmt.Sprint("y", i))}
			},
		},
		code: model.CodeCycle,
	},
	{
		// An environment role and an organization role of one slug.
		name:  "environment and organization role of one slug",
		setup: func(int) []model.Change { return nil },
		writes: [2]func(int) []model.Change{
			func(i int) []model.Change {
				return []model.Change{upsert(&model.Role{Slug: fmt.Sprint("s", i), Name: "s", ResourceType: model.OrganizationType, Permissions: []string{}})}
			},
			func(i int) []model.Change {
				return []model.Change{upsert(&model.Role{Slug: fmt.Sprint("s", i), Name: "s", ResourceType: model.OrganizationType,
					OrganizationID: raceOrg, Permissions: []string{}})}
			},
		},
		code: model.CodeDuplicate,
	},
}

// TestRulesHoldUnderConcurrentWrites sends each race's pairs of writes at
// once through POST /v1/admin/changes: in every pair exactly one write
// succeeds and the other is refused with the rule's code, and afterwards
// no row of the database breaks a rule.
func TestRulesHoldUnderConcurrentWrites(t *testing.T) {
	for _, rc := range races {
		t.Run(rc.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newStore(t)
			setup := raceSchema()
			for i := range racePairs {
				setup = append(setup, rc.setup(i)...)
			}
			if _, err := s.Write(ctx, setup); err != nil {
				t.Fatal(err)
			}
			for i := 0; rc.plant != nil && i < racePairs; i++ {
				if _, err := s.DB().ExecContext(ctx, rc.plant(i)); err != nil {
					t.Fatal(err)
				}
			}
			admin := postgrestest.AdminServer(t, s)
			for i := range racePairs {
				var got [2]postgrestest.AdminAnswer
				var wg sync.WaitGroup
				start := make(chan struct{})
				for w := range 2 {
					wg.Go(func() {
						<-start
						var err error
						if got[w], err = postgrestest.PostChanges(admin, rc.writes[w](i)); err != nil {
							t.Error(err)
						}
					})
				}
				close(start)
				wg.Wait()
				oneRefused(t, i, got, rc.code)
			}
			lines, err := postgrestest.Violations(ctx, s.DB(), model.DefaultMaxDepth)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines {
				if rc.ignore == "" || !strings.HasPrefix(l, rc.ignore+":") {
					t.Errorf("violation after the race: %s", l)
				}
			}
		})
	}
}

// oneRefused requires that of pair i's two answers exactly one is a
// success and the other a 409 or 422 with code.
func oneRefused(t testing.TB, i int, got [2]postgrestest.AdminAnswer, code string) {
	t.Helper()
	ok := 0
	for _, a := range got {
		switch {
		case a.Status == http.StatusOK:
			ok++
		case (a.Status == http.StatusUnprocessableEntity || a.Status == http.StatusConflict) && a.Code == code:
		default:
			t.Errorf("pair %d: a write answered %d %s, want 200 or a 409/422 %q", i, a.Status, a.Body, code)
		}
	}
	if ok != 1 {
		t.Errorf("pair %d: %d of 2 writes succeeded, want exactly 1: %+v", i, ok, got)
	}
}

// TestUnrelatedWritesCommitAtFirstAttempt: two write transactions open at
// the same time that touch unrelated data both commit without a retry, so
// the commit-time revision allocation (an advisory lock, the change log and
// change_revisions) does not make every pair of writes conflict.
func TestUnrelatedWritesCommitAtFirstAttempt(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	writes := [2][]model.Change{
		{upsert(&model.Permission{Slug: "report:read", Name: "Read reports", ResourceType: model.OrganizationType})},
		{upsert(&model.Membership{ID: "om_new", UserID: "user_new", OrganizationID: "org_acme", Status: model.StatusActive, RoleSlugs: []string{}})},
	}
	var runs [2]atomic.Int32
	written := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var revs [2]int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			rev, err := s.WriteTx(ctx, func(tx *postgres.Tx) error {
				if err := tx.Apply(writes[w]); err != nil {
					return err
				}
				if runs[w].Add(1) == 1 {
					// Commit only once the other transaction has written too.
					close(written[w])
					select {
					case <-written[1-w]:
					case <-time.After(10 * time.Second):
						return errors.New("the other write did not start")
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			revs[w] = rev
		})
	}
	wg.Wait()
	for w := range 2 {
		if n := runs[w].Load(); n != 1 {
			t.Errorf("write %d ran %d times, want once", w, n)
		}
	}
	if revs[0] == revs[1] || revs[0] == 0 || revs[1] == 0 {
		t.Errorf("revisions %v, want two distinct ones", revs)
	}
}
