package httpapi_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/httpapi"
)

// TestListCursors pages through both list routes one id at a time: every id
// comes exactly once, and a cursor is accepted only by the query that
// returned it.
func TestListCursors(t *testing.T) {
	h := newHandler(t, fixture{})
	resources := obj{"token": tokBob, "permission": "project:edit", "resource_type": "project"}
	members := obj{"permission": "project:edit", "resource": ref("project", "web")}
	routes := []struct {
		name, path, auth, ids string
		req                   obj
		want                  []string
	}{
		{"list-resources", "/v1/list-resources", "", "resource_ids", resources,
			[]string{"authz_resource_acme_api", "authz_resource_acme_web"}},
		{"list-memberships", "/v1/list-memberships", bearerOld, "membership_ids", members,
			[]string{"om_alice", "om_bob", "om_carol"}},
	}
	with := func(req obj, kv ...any) obj {
		out := obj{}
		for k, v := range req {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	cursors := map[string]string{} // route → its first next_cursor
	for _, rt := range routes {
		t.Run(rt.name+" pages", func(t *testing.T) {
			var all []string
			for c, pages := "", 0; ; pages++ {
				if pages > len(rt.want) {
					t.Fatalf("pagination does not end: %v", all)
				}
				got := post(t, h, rt.path, rt.auth, with(rt.req, "limit", 1, "cursor", c))
				if got.status != http.StatusOK {
					t.Fatalf("page %d: %d %s", pages, got.status, got.raw)
				}
				for _, id := range got.body[rt.ids].([]any) {
					all = append(all, id.(string))
				}
				next, _ := got.body["next_cursor"].(string)
				if next == "" {
					break
				}
				if slices.Contains(rt.want, next) {
					t.Errorf("next_cursor %q is an id: cursors are opaque", next)
				}
				if c == "" {
					cursors[rt.name] = next
				}
				c = next
			}
			if !slices.Equal(all, rt.want) {
				t.Fatalf("ids over all pages = %v, want each of %v once", all, rt.want)
			}
		})
	}
	resCursor, memCursor := cursors["list-resources"], cursors["list-memberships"]
	if resCursor == "" || memCursor == "" {
		t.Fatal("no cursors to misuse")
	}
	tampered := []byte(resCursor)
	tampered[len(tampered)/2] ^= 1
	bad := []struct {
		name, path, auth string
		req              obj
	}{
		{"an id", "/v1/list-resources", "", with(resources, "cursor", "authz_resource_acme_api")},
		{"garbage", "/v1/list-resources", "", with(resources, "cursor", "%%%not base64")},
		{"tampered", "/v1/list-resources", "", with(resources, "cursor", string(tampered))},
		{"another permission", "/v1/list-resources", "", with(resources, "permission", "project:view", "cursor", resCursor)},
		{"another resource type", "/v1/list-resources", "", with(resources, "resource_type", "workspace", "cursor", resCursor)},
		{"a parent added", "/v1/list-resources", "", with(resources, "parent", ref("workspace", "acme-eng"), "cursor", resCursor)},
		{"another route", "/v1/list-memberships", bearerOld, with(members, "cursor", resCursor)},
		{"another resource", "/v1/list-memberships", bearerOld, with(members, "resource", ref("project", "api"), "cursor", memCursor)},
		{"direct instead of inherited", "/v1/list-memberships", bearerOld, with(members, "direct", true, "cursor", memCursor)},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			got := post(t, h, tc.path, tc.auth, tc.req)
			wantError(t, got, http.StatusBadRequest, "invalid_request")
			if msg, _ := got.body["message"].(string); !strings.HasPrefix(msg, "cursor ") {
				t.Errorf("message %q does not name the cursor", msg)
			}
		})
	}
}

// TestTextIsChecked: a NUL byte or invalid UTF-8 in any string, however
// the JSON spells it, is a 400 naming the field, before any decision.
func TestTextIsChecked(t *testing.T) {
	tests := []struct {
		name, path, auth, body string
		field                  string // the message starts with it
	}{
		{"escaped NUL in a permission", "/v1/check", "",
			`{"token": "tok-bob", "permission": "project:edit\u0000", "resource": {"id": "authz_resource_acme_api"}}`, "permission contains a NUL byte"},
		{"raw NUL in a permission", "/v1/check", "",
			"{\"token\": \"tok-bob\", \"permission\": \"project:edit\x00\", \"resource\": {\"id\": \"authz_resource_acme_api\"}}", "permission contains a NUL byte"},
		{"raw invalid UTF-8 in an external id", "/v1/check", "",
			"{\"token\": \"tok-bob\", \"permission\": \"project:edit\", \"resource\": {\"type\": \"project\", \"external_id\": \"api\xff\"}}", "resource.external_id is not valid UTF-8"},
		{"lone surrogate in a token", "/v1/check", "",
			`{"token": "tok-bob\ud800", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}}`, "token is not valid UTF-8"},
		{"NUL in a membership subject", "/v1/check", bearerOld,
			`{"subject": {"organization_membership_id": "om_bob\u0000"}, "permission": "p", "resource": {"id": "r"}}`, "subject.organization_membership_id contains a NUL byte"},
		{"NUL in a batch check", "/v1/check/batch", "",
			`{"token": "tok-bob", "checks": [{"permission": "p", "resource": {"id": "r"}}, {"permission": "p", "resource": {"id": "r\u0000"}}]}`, "checks[1].resource.id contains a NUL byte"},
		{"NUL in a list filter", "/v1/list-resources", "",
			`{"token": "tok-bob", "permission": "project:edit", "organization_id": "org_acme\u0000"}`, "organization_id contains a NUL byte"},
		{"NUL in a cursor", "/v1/list-resources", "",
			`{"token": "tok-bob", "permission": "project:edit", "cursor": "\u0000"}`, "cursor contains a NUL byte"},
		{"surrogate pair reversed in a parent", "/v1/list-memberships", bearerOld,
			`{"permission": "p", "resource": {"id": "\udc00\ud800"}}`, "resource.id is not valid UTF-8"},
		{"invalid UTF-8 in effective permissions", "/v1/effective-permissions", "",
			"{\"token\": \"tok-bob\", \"resource\": {\"id\": \"\xc3\"}}", "resource.id is not valid UTF-8"},
		{"NUL in Data API input", "/v1/data/trellis/check", bearerOld,
			`{"input": {"token": "tok-bob", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api", "x": ["\u0000"]}}}`, "input.resource.x[0] contains a NUL byte"},
		{"NUL in a Data API input key", "/v1/data/trellis/check", bearerOld,
			`{"input": {"permission\u0000": "project:edit"}}`, "input has a key that contains a NUL byte"},
		{"NUL in the Data API path", "/v1/data/trellis/check%00", bearerOld, `{"input": {}}`, "the document path contains a NUL byte"},
		{"invalid UTF-8 in the Data API path", "/v1/data/trellis/%FF", bearerOld, `{"input": {}}`, "the document path is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &recordingMetrics{}
			got := send(t, newHandler(t, fixture{httpapi: httpapi.Config{Metrics: m}}), http.MethodPost, tc.path, tc.auth, tc.body)
			wantError(t, got, http.StatusBadRequest, "invalid_request")
			if msg, _ := got.body["message"].(string); msg != tc.field {
				t.Errorf("message %q, want %q", msg, tc.field)
			}
			if len(m.decisions) > 0 || len(m.durations) > 0 {
				t.Errorf("the request reached the service: %v %v", m.decisions, m.durations)
			}
		})
	}
}

// TestListResourcesBothWays pages list-resources forward with cursor, back
// with before (prev_cursor), and in order desc: the same resources, in tree
// order and in reverse; cursor and before together, or an unknown order,
// are 400s that name them.
func TestListsBothWays(t *testing.T) {
	h := newHandler(t, fixture{})
	for _, l := range []struct {
		path, ids, key string
		base           obj
	}{
		{"/v1/list-resources", "resource_ids", "", obj{"token": tokBob, "permission": "project:edit"}},
		{"/v1/list-memberships", "membership_ids", bearerNew, obj{"permission": "project:view", "resource": ref("project", "api")}},
	} {
		t.Run(l.path, func(t *testing.T) {
			req := func(kv ...any) obj {
				out := obj{"limit": 1}
				maps.Copy(out, l.base)
				for i := 0; i+1 < len(kv); i += 2 {
					out[kv[i].(string)] = kv[i+1]
				}
				return out
			}
			walk := func(field, next, c string, kv ...any) (ids []string, last map[string]any) {
				for pages := 0; pages < 10; pages++ {
					got := post(t, h, l.path, l.key, req(append(kv, field, c)...))
					if got.status != http.StatusOK {
						t.Fatalf("%d %s", got.status, got.raw)
					}
					page := got.body[l.ids].([]any)
					for _, id := range page {
						ids = append(ids, id.(string))
					}
					if c, _ = got.body[next].(string); c == "" {
						return ids, got.body
					}
				}
				t.Fatalf("%s: pagination does not end: %v", field, ids)
				return nil, nil
			}
			forward, last := walk("cursor", "next_cursor", "")
			if len(forward) < 2 {
				t.Fatalf("forward %v: too short to page back", forward)
			}
			prev, _ := last["prev_cursor"].(string)
			back, _ := walk("before", "prev_cursor", prev)
			slices.Reverse(back) // pages back come last first
			back = append(back, forward[len(forward)-1])
			desc, _ := walk("cursor", "next_cursor", "", "order", "desc")
			slices.Reverse(desc)
			if !slices.Equal(back, forward) || !slices.Equal(desc, forward) {
				t.Errorf("forward %v, back with before %v, desc reversed %v", forward, back, desc)
			}
			got := post(t, h, l.path, l.key, req("cursor", prev, "before", prev))
			wantError(t, got, http.StatusBadRequest, "invalid_request")
			if msg, _ := got.body["message"].(string); !strings.HasPrefix(msg, "cursor and before") {
				t.Errorf("message %q", msg)
			}
			got = post(t, h, l.path, l.key, req("order", "sideways"))
			wantError(t, got, http.StatusBadRequest, "invalid_request")
			if msg, _ := got.body["message"].(string); !strings.HasPrefix(msg, `order "sideways"`) {
				t.Errorf("message %q", msg)
			}
		})
	}
}
