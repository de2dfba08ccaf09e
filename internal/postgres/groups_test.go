package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// TestGroups: group writes reach decisions through the change feed like
// every other change, the follower's document equals a fresh snapshot's
// after each, bad input is refused with the field and why and writes
// nothing, and each change has its event.
func TestGroups(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	eng := newEngine(t)
	follow(t, s, eng, postgres.FollowerConfig{PollInterval: time.Hour}) // NOTIFY only
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	const crm = "authz_resource_acme_crm"
	platform := &model.Group{ID: "group_platform", OrganizationID: "org_acme", Name: "platform-eng"}
	carol := &model.GroupMember{GroupID: platform.ID, MembershipID: "om_carol"}
	grant := &model.Assignment{ID: "role_assignment_platform_crm", GroupID: platform.ID, RoleSlug: "project-editor", ResourceID: crm}
	steps := []struct {
		name    string
		changes []model.Change
		want    bool
	}{
		{"group with a grant, no members", []model.Change{upsert(platform), upsert(grant)}, false},
		{"member added", []model.Change{upsert(carol)}, true},
		{"group renamed", []model.Change{upsert(&model.Group{ID: platform.ID, OrganizationID: "org_acme", Name: "Platform"})}, true},
		{"member removed", []model.Change{del(carol)}, false},
		{"member back", []model.Change{upsert(carol)}, true},
		{"group assignment removed", []model.Change{del(&model.Assignment{ID: grant.ID, GroupID: platform.ID})}, false},
		{"group assignment back", []model.Change{upsert(grant)}, true},
		{"group deleted with its members and grants", []model.Change{del(&model.Group{ID: platform.ID})}, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rev, err := s.Write(ctx, st.changes)
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.WaitFor(ctx, rev, 5*time.Second); err != nil {
				t.Fatalf("revision %d not applied: %v", rev, err)
			}
			if got := check(t, svc, "om_carol", "project:edit", crm); got != st.want {
				t.Errorf("om_carol project:edit on crm = %v, want %v", got, st.want)
			}
			engineMatchesSnapshot(t, s, eng)
		})
	}

	var events []string
	if err := s.DB().SelectContext(ctx, &events, `SELECT type FROM events WHERE type LIKE 'group.%' OR type LIKE 'trellis.group%' ORDER BY position`); err != nil {
		t.Fatal(err)
	}
	wantEvents := []string{
		"group.created", "trellis.group_role_assignment.created", "group.member_added", "group.updated",
		"group.member_removed", "group.member_added", "trellis.group_role_assignment.deleted",
		"trellis.group_role_assignment.created", "group.deleted", "group.member_removed", "trellis.group_role_assignment.deleted",
	}
	if len(events) != len(wantEvents) {
		t.Errorf("events %q, want %q", events, wantEvents)
	} else {
		for i := range events {
			if events[i] != wantEvents[i] {
				t.Errorf("events %q, want %q", events, wantEvents)
				break
			}
		}
	}
}

// TestGroupRefusals: each bad group write is refused with the field and
// why, and writes nothing.
func TestGroupRefusals(t *testing.T) {
	ctx := context.Background()
	s := demoStore(t)
	g := &model.Group{ID: "group_a", OrganizationID: "org_acme", Name: "A"}
	if _, err := s.Write(ctx, []model.Change{upsert(g), upsert(&model.GroupMember{GroupID: g.ID, MembershipID: "om_carol"})}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		change      model.Change
		field, code string
	}{
		{"member of another organization", upsert(&model.GroupMember{GroupID: g.ID, MembershipID: "om_erin"}), "membership_id", model.CodeCrossOrganization},
		{"unknown group", upsert(&model.GroupMember{GroupID: "group_nope", MembershipID: "om_carol"}), "group_id", model.CodeUnknownReference},
		{"duplicate member", upsert(&model.GroupMember{GroupID: g.ID, MembershipID: "om_carol"}), "membership_id", model.CodeDuplicate},
		{"role type mismatch", upsert(&model.Assignment{ID: "role_assignment_x", GroupID: g.ID, RoleSlug: "workspace-viewer", ResourceID: "authz_resource_acme_crm"}), "role", model.CodeRoleTypeMismatch},
		{"assignment of an unknown group", upsert(&model.Assignment{ID: "role_assignment_y", GroupID: "group_nope", RoleSlug: "project-editor", ResourceID: "authz_resource_acme_crm"}), "group_id", model.CodeUnknownReference},
		{"group moved to another organization", upsert(&model.Group{ID: g.ID, OrganizationID: "org_globex", Name: "A"}), "organization_id", model.CodeInvalid},
		{"group without a name", upsert(&model.Group{ID: "group_b", OrganizationID: "org_acme"}), "name", model.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Write(ctx, []model.Change{tc.change})
			var verr *postgres.ValidationError
			if !errors.As(err, &verr) || verr.Field != tc.field || verr.Code != tc.code {
				t.Fatalf("Write = %v, want a problem with field %q and code %q", err, tc.field, tc.code)
			}
			after, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after.Revision != before.Revision {
				t.Errorf("a refused write moved the revision from %d to %d", before.Revision, after.Revision)
			}
		})
	}
}
