package engine_test

import (
	"context"
	"testing"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
)

// TestApplyGroups: group changes apply incrementally (no error, so no
// reload), and each is in the next decision, the group named in the
// reason.
func TestApplyGroups(t *testing.T) {
	ctx := context.Background()
	e := oracleEngine(t, datafile.Demo())
	const crm = "authz_resource_acme_crm"
	g := &model.Group{ID: "group_platform", OrganizationID: "org_acme", Name: "platform-eng"}
	gm := &model.GroupMember{GroupID: g.ID, MembershipID: "om_carol"}
	a := &model.Assignment{ID: "role_assignment_platform", GroupID: g.ID, RoleSlug: "project-editor", ResourceID: crm}
	input := benchCheckInput(benchMembershipSubject("om_carol"), "project:edit", crm)
	decide := func() (bool, any) {
		t.Helper()
		res, err := e.Decide(ctx, engine.Check, input)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := res.Value.(map[string]any)
		reason, _ := d["reason"].(map[string]any)
		return d["allowed"] == true, reason["group"]
	}
	for i, st := range []struct {
		name     string
		changes  []model.Change
		allowed  bool
		viaGroup bool
	}{
		{"group, grant and member", []model.Change{{Op: model.OpUpsert, Group: g}, {Op: model.OpUpsert, Assignment: a}, {Op: model.OpUpsert, GroupMember: gm}}, true, true},
		{"member removed", []model.Change{{Op: model.OpDelete, GroupMember: gm}}, false, false},
		{"member back", []model.Change{{Op: model.OpUpsert, GroupMember: gm}}, true, true},
		{"group deleted", []model.Change{{Op: model.OpDelete, Group: &model.Group{ID: g.ID}}, {Op: model.OpDelete, GroupMember: gm}, {Op: model.OpDelete, Assignment: a}}, false, false},
	} {
		if err := e.Apply(ctx, int64(100+i), st.changes); err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		allowed, group := decide()
		if allowed != st.allowed || (group != nil) != st.viaGroup {
			t.Errorf("%s: allowed %v via group %v, want %v via a group %v", st.name, allowed, group, st.allowed, st.viaGroup)
		}
	}
}
