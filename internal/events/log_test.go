package events_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/model"
)

// TestPositionsFollowCommits writes from several goroutines while a reader
// follows the log by position, as every consumer does: what the reader saw
// must be the whole log, each event once, in position order, with
// revisions in the same order — no event that committed late is skipped.
func TestPositionsFollowCommits(t *testing.T) {
	s, _ := demoDB(t)
	l := events.NewLog(s.DB())
	ctx := context.Background()
	const writers, each = 4, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				writeOrg(t, s, w*each+i, false)
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	var seen []events.Event
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		select {
		case <-writing:
			done = true // one more read after the last commit
		default:
		}
		var after int64
		if len(seen) > 0 {
			after = seen[len(seen)-1].Position
		}
		page, err := l.List(ctx, events.Query{After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, page...)
		if len(page) == 7 {
			done = false // read on until the log is exhausted
		}
		if time.Now().After(deadline) {
			t.Fatal("writers did not finish within 60s")
		}
	}
	all, err := l.List(ctx, events.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("%d events in the log, want %d", len(all), writers*each)
	}
	pos := func(evs []events.Event) []int64 {
		out := make([]int64, len(evs))
		for i, e := range evs {
			out[i] = e.Position
		}
		return out
	}
	if diff := cmp.Diff(pos(all), pos(seen)); diff != "" {
		t.Fatalf("the follower's positions differ from the log's (-log +seen):\n%s", diff)
	}
	ids := map[string]bool{}
	for i, e := range all {
		if e.Type != "organization.created" || e.OrganizationID != e.EntityID {
			t.Errorf("event %d: %s in %q", e.Position, e.Type, e.OrganizationID)
		}
		if i > 0 && e.Revision <= all[i-1].Revision {
			t.Errorf("event %d at revision %d after revision %d", e.Position, e.Revision, all[i-1].Revision)
		}
		ids[e.EntityID] = true
	}
	if len(ids) != writers*each {
		t.Errorf("%d distinct organizations in the log, want %d", len(ids), writers*each)
	}
}

// TestOneEventPerEntityAndTransaction checks the types, the coalescing of
// one transaction's changes to an entity, and the data of each kind.
func TestOneEventPerEntityAndTransaction(t *testing.T) {
	s, _ := demoDB(t)
	l := events.NewLog(s.DB())
	ctx := context.Background()
	write := func(changes ...model.Change) int64 {
		t.Helper()
		rev, err := s.Write(ctx, changes)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	m := &model.Membership{ID: "om_zed", UserID: "user_zed", OrganizationID: "org_acme", Status: "active", RoleSlugs: []string{"org-member", "org-admin"}}
	rev1 := write(model.Change{Op: model.OpUpsert, Membership: m},
		model.Change{Op: model.OpUpsert, Resource: &model.Resource{ID: "authz_resource_zed", OrganizationID: "org_acme", Type: "workspace", ExternalID: "zed", Name: "Zed"}},
		model.Change{Op: model.OpUpsert, Assignment: &model.Assignment{ID: "ra_zed", MembershipID: "om_zed", RoleSlug: "workspace-viewer", ResourceID: "authz_resource_zed"}},
		// Created and deleted in one transaction: no event.
		model.Change{Op: model.OpUpsert, Organization: &model.Organization{ID: "org_tmp", Name: "Tmp"}},
		model.Change{Op: model.OpDelete, Organization: &model.Organization{ID: "org_tmp"}})
	m2 := *m
	m2.Status = "inactive"
	rev2 := write(model.Change{Op: model.OpUpsert, Membership: &m2})
	rev3 := write(model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: "om_zed"}},
		model.Change{Op: model.OpDelete, Resource: &model.Resource{ID: "authz_resource_zed"}})

	all, err := l.List(ctx, events.Query{})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Revision       int64
		Type, ID, Org  string
		Status, Object string
		Roles          []any
		Parent         any
		Resource       any
	}
	var got []summary
	for _, e := range all {
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		sm := summary{Revision: e.Revision, Type: e.Type, ID: e.EntityID, Org: e.OrganizationID, Object: d["object"].(string)}
		if st, ok := d["status"].(string); ok {
			sm.Status = st
		}
		if r, ok := d["roles"].([]any); ok {
			sm.Roles = r
		}
		if e.Entity == "resource" {
			sm.Parent = d["parent_resource_id"]
		}
		if e.Entity == "assignment" {
			sm.Resource = d["resource"]
		}
		got = append(got, sm)
	}
	// In priority order (the demo lists org-admin first), not as given.
	roles := []any{map[string]any{"slug": "org-admin"}, map[string]any{"slug": "org-member"}}
	zed := map[string]any{"id": "authz_resource_zed", "external_id": "zed", "resource_type_slug": "workspace"}
	want := []summary{
		{Revision: rev1, Type: "organization_membership.created", ID: "om_zed", Org: "org_acme", Status: "active", Object: "organization_membership", Roles: roles},
		{Revision: rev1, Type: "trellis.authorization_resource.created", ID: "authz_resource_zed", Org: "org_acme", Object: "authorization_resource"},
		{Revision: rev1, Type: "trellis.role_assignment.created", ID: "ra_zed", Org: "org_acme", Object: "role_assignment", Resource: zed},
		{Revision: rev2, Type: "organization_membership.updated", ID: "om_zed", Org: "org_acme", Status: "inactive", Object: "organization_membership", Roles: roles},
		// The state it had when it went, roles included, and the assignment
		// deleted with it (and its resource) still filed under its
		// organization, naming the resource it was on.
		{Revision: rev3, Type: "organization_membership.deleted", ID: "om_zed", Org: "org_acme", Status: "inactive", Object: "organization_membership", Roles: roles},
		{Revision: rev3, Type: "trellis.role_assignment.deleted", ID: "ra_zed", Org: "org_acme", Object: "role_assignment", Resource: zed},
		{Revision: rev3, Type: "trellis.authorization_resource.deleted", ID: "authz_resource_zed", Org: "org_acme", Object: "authorization_resource"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !events.KnownType(all[0].Type) || events.KnownType("organization_membership.exploded") {
		t.Error("KnownType disagrees with the log's types")
	}
}

// TestPruneKeepsWhatWebhooksNeed: retention deletes old events, except
// those an enabled endpoint has not received.
func TestPruneKeepsWhatWebhooksNeed(t *testing.T) {
	s, _ := demoDB(t)
	l := events.NewLog(s.DB())
	ctx := context.Background()
	ep, err := l.CreateEndpoint(ctx, events.NewEndpoint{URL: "http://127.0.0.1:9/never"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		writeOrg(t, s, i, false)
	}
	count := func() int {
		t.Helper()
		evs, err := l.List(ctx, events.Query{})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	steps := []struct {
		name   string
		before time.Time
		prep   func()
		want   int
	}{
		{"within retention", time.Now().Add(-time.Hour), func() {}, 5},
		{"past retention, endpoint still owed them", time.Now().Add(time.Hour), func() {}, 5},
		{"the endpoint disabled", time.Now().Add(time.Hour), func() {
			disabled := events.StatusDisabled
			if _, err := l.UpdateEndpoint(ctx, ep.ID, events.EndpointUpdate{Status: &disabled}); err != nil {
				t.Fatal(err)
			}
		}, 0},
	}
	for _, st := range steps {
		st.prep()
		if _, err := l.Prune(ctx, st.before); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != st.want {
			t.Errorf("%s: %d events kept, want %d", st.name, got, st.want)
		}
	}
}
