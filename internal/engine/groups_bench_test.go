package engine_test

import (
	"context"
	"testing"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
)

// BenchmarkDecideGroups compares, on tier "M+groups" (tier M with 10
// groups per organization, each membership in 0–3, 20 % of assignments
// to groups), an uncached check allowed by a role assigned to the
// membership on a workspace with one allowed by a role assigned to one of
// its groups on a workspace, both on a leaf three levels below (depth 5):
//
//	go test -run '^$' -bench DecideGroups -benchtime 2000x -count 5 ./internal/engine/
//
// The target is via_group ≤ 1.3 × direct.
func BenchmarkDecideGroups(b *testing.B) {
	spec, _ := gen.Spec{Seed: 1}.Tier("M+groups")
	ds := gen.Generate(spec)
	ctx := context.Background()
	e, err := benchLoadEngine(ctx, ds)
	if err != nil {
		b.Fatal(err)
	}
	direct, viaGroup := findGroupBenchChecks(b, e, ds)
	b.Run("check_direct_depth5", func(b *testing.B) {
		benchDecision(b, e, benchCheckInput(benchMembershipSubject(direct.om), benchPerm, direct.leaf), "assignment", direct.workspace)
	})
	b.Run("check_via_group_depth5", func(b *testing.B) {
		benchDecision(b, e, benchCheckInput(benchMembershipSubject(viaGroup.om), benchPerm, viaGroup.leaf), "assignment", viaGroup.workspace)
	})
}

// groupBenchCheck is a check of benchPerm on leaf by om, allowed by a role
// on workspace.
type groupBenchCheck struct{ om, workspace, leaf string }

// findGroupBenchChecks finds a check allowed by a direct assignment on a
// workspace and one allowed by a group's, each the nearest grant, asking
// the engine to confirm candidates (at most a few thousand).
func findGroupBenchChecks(b *testing.B, e *engine.Engine, ds *model.Dataset) (direct, viaGroup groupBenchCheck) {
	b.Helper()
	children := map[string][]string{}
	typ := map[string]string{}
	for _, r := range ds.Resources {
		children[r.ParentID] = append(children[r.ParentID], r.ID)
		typ[r.ID] = r.Type
	}
	var leafBelow func(rid string, depth int) string
	leafBelow = func(rid string, depth int) string {
		if depth == 5 && typ[rid] == benchLeafType {
			return rid
		}
		for _, c := range children[rid] {
			if l := leafBelow(c, depth+1); l != "" {
				return l
			}
		}
		return ""
	}
	members := map[string][]string{}
	for _, gm := range ds.GroupMembers {
		members[gm.GroupID] = append(members[gm.GroupID], gm.MembershipID)
	}
	tries := 0
	for _, a := range ds.Assignments {
		if typ[a.ResourceID] != "workspace" || tries > 5000 {
			continue
		}
		leaf := leafBelow(a.ResourceID, 2)
		if leaf == "" {
			continue
		}
		oms := []string{a.MembershipID}
		if a.MembershipID == "" {
			oms = members[a.GroupID]
		}
		for _, om := range oms {
			tries++
			res, err := e.Decide(context.Background(), engine.Check, benchCheckInput(benchMembershipSubject(om), benchPerm, leaf))
			if err != nil {
				b.Fatal(err)
			}
			d, _ := res.Value.(map[string]any)
			reason, _ := d["reason"].(map[string]any)
			on, _ := reason["resource"].(map[string]any)
			if d["allowed"] != true || on["id"] != a.ResourceID {
				continue
			}
			_, byGroup := reason["group"]
			c := groupBenchCheck{om, a.ResourceID, leaf}
			switch {
			case byGroup && a.GroupID != "" && viaGroup.om == "":
				viaGroup = c
			case !byGroup && a.MembershipID != "" && direct.om == "":
				direct = c
			}
		}
		if direct.om != "" && viaGroup.om != "" {
			return direct, viaGroup
		}
	}
	b.Fatalf("no direct and group checks found in %d tries: %+v %+v", tries, direct, viaGroup)
	return
}
