package postgres_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// adminWrite posts body to the admin handler h and returns the revision
// it answers, failing the test on any other answer.
func adminWrite(t testing.TB, h http.Handler, body string) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, postgres.AdminPath, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got postgres.AdminResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got.Revision
}

func newAdmin(t testing.TB, s *postgres.Store) http.Handler {
	t.Helper()
	h, err := postgres.NewAdminHandler(postgres.AdminConfig{Writer: s, Authorize: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// snapshotEntities returns organization org and resource res of a fresh
// snapshot of s.
func snapshotEntities(t testing.TB, s *postgres.Store, org, res string) (model.Organization, model.Resource) {
	t.Helper()
	ds, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var o model.Organization
	var r model.Resource
	for _, x := range ds.Organizations {
		if x.ID == org {
			o = x
		}
	}
	for _, x := range ds.Resources {
		if x.ID == res {
			r = x
		}
	}
	if o.ID == "" || r.ID == "" {
		t.Fatalf("the snapshot lacks organization %s or resource %s", org, res)
	}
	return o, r
}

// TestAttributesThroughAdminAndFeed: attributes written through the admin
// API read back equal (numbers as json.Number) from a snapshot and from
// the changes the follower delivers; an update of the attributes alone is
// a change at a new revision, and an upsert without them clears them.
func TestAttributesThroughAdminAndFeed(t *testing.T) {
	s := demoStore(t)
	h := newAdmin(t, s)
	app := newMemApplier()
	follow(t, s, app, postgres.FollowerConfig{PollInterval: 10 * time.Millisecond})

	const org, res = "org_attrs", "authz_resource_attrs_doc"
	// body upserts the organization, the resource, or both (in that
	// order), each with attrs appended to its fields ("-": left out).
	body := func(orgAttrs, resAttrs string) string {
		var changes []string
		if orgAttrs != "-" {
			changes = append(changes, `{"op": "upsert", "organization": {"id": "`+org+`", "name": "Attrs"`+orgAttrs+`}}`)
		}
		if resAttrs != "-" {
			changes = append(changes, `{"op": "upsert", "resource": {"id": "`+res+`", "organization_id": "`+org+
				`", "type": "workspace", "external_id": "doc", "name": "Doc"`+resAttrs+`}}`)
		}
		return `{"changes": [` + strings.Join(changes, ", ") + `]}`
	}
	orgNets := model.Attributes{"networks": []any{"10.0.0.0/8"}, "tier": json.Number("3")}
	steps := []struct {
		name           string
		body           string
		wantOrg, wantR model.Attributes
	}{
		{"create with attributes", body(`, "attributes": {"networks": ["10.0.0.0/8"], "tier": 3}`,
			`, "attributes": {"confidential": true, "score": 2.5, "owner": {"team": "eng", "ids": [1, 20]}}`),
			orgNets, model.Attributes{"confidential": true, "score": json.Number("2.5"),
				"owner": map[string]any{"team": "eng", "ids": []any{json.Number("1"), json.Number("20")}}}},
		{"resource attributes only", body("-", `, "attributes": {"confidential": false}`),
			orgNets, model.Attributes{"confidential": false}},
		{"organization attributes only", body(`, "attributes": {"networks": ["10.0.0.0/8", "192.168.0.0/16"]}`, "-"),
			model.Attributes{"networks": []any{"10.0.0.0/8", "192.168.0.0/16"}}, model.Attributes{"confidential": false}},
		{"resource cleared", body("-", ``),
			model.Attributes{"networks": []any{"10.0.0.0/8", "192.168.0.0/16"}}, nil},
		{"organization cleared by an empty object", body(`, "attributes": {}`, "-"), nil, nil},
	}
	prev := app.revision()
	for _, st := range steps {
		applies := app.counts().applies
		rev := adminWrite(t, h, st.body)
		if rev <= prev {
			t.Fatalf("%s: revision %d, not after %d: the write made no change", st.name, rev, prev)
		}
		prev = rev
		o, r := snapshotEntities(t, s, org, res)
		if diff := cmp.Diff(st.wantOrg, o.Attributes); diff != "" {
			t.Errorf("%s: snapshot organization attributes (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(st.wantR, r.Attributes); diff != "" {
			t.Errorf("%s: snapshot resource attributes (-want +got):\n%s", st.name, diff)
		}
		waitUntil(t, 5*time.Second, st.name+" applied", func() bool { return app.revision() >= rev })
		app.mu.Lock()
		fo, fr := app.orgs[org], app.res[res]
		app.mu.Unlock()
		if c := app.counts(); c.loads != 1 || c.applies == applies {
			t.Errorf("%s: %d loads and %d applies (%d before): the change did not come through the change log", st.name, c.loads, c.applies, applies)
		}
		if diff := cmp.Diff(st.wantOrg, fo.Attributes); diff != "" {
			t.Errorf("%s: the follower's organization attributes (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(st.wantR, fr.Attributes); diff != "" {
			t.Errorf("%s: the follower's resource attributes (-want +got):\n%s", st.name, diff)
		}
	}
	// The same state again changes nothing: no new revision.
	if rev := adminWrite(t, h, body(``, ``)); rev != prev {
		t.Errorf("an upsert that changes nothing answered revision %d, want the head %d", rev, prev)
	}
}

// TestAttributesRefused: attributes that are not a JSON object, hold a
// string that is not text or are over model.MaxAttributesBytes are a 400
// naming the field through the admin API, and a *ValidationError on
// attributes through Write; nothing is written either way.
func TestAttributesRefused(t *testing.T) {
	s := demoStore(t)
	h := newAdmin(t, s)
	ctx := context.Background()
	before, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"blob": "` + strings.Repeat("x", model.MaxAttributesBytes) + `"}`
	resource := func(attrs string) string {
		return `{"changes": [{"op": "upsert", "resource": {"id": "authz_resource_new", "organization_id": "org_acme", "type": "workspace", "external_id": "new", "name": "New", "attributes": ` + attrs + `}}]}`
	}
	organization := func(attrs string) string {
		return `{"changes": [{"op": "upsert", "organization": {"id": "org_new", "name": "New", "attributes": ` + attrs + `}}]}`
	}
	tests := []struct {
		name, body, message string // message: a part of the answer's message
	}{
		{"a string", resource(`"confidential"`), "changes[0].resource.attributes must be a JSON object"},
		{"an array", organization(`[1, 2]`), "changes[0].organization.attributes must be a JSON object"},
		{"a number in a second change", `{"changes": [{"op": "delete", "resource": {"id": "authz_resource_acme_web"}},
			{"op": "upsert", "resource": {"id": "authz_resource_new", "attributes": 5}}]}`, "changes[1].resource.attributes must be a JSON object"},
		{"NUL in a value", resource(`{"tags": ["a", "b\u0000"]}`), "changes[0].resource.attributes.tags[1] contains a NUL byte"},
		{"invalid UTF-8 in a key", organization("{\"k\xff\": 1}"), "changes[0].organization.attributes has a key that is not valid UTF-8"},
		{"too big, resource", resource(big), "changes[0].resource.attributes is 16395 bytes of JSON, more than 16384"},
		{"too big, organization", organization(big), "changes[0].organization.attributes is 16395 bytes of JSON, more than 16384"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, postgres.AdminPath, strings.NewReader(tc.body)))
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %d is not a JSON object: %s", rec.Code, rec.Body)
			}
			if rec.Code != http.StatusBadRequest || got["code"] != "invalid_request" || !strings.Contains(got["message"], tc.message) {
				t.Fatalf("got %d %v, want 400 invalid_request with a message holding %q", rec.Code, got, tc.message)
			}
		})
	}
	t.Run("write", func(t *testing.T) {
		huge := model.Attributes{"blob": strings.Repeat("x", model.MaxAttributesBytes)}
		for _, c := range []model.Change{
			upsert(&model.Organization{ID: "org_new", Name: "New", Attributes: huge}),
			upsert(&model.Resource{ID: "authz_resource_new", OrganizationID: "org_acme", Type: "workspace", ExternalID: "new", Attributes: huge}),
		} {
			_, err := s.Write(ctx, []model.Change{c})
			var ve *postgres.ValidationError
			if !asValidation(err, &ve) || ve.Field != "attributes" || ve.Code != model.CodeInvalid ||
				!strings.HasPrefix(ve.Message, "attributes is 16395 bytes") {
				t.Errorf("Write: %v, want a ValidationError on attributes", err)
			}
		}
	})
	after, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision {
		t.Errorf("revision moved from %d to %d", before.Revision, after.Revision)
	}
	if diff := cmp.Diff(sortDataset(before), sortDataset(after)); diff != "" {
		t.Errorf("the refused writes changed the data (-before +after):\n%s", diff)
	}
}

// TestImportKeepsAttributes: a data file's attributes, imported as
// `trellis load` does, read back from a snapshot as the file gave them,
// and the import's events carry them as the API answers them.
func TestImportKeepsAttributes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ds, err := datafile.Parse([]byte(`
resource_types:
  - {slug: doc, name: Document}
organizations:
  - {id: org_a, name: A, attributes: {networks: [10.0.0.0/8], seats: 25}}
  - {id: org_b, name: B}
resources:
  - id: authz_resource_plan
    organization_id: org_a
    type: doc
    external_id: plan
    name: Plan
    attributes: {confidential: true, tags: [q3, "1.5"], score: 1.25, owner: {team: eng}}
  - {id: authz_resource_memo, organization_id: org_b, type: doc, external_id: memo, name: Memo}
`), datafile.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportWith(ctx, ds, postgres.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every entity's attributes by id, as the file gave them and as read.
	attributes := func(ds *model.Dataset) map[string]model.Attributes {
		m := map[string]model.Attributes{}
		for _, o := range ds.Organizations {
			m[o.ID] = o.Attributes
		}
		for _, r := range ds.Resources {
			m[r.ID] = r.Attributes
		}
		return m
	}
	if diff := cmp.Diff(attributes(ds), attributes(got)); diff != "" {
		t.Errorf("attributes (-file +snapshot):\n%s", diff)
	}
	want := model.Attributes{"confidential": true, "tags": []any{"q3", "1.5"}, "score": json.Number("1.25"),
		"owner": map[string]any{"team": "eng"}}
	if diff := cmp.Diff(want, attributes(got)["authz_resource_plan"]); diff != "" {
		t.Errorf("the plan's attributes (-want +snapshot):\n%s", diff)
	}
	for _, tc := range []struct {
		entity, id string
		want       any // the event data's attributes; nil: the field is left out
	}{
		{"organization", "org_a", map[string]any{"networks": []any{"10.0.0.0/8"}, "seats": json.Number("25")}},
		{"organization", "org_b", nil},
		{"resource", "authz_resource_plan", map[string]any(want)},
		{"resource", "authz_resource_memo", nil},
	} {
		var data []byte
		if err := s.DB().GetContext(ctx, &data, "SELECT data FROM events WHERE entity = $1 AND entity_id = $2", tc.entity, tc.id); err != nil {
			t.Fatalf("the %s %s event: %v", tc.entity, tc.id, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, obj["attributes"]); diff != "" {
			t.Errorf("the %s %s event's attributes (-want +got):\n%s", tc.entity, tc.id, diff)
		}
	}
}
