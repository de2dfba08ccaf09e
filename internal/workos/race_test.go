package workos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/postgres/postgrestest"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
)

// racePairs is how many pairs of concurrent writes each race sends.
const racePairs = 50

// request is one WorkOS API request.
type request struct {
	method, path string
	body         obj
}

// race is a pair of WorkOS requests that are each valid alone and together
// break a rule. Pair i uses its own entities, created by setup (and by
// plant, SQL run after the setup, when set). refused is what each side
// answers when it is the one refused: "status code", the code of a 422
// being its errors[0].code.
type race struct {
	name    string
	setup   func(e *env, org string, i int)
	plant   func(i int) string
	writes  [2]func(org string, i int) request
	refused [2]string
	// ignore is a rule of postgrestest that the setup breaks on purpose.
	ignore string
}

// byExt is the path of resource ext of type typ.
func byExt(org, typ, ext string) string {
	return "/authorization/organizations/" + org + "/resources/" + typ + "/" + ext
}

func createType(e *env, slug string, parents ...string) {
	e.do("POST", "/authorization/resource_types", obj{"slug": slug, "name": slug, "parent_type_slugs": parents}, 201)
}

// createResource creates resource ext of type typ under the resource
// parentExt of type parentType ("": under the root).
func createResource(e *env, org, typ, ext, parentType, parentExt string) {
	body := obj{"organization_id": org, "resource_type_slug": typ, "external_id": ext, "name": ext}
	if parentExt != "" {
		body["parent_resource_type_slug"], body["parent_resource_external_id"] = parentType, parentExt
	}
	e.do("POST", "/authorization/resources", body, 201)
}

func move(org, typ, ext, parentType, parentExt string) request {
	return request{"PATCH", byExt(org, typ, ext), obj{"parent_resource_type_slug": parentType, "parent_resource_external_id": parentExt}}
}

func setParentTypes(slug string, parents ...string) request {
	return request{"PATCH", "/authorization/resource_types/" + slug, obj{"parent_type_slugs": parents}}
}

var races = []race{
	{
		// root > a, b, c > d > e: c under b reaches depth 5, b under a
		// depth 3; both make e depth 6.
		name: "re-parents exceeding max depth",
		setup: func(e *env, org string, i int) {
			createResource(e, org, "t1", fmt.Sprint("a", i), "", "")
			createResource(e, org, "t2", fmt.Sprint("b", i), "", "")
			createResource(e, org, "t3", fmt.Sprint("c", i), "", "")
			createResource(e, org, "t4", fmt.Sprint("d", i), "t3", fmt.Sprint("c", i))
			createResource(e, org, "t5", fmt.Sprint("e", i), "t4", fmt.Sprint("d", i))
		},
		writes: [2]func(string, int) request{
			func(org string, i int) request { return move(org, "t3", fmt.Sprint("c", i), "t2", fmt.Sprint("b", i)) },
			func(org string, i int) request { return move(org, "t2", fmt.Sprint("b", i), "t1", fmt.Sprint("a", i)) },
		},
		refused: [2]string{"422 " + model.CodeDepthExceeded, "422 " + model.CodeDepthExceeded},
	},
	{
		// Types u and v may each be under the other (planted in SQL: the
		// write path refuses type cycles, and without one no two resources
		// can be each other's parent); m (u) and n (v) are under the root.
		name: "re-parents forming a cycle",
		setup: func(e *env, org string, i int) {
			u, v := fmt.Sprint("u", i), fmt.Sprint("v", i)
			createType(e, u, model.OrganizationType)
			createType(e, v, model.OrganizationType, u)
			createResource(e, org, u, fmt.Sprint("m", i), "", "")
			createResource(e, org, v, fmt.Sprint("n", i), "", "")
		},
		plant: func(i int) string {
			return fmt.Sprintf("INSERT INTO resource_type_parents VALUES ('u%d', 'v%d')", i, i)
		},
		writes: [2]func(string, int) request{
			func(org string, i int) request {
				return move(org, fmt.Sprint("u", i), fmt.Sprint("m", i), fmt.Sprint("v", i), fmt.Sprint("n", i))
			},
			func(org string, i int) request {
				return move(org, fmt.Sprint("v", i), fmt.Sprint("n", i), fmt.Sprint("u", i), fmt.Sprint("m", i))
			},
		},
		refused: [2]string{"422 " + model.CodeCycle, "422 " + model.CodeCycle},
		ignore:  "type_cycle",
	},
	{
		// Type x may be under the root or a t1; resource x is under the
		// root. One write drops t1 from x's parent types (refused: 409, a
		// resource is in the way), the other moves x under p (a t1).
		name: "narrowing parent types vs moving under the removed type",
		setup: func(e *env, org string, i int) {
			createType(e, fmt.Sprint("x", i), model.OrganizationType, "t1")
			createResource(e, org, fmt.Sprint("x", i), fmt.Sprint("x", i), "", "")
		},
		writes: [2]func(string, int) request{
			func(_ string, i int) request { return setParentTypes(fmt.Sprint("x", i), model.OrganizationType) },
			func(org string, i int) request { return move(org, fmt.Sprint("x", i), fmt.Sprint("x", i), "t1", "p") },
		},
		refused: [2]string{"409 conflict", "422 " + model.CodeParentTypeNotAllowed},
	},
	{
		// Type w is below t1; role r (t1) gets permission w:use while w
		// stops being below t1.
		name: "adding a descendant-type permission vs narrowing the type",
		setup: func(e *env, _ string, i int) {
			w := fmt.Sprint("w", i)
			createType(e, w, model.OrganizationType, "t1")
			e.do("POST", "/authorization/permissions", obj{"slug": w + ":use", "name": w, "resource_type_slug": w}, 201)
			e.do("POST", "/authorization/roles", obj{"slug": fmt.Sprint("r", i), "name": "r", "resource_type_slug": "t1"}, 201)
		},
		writes: [2]func(string, int) request{
			func(_ string, i int) request {
				return request{"POST", fmt.Sprint("/authorization/roles/r", i, "/permissions"), obj{"slug": fmt.Sprint("w", i, ":use")}}
			},
			func(_ string, i int) request { return setParentTypes(fmt.Sprint("w", i), model.OrganizationType) },
		},
		refused: [2]string{"422 " + model.CodePermissionTypeNotAllowed, "422 " + model.CodePermissionTypeNotAllowed},
	},
	{
		// y under z and z under y: each alone a valid type graph.
		name: "parent types forming a type cycle",
		setup: func(e *env, _ string, i int) {
			createType(e, fmt.Sprint("y", i), model.OrganizationType)
			createType(e, fmt.Sprint("z", i), model.OrganizationType)
		},
		writes: [2]func(string, int) request{
			func(_ string, i int) request {
				return setParentTypes(fmt.Sprint("y", i), model.OrganizationType, fmt.Sprint("z", i))
			},
			func(_ string, i int) request {
				return setParentTypes(fmt.Sprint("z", i), model.OrganizationType, fmt.Sprint("y", i))
			},
		},
		refused: [2]string{"422 " + model.CodeCycle, "422 " + model.CodeCycle},
	},
	{
		name:  "environment and organization role of one slug",
		setup: func(*env, string, int) {},
		writes: [2]func(string, int) request{
			func(_ string, i int) request {
				return request{"POST", "/authorization/roles", obj{"slug": fmt.Sprint("s", i), "name": "s"}}
			},
			func(org string, i int) request {
				return request{"POST", "/authorization/organizations/" + org + "/roles", obj{"slug": fmt.Sprint("s", i), "name": "s"}}
			},
		},
		refused: [2]string{"409 conflict", "409 conflict"},
	},
	{
		// The default role cannot be deleted: checked in the deleting
		// transaction, not before it.
		name: "a role made the default while it is deleted",
		setup: func(e *env, _ string, i int) {
			e.do("POST", "/authorization/roles", obj{"slug": fmt.Sprint("dr", i), "name": "dr"}, 201)
		},
		writes: [2]func(string, int) request{
			func(_ string, i int) request {
				return request{"PUT", "/authorization/default_role", obj{"role_slug": fmt.Sprint("dr", i)}}
			},
			func(_ string, i int) request { return request{"DELETE", fmt.Sprint("/authorization/roles/dr", i), nil} },
		},
		refused: [2]string{"422 " + model.CodeUnknownReference, "409 conflict"},
	},
	{
		// A domain belongs to one organization: checked per commit.
		name:  "two organizations claiming one domain",
		setup: func(*env, string, int) {},
		writes: [2]func(string, int) request{
			func(_ string, i int) request { return claimDomain("a", i) },
			func(_ string, i int) request { return claimDomain("b", i) },
		},
		refused: [2]string{"409 conflict", "409 conflict"},
	},
}

func claimDomain(who string, i int) request {
	return request{"POST", "/organizations", obj{"name": who, "domain_data": []obj{{"domain": fmt.Sprint("d", i, ".example"), "state": "verified"}}}}
}

// TestRulesHoldUnderConcurrentWrites sends each race's pairs of requests
// at once to the WorkOS-compatible API on PostgreSQL: in every pair exactly
// one write succeeds and the other is refused as the race says, and
// afterwards no row of the database breaks a rule.
func TestRulesHoldUnderConcurrentWrites(t *testing.T) {
	for _, rc := range races {
		t.Run(rc.name, func(t *testing.T) {
			ctx := context.Background()
			e, pg := newPostgresEnv(t)
			parents := []string{model.OrganizationType}
			for i := 1; i <= 5; i++ {
				slug := fmt.Sprint("t", i)
				createType(e, slug, parents...)
				parents = append(parents, slug)
			}
			org := str(e.do("POST", "/organizations", obj{"name": "Race"}, 201)["id"])
			createResource(e, org, "t1", "p", "", "")
			for i := range racePairs {
				rc.setup(e, org, i)
			}
			for i := 0; rc.plant != nil && i < racePairs; i++ {
				if _, err := pg.DB().ExecContext(ctx, rc.plant(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range racePairs {
				var got [2]string
				var wg sync.WaitGroup
				start := make(chan struct{})
				for w := range 2 {
					wg.Go(func() {
						<-start
						r := rc.writes[w](org, i)
						res, err := e.send(r.method, r.path, r.body)
						if err != nil {
							t.Error(err)
							return
						}
						got[w] = outcome(res)
					})
				}
				close(start)
				wg.Wait()
				switch {
				case got[0] == "ok" && got[1] == rc.refused[1], got[1] == "ok" && got[0] == rc.refused[0]:
				default:
					t.Errorf("pair %d answered %q, want one ok and the other refused as %q", i, got, rc.refused)
				}
			}
			lines, err := postgrestest.Violations(ctx, pg.DB(), model.DefaultMaxDepth)
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

// newPostgresEnv is an env on the PostgreSQL store, and that store's
// database.
func newPostgresEnv(t testing.TB) (*env, *postgres.Store) {
	t.Helper()
	var pg *postgres.Store
	e := newEnvOn(t, backend{"postgres", func(t testing.TB, eng *engine.Engine, _ envConfig) (workos.Store, workos.Replays, authz.Config) {
		var cfg authz.Config
		pg, cfg = followedPostgres(t, eng, pgtest.URL(t), postgres.FollowerConfig{PollInterval: 50 * time.Millisecond})
		return workosdb.New(pg), workosdb.NewReplays(pg), cfg
	}})
	return e, pg
}

// outcome is "ok" for a 2xx answer, else its status and error code (of a
// 422, the first problem's code).
func outcome(r response) string {
	if r.status/100 == 2 {
		return "ok"
	}
	var b struct {
		Code   string `json:"code"`
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &b)
	code := b.Code
	if r.status == http.StatusUnprocessableEntity && len(b.Errors) > 0 {
		code = b.Errors[0].Code
	}
	return fmt.Sprint(r.status, " ", code)
}
