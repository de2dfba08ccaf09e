package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/engine/enginetest"
	"github.com/trellis-authz/trellis/internal/httpapi"
)

func TestNewRequiresService(t *testing.T) {
	if _, err := httpapi.New(httpapi.Config{}); err == nil {
		t.Error("New without a service: no error")
	}
}

func TestRouting(t *testing.T) {
	h := newHandler(t, fixture{})
	tests := []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, "not_found", ""},
		{"unknown path under v1", http.MethodPost, "/v1/checks", http.StatusNotFound, "not_found", ""},
		{"root", http.MethodGet, "/", http.StatusNotFound, "not_found", ""},
		{"GET a decision route", http.MethodGet, "/v1/check", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"PUT batch", http.MethodPut, "/v1/check/batch", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"GET list-resources", http.MethodGet, "/v1/list-resources", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"GET the data API", http.MethodGet, "/v1/data/trellis/check", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"POST health", http.MethodPost, "/health", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{"DELETE ready", http.MethodDelete, "/ready", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, h, tc.method, tc.path, bearerOld, "{}")
			wantError(t, got, tc.status, tc.code)
			if allow := got.header.Get("Allow"); allow != tc.allow {
				t.Errorf("Allow = %q, want %q", allow, tc.allow)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const limit = 256
	h := newHandler(t, fixture{httpapi: httpapi.Config{MaxBodyBytes: limit}})
	tests := []struct {
		name, body string
		status     int
		code       string
		message    string // a substring of the message
	}{
		{"malformed", `{"token": x}`, http.StatusBadRequest, "invalid_json", "malformed JSON at byte"},
		{"truncated", `{"token": `, http.StatusBadRequest, "invalid_json", "unexpected EOF"},
		{"unknown field", `{"token": "t", "permision": "a"}`, http.StatusBadRequest, "invalid_request", `unknown field "permision"`},
		{"wrong type", `{"token": 7}`, http.StatusBadRequest, "invalid_request", "field token must be a string, not number"},
		{"wrong type nested", `{"consistency": {"at_least_revision": "3"}}`, http.StatusBadRequest, "invalid_request", "field consistency.at_least_revision must be an integer, not string"},
		{"not an object", `["token"]`, http.StatusBadRequest, "invalid_request", "the request body must be a JSON object, not array"},
		{"resource not an object", `{"resource": "project:api"}`, http.StatusBadRequest, "invalid_request", "field resource must be an object, not string"},
		{"fractional revision", `{"consistency": {"at_least_revision": 1.5}}`, http.StatusBadRequest, "invalid_request", "field consistency.at_least_revision must be an integer, not number 1.5"},
		{"a second object", `{"token": "t"} {}`, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object"},
		{"trailing garbage", `{"token": "t"} x`, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object"},
		{"trailing bracket", `{"token": "t"}]`, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object"},
		{"empty", ``, http.StatusBadRequest, "invalid_json", "the request body is empty"},
		{"only whitespace", " \n\t", http.StatusBadRequest, "invalid_json", "the request body is empty"},
		{"oversized", `{"token": "` + strings.Repeat("x", limit) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large", "over 256 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, h, http.MethodPost, "/v1/check", bearerOld, tc.body)
			wantError(t, got, tc.status, tc.code)
			if msg, _ := got.body["message"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q does not contain %q", msg, tc.message)
			}
		})
	}

	// Every route decodes the same way.
	routes := []string{"/v1/check", "/v1/check/batch", "/v1/list-resources", "/v1/list-memberships", "/v1/effective-permissions", "/v1/data/trellis/check"}
	shared := []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed", `{`, http.StatusBadRequest, "invalid_json"},
		{"unknown field", `{"no_such_field": 1}`, http.StatusBadRequest, "invalid_request"},
		{"trailing data", `{} {}`, http.StatusBadRequest, "invalid_json"},
		{"empty", ``, http.StatusBadRequest, "invalid_json"},
		{"oversized", `{"x": "` + strings.Repeat("x", limit) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large"},
	}
	for _, route := range routes {
		for _, tc := range shared {
			t.Run(route+" "+tc.name, func(t *testing.T) {
				wantError(t, send(t, h, http.MethodPost, route, bearerOld, tc.body), tc.status, tc.code)
			})
		}
	}
}

func TestCredentials(t *testing.T) {
	apiKeys := fixture{}
	requireKey := fixture{httpapi: httpapi.Config{RequireAPIKey: true}}
	noKeys := fixture{httpapi: httpapi.Config{APIKeys: []string{""}}}
	check := memberCheck("om_bob", "project:edit", ref("project", "api"))
	list := obj{"permission": "project:edit", "resource": ref("project", "api")}
	data := obj{"input": tokenCheck(tokBob, "project:edit", ref("project", "api"))}

	tests := []struct {
		name   string
		fix    fixture
		path   string
		auth   string
		body   any
		status int
		code   string // for errors
	}{
		{"token subject needs no key", apiKeys, "/v1/check", "", tokenCheck(tokBob, "project:edit", ref("project", "api")), http.StatusOK, ""},
		{"membership subject without a key", apiKeys, "/v1/check", "", check, http.StatusUnauthorized, "unauthorized"},
		{"membership subject with the old key", apiKeys, "/v1/check", bearerOld, check, http.StatusOK, ""},
		{"membership subject with the new key", apiKeys, "/v1/check", bearerNew, check, http.StatusOK, ""},
		{"membership subject with a wrong key", apiKeys, "/v1/check", "Bearer key-wrong", check, http.StatusUnauthorized, "unauthorized"},
		{"membership subject with an empty key", apiKeys, "/v1/check", "Bearer ", check, http.StatusUnauthorized, "unauthorized"},
		{"key without the Bearer scheme", apiKeys, "/v1/check", keyOld, check, http.StatusUnauthorized, "unauthorized"},
		{"key in another scheme", apiKeys, "/v1/check", "Basic " + keyOld, check, http.StatusUnauthorized, "unauthorized"},
		{"membership subject in a batch without a key", apiKeys, "/v1/check/batch", "",
			obj{"subject": obj{"organization_membership_id": "om_bob"}, "checks": []any{obj{"permission": "project:edit", "resource": ref("project", "api")}}},
			http.StatusUnauthorized, "unauthorized"},
		{"membership subject in effective-permissions without a key", apiKeys, "/v1/effective-permissions", "",
			obj{"subject": obj{"organization_membership_id": "om_bob"}, "resource": ref("project", "api")}, http.StatusUnauthorized, "unauthorized"},
		{"membership subject in list-resources without a key", apiKeys, "/v1/list-resources", "",
			obj{"subject": obj{"organization_membership_id": "om_bob"}, "permission": "project:edit"}, http.StatusUnauthorized, "unauthorized"},
		{"no subject without a key", apiKeys, "/v1/check", "", obj{"permission": "project:edit", "resource": ref("project", "api")}, http.StatusUnauthorized, "unauthorized"},
		{"no subject with a key", apiKeys, "/v1/check", bearerOld, obj{"permission": "project:edit", "resource": ref("project", "api")}, http.StatusBadRequest, "invalid_request"},
		{"empty membership id", apiKeys, "/v1/check", bearerOld, memberCheck("", "project:edit", ref("project", "api")), http.StatusBadRequest, "invalid_request"},
		{"list-memberships without a key", apiKeys, "/v1/list-memberships", "", list, http.StatusUnauthorized, "unauthorized"},
		{"list-memberships with a key", apiKeys, "/v1/list-memberships", bearerNew, list, http.StatusOK, ""},
		{"data API without a key", apiKeys, "/v1/data/trellis/check", "", data, http.StatusUnauthorized, "unauthorized"},
		{"data API with a wrong key", apiKeys, "/v1/data/trellis/check", "Bearer nope", data, http.StatusUnauthorized, "unauthorized"},
		{"data API with a key", apiKeys, "/v1/data/trellis/check", bearerOld, data, http.StatusOK, ""},
		{"RequireAPIKey: token subject without a key", requireKey, "/v1/check", "", tokenCheck(tokBob, "project:edit", ref("project", "api")), http.StatusUnauthorized, "unauthorized"},
		{"RequireAPIKey: token subject with a key", requireKey, "/v1/check", bearerNew, tokenCheck(tokBob, "project:edit", ref("project", "api")), http.StatusOK, ""},
		{"RequireAPIKey: list-resources without a key", requireKey, "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit"}, http.StatusUnauthorized, "unauthorized"},
		{"no keys configured: an empty key never matches", noKeys, "/v1/check", "Bearer ", check, http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, newHandler(t, tc.fix), tc.path, tc.auth, tc.body)
			if tc.code != "" {
				wantError(t, got, tc.status, tc.code)
			} else if got.status != tc.status {
				t.Errorf("got %d %s, want %d", got.status, got.raw, tc.status)
			}
			if challenge := got.header.Get("WWW-Authenticate"); (tc.status == http.StatusUnauthorized) != (challenge != "") {
				t.Errorf("status %d with WWW-Authenticate %q", got.status, challenge)
			}
		})
	}
}

func TestDecisions(t *testing.T) {
	h := newHandler(t, fixture{})
	tests := []struct {
		name      string
		auth      string
		body      any
		allowed   bool
		decidedBy string
		code      string // reason.code
	}{
		{"allow by token", "", tokenCheck(tokBob, "workspace:view", ref("workspace", "acme-sales")), true, "token", "token_permission"},
		{"allow by inheritance", "", tokenCheck(tokBob, "project:edit", ref("project", "api")), true, "assignment", "role_assignment"},
		{"allow by resource id", "", tokenCheck(tokBob, "project:edit", obj{"id": "authz_resource_acme_api"}), true, "assignment", "role_assignment"},
		{"organization taken from the token", "", tokenCheck(tokBob, "project:edit", obj{"type": "project", "external_id": "api"}), true, "assignment", "role_assignment"},
		{"deny without a grant", "", tokenCheck(tokCarol, "project:edit", ref("project", "api")), false, "none", "no_grant"},
		{"deny an expired token with its code", "", tokenCheck(tokExpired, "workspace:view", ref("workspace", "acme-sales")), false, "none", "token_expired"},
		{"deny a bad token with its code", "", tokenCheck("forged", "workspace:view", ref("workspace", "acme-sales")), false, "none", "token_bad_signature"},
		{"deny an unknown permission", "", tokenCheck(tokBob, "project:fly", ref("project", "api")), false, "none", "unknown_permission"},
		{"deny an unknown resource", "", tokenCheck(tokBob, "project:edit", ref("project", "nope")), false, "none", "unknown_resource"},
		{"allow a membership subject", bearerOld, memberCheck("om_bob", "project:edit", ref("project", "api")), true, "assignment", "role_assignment"},
		{"deny an inactive membership", bearerOld, memberCheck("om_dave", "project:edit", ref("project", "crm")), false, "none", "membership_inactive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, h, "/v1/check", tc.auth, tc.body)
			if got.status != http.StatusOK {
				t.Fatalf("status %d: %s", got.status, got.raw)
			}
			reason, _ := got.body["reason"].(map[string]any)
			if got.body["allowed"] != tc.allowed || got.body["decided_by"] != tc.decidedBy || reason["code"] != tc.code {
				t.Errorf("got allowed=%v decided_by=%v reason=%v, want %v %v %s", got.body["allowed"], got.body["decided_by"], reason, tc.allowed, tc.decidedBy, tc.code)
			}
			if got.body["revision"] != float64(demoRevision) {
				t.Errorf("revision = %v, want %d", got.body["revision"], demoRevision)
			}
			if id, _ := got.body["decision_id"].(string); len(id) != 32 {
				t.Errorf("decision_id = %v", got.body["decision_id"])
			}
		})
	}
}

func TestOtherRoutes(t *testing.T) {
	h := newHandler(t, fixture{})
	tests := []struct {
		name, path, auth string
		body             any
		want             map[string]any // compared with the answer minus decision_id
	}{
		{"batch answers in order", "/v1/check/batch", "", obj{"token": tokBob, "checks": []any{
			obj{"permission": "project:edit", "resource": ref("project", "crm")},
			obj{"permission": "workspace:view", "resource": ref("workspace", "acme-sales")},
		}}, map[string]any{"revision": float64(demoRevision), "results": []any{
			map[string]any{"allowed": false, "decided_by": "none", "reason": map[string]any{"code": "no_grant",
				"message": "membership om_bob holds no role granting project:edit on project:crm or its ancestors"}},
			map[string]any{"allowed": true, "decided_by": "token", "reason": map[string]any{"code": "token_permission",
				"message": "the token grants workspace:view in organization org_acme"}},
		}}},
		{"list-resources", "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit", "resource_type": "project"},
			map[string]any{"revision": float64(demoRevision), "resource_ids": []any{"authz_resource_acme_api", "authz_resource_acme_web"}}},
		{"list-memberships", "/v1/list-memberships", bearerOld, obj{"permission": "project:edit", "resource": ref("project", "web")},
			map[string]any{"revision": float64(demoRevision), "membership_ids": []any{"om_alice", "om_bob", "om_carol"}}},
		{"effective permissions of nobody is an empty list", "/v1/effective-permissions", "", obj{"token": "forged", "resource": ref("project", "web")},
			map[string]any{"revision": float64(demoRevision), "permissions": []any{}, "reason": map[string]any{"code": "token_bad_signature", "message": "the signature does not verify"}}},
		{"data API undefined has no result", "/v1/data/trellis/no_such_rule", bearerOld, obj{"input": obj{}},
			map[string]any{"revision": float64(demoRevision)}},
		{"data API revision", "/v1/data/trellis/revision", bearerOld, obj{},
			map[string]any{"revision": float64(demoRevision), "result": float64(demoRevision)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, h, tc.path, tc.auth, tc.body)
			if got.status != http.StatusOK {
				t.Fatalf("status %d: %s", got.status, got.raw)
			}
			if id, _ := got.body["decision_id"].(string); len(id) != 32 {
				t.Errorf("decision_id = %v", got.body["decision_id"])
			}
			delete(got.body, "decision_id")
			if diff := cmp.Diff(got.body, tc.want); diff != "" {
				t.Errorf("answer (-got +want):\n%s", diff)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	const secret = "pq: password authentication failed for user trellis"
	allowedString := fixture{authz: authz.Config{Engine: fakeEvaluator{Engine: loadedEngine(t), value: map[string]any{"allowed": "true"}}}}
	evalFails := fixture{authz: authz.Config{Engine: fakeEvaluator{Engine: loadedEngine(t), err: errors.New(secret)}}}
	shortWait := fixture{authz: authz.Config{MaxWait: 5 * time.Millisecond, MaxBatch: 2}}
	headFails := fixture{authz: authz.Config{Head: func(context.Context) (int64, error) { return 0, errors.New(secret) }}}
	headAhead := fixture{authz: authz.Config{MaxWait: 5 * time.Millisecond, Head: func(context.Context) (int64, error) { return 1 << 40, nil }}}
	withCons := func(cons obj) obj {
		c := tokenCheck(tokBob, "project:edit", ref("project", "api"))
		c["consistency"] = cons
		return c
	}
	batch := func(n int) obj {
		checks := make([]any, n)
		for i := range checks {
			checks[i] = obj{"permission": "project:edit", "resource": ref("project", "api")}
		}
		return obj{"token": tokBob, "checks": checks}
	}

	tests := []struct {
		name   string
		fix    fixture
		path   string
		auth   string
		body   any
		status int
		code   string // "" for 200
	}{
		{"token and subject", fixture{}, "/v1/check", bearerOld,
			obj{"token": tokBob, "subject": obj{"organization_membership_id": "om_bob"}, "permission": "p", "resource": obj{"id": "r"}},
			http.StatusBadRequest, "invalid_request"},
		{"missing permission", fixture{}, "/v1/check", "", obj{"token": tokBob, "resource": obj{"id": "r"}}, http.StatusBadRequest, "invalid_request"},
		{"missing resource", fixture{}, "/v1/check", "", obj{"token": tokBob, "permission": "p"}, http.StatusBadRequest, "invalid_request"},
		{"negative revision", fixture{}, "/v1/check", "", withCons(obj{"at_least_revision": -1}), http.StatusBadRequest, "invalid_request"},
		{"both consistencies", fixture{}, "/v1/check", "", withCons(obj{"at_least_revision": 1, "fully_consistent": true}), http.StatusBadRequest, "invalid_request"},
		{"empty batch", shortWait, "/v1/check/batch", "", batch(0), http.StatusBadRequest, "invalid_request"},
		{"batch over the limit", shortWait, "/v1/check/batch", "", batch(3), http.StatusBadRequest, "invalid_request"},
		{"batch at the limit", shortWait, "/v1/check/batch", "", batch(2), http.StatusOK, ""},
		{"page over the limit", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "p", "limit": authz.MaxPageSize + 1}, http.StatusBadRequest, "invalid_request"},
		{"list of an unknown permission", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:fly"}, http.StatusBadRequest, "invalid_request"},
		{"list of an unknown type", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit", "resource_type": "nope"}, http.StatusBadRequest, "invalid_request"},
		{"list below an unknown parent", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit", "parent": ref("workspace", "nope")}, http.StatusNotFound, "not_found"},
		{"members of an unknown resource", fixture{}, "/v1/list-memberships", bearerOld, obj{"permission": "project:edit", "resource": ref("project", "nope")}, http.StatusNotFound, "not_found"},
		{"page of nothing", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "p", "limit": 0}, http.StatusBadRequest, "invalid_request"},
		{"negative page", fixture{}, "/v1/list-memberships", bearerOld, obj{"permission": "p", "resource": ref("project", "api"), "limit": -1}, http.StatusBadRequest, "invalid_request"},
		{"members page of nothing", fixture{}, "/v1/list-memberships", bearerOld, obj{"permission": "p", "resource": ref("project", "api"), "limit": 0}, http.StatusBadRequest, "invalid_request"},
		{"applied revision", shortWait, "/v1/check", "", withCons(obj{"at_least_revision": demoRevision}), http.StatusOK, ""},
		{"revision far in the future", shortWait, "/v1/check", "", withCons(obj{"at_least_revision": 1 << 40}), http.StatusServiceUnavailable, "revision_not_applied"},
		{"revision far in the future in a batch", shortWait, "/v1/check/batch", "",
			obj{"token": tokBob, "checks": []any{obj{"permission": "p", "resource": obj{"id": "r"}}}, "consistency": obj{"at_least_revision": 1 << 40}},
			http.StatusServiceUnavailable, "revision_not_applied"},
		{"fully consistent without a head", fixture{}, "/v1/check", "", withCons(obj{"fully_consistent": true}), http.StatusOK, ""},
		{"fully consistent, head ahead", headAhead, "/v1/check", "", withCons(obj{"fully_consistent": true}), http.StatusServiceUnavailable, "revision_not_applied"},
		{"fully consistent, head unreadable", headFails, "/v1/check", "", withCons(obj{"fully_consistent": true}), http.StatusServiceUnavailable, "unavailable"},
		{"policy answers allowed as a string", allowedString, "/v1/check", "", tokenCheck(tokBob, "project:edit", ref("project", "api")), http.StatusInternalServerError, "internal_error"},
		{"policy answers one result for two checks", allowedString, "/v1/check/batch", "", batch(2), http.StatusInternalServerError, "internal_error"},
		{"evaluation fails", evalFails, "/v1/check", "", tokenCheck(tokBob, "project:edit", ref("project", "api")), http.StatusInternalServerError, "internal_error"},
		{"evaluation of a list fails", evalFails, "/v1/list-resources", "", obj{"token": tokBob, "permission": "p"}, http.StatusInternalServerError, "internal_error"},
		{"data API: claims as input.token", fixture{}, "/v1/data/trellis/check", bearerOld,
			obj{"input": obj{"token": obj{"org_id": "org_acme", "permissions": []string{"project:edit"}}, "permission": "project:edit", "resource": ref("project", "api")}},
			http.StatusBadRequest, "invalid_request"},
		{"data API: input.token_error", fixture{}, "/v1/data/trellis/check", bearerOld, obj{"input": obj{"token_error": obj{"code": "x"}}}, http.StatusBadRequest, "invalid_request"},
	}
	// The failures whose cause (secret) must be logged; it never reaches the
	// client.
	logsCause := map[string]bool{"fully consistent, head unreadable": true, "evaluation fails": true, "evaluation of a list fails": true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			tc.fix.httpapi.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			got := post(t, newHandler(t, tc.fix), tc.path, tc.auth, tc.body)
			if tc.code == "" {
				if got.status != tc.status {
					t.Errorf("got %d %s, want %d", got.status, got.raw, tc.status)
				}
				return
			}
			wantError(t, got, tc.status, tc.code)
			if strings.Contains(got.raw, secret) {
				t.Errorf("an internal error reached the client: %s", got.raw)
			}
			if tc.status >= 500 && tc.code != "revision_not_applied" && !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("an internal error was not logged: %q", logs.String())
			}
			if logsCause[tc.name] && !strings.Contains(logs.String(), secret) {
				t.Errorf("the cause is not in the log: %q", logs.String())
			}
		})
	}
}

func TestCanceledRequest(t *testing.T) {
	h := newHandler(t, fixture{authz: authz.Config{MaxWait: time.Minute}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := `{"token": "tok-bob", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}, "consistency": {"at_least_revision": 1000000}}`
	wantError(t, sendContext(t, ctx, h, http.MethodPost, "/v1/check", "", body), http.StatusServiceUnavailable, "canceled")
}

func TestHealthAndReady(t *testing.T) {
	tests := []struct {
		name   string
		ready  func() (bool, map[string]any)
		path   string
		status int
		want   map[string]any
	}{
		{"health", nil, "/health", http.StatusOK, map[string]any{"status": "ok"}},
		{"health while not ready", func() (bool, map[string]any) { return false, nil }, "/health", http.StatusOK, map[string]any{"status": "ok"}},
		{"ready by default", nil, "/ready", http.StatusOK, map[string]any{"ready": true}},
		{"ready with details", func() (bool, map[string]any) { return true, map[string]any{"revision": 7, "stale": false} },
			"/ready", http.StatusOK, map[string]any{"ready": true, "revision": float64(7), "stale": false}},
		{"not ready before the first load", func() (bool, map[string]any) { return false, map[string]any{"revision": 0, "stale": false} },
			"/ready", http.StatusServiceUnavailable, map[string]any{"ready": false, "revision": float64(0), "stale": false}},
		{"stale but ready", func() (bool, map[string]any) { return true, map[string]any{"revision": 9, "stale": true} },
			"/ready", http.StatusOK, map[string]any{"ready": true, "revision": float64(9), "stale": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, fixture{httpapi: httpapi.Config{Ready: tc.ready}})
			got := send(t, h, http.MethodGet, tc.path, "", "")
			if got.status != tc.status {
				t.Errorf("status %d, want %d", got.status, tc.status)
			}
			if diff := cmp.Diff(got.body, tc.want); diff != "" {
				t.Errorf("body (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecisionLog(t *testing.T) {
	var buf logBuffer
	h := newHandler(t, fixture{httpapi: httpapi.Config{DecisionLog: slog.New(slog.NewJSONHandler(&buf, nil))}})
	api := ref("project", "api")
	apiLogged := map[string]any{"type": "project", "external_id": "api", "organization_id": "org_acme"}

	tests := []struct {
		name string
		path string
		auth string
		body any
		want []map[string]any // entries without time, level, msg and decision_id
	}{
		{"token check", "/v1/check", "", tokenCheck(tokBob, "project:edit", api), []map[string]any{
			{"subject": "token", "permission": "project:edit", "resource": apiLogged, "allowed": true,
				"decided_by": "assignment", "reason": "role_assignment", "revision": float64(demoRevision)},
		}},
		{"membership check", "/v1/check", bearerOld, memberCheck("om_carol", "project:edit", api), []map[string]any{
			{"subject": "om_carol", "permission": "project:edit", "resource": apiLogged, "allowed": false,
				"decided_by": "none", "reason": "no_grant", "revision": float64(demoRevision)},
		}},
		{"batch logs each check", "/v1/check/batch", "", obj{"token": tokBob, "checks": []any{
			obj{"permission": "project:edit", "resource": api},
			obj{"permission": "project:fly", "resource": obj{"id": "authz_resource_acme_api"}},
		}}, []map[string]any{
			{"subject": "token", "permission": "project:edit", "resource": apiLogged, "allowed": true,
				"decided_by": "assignment", "reason": "role_assignment", "revision": float64(demoRevision)},
			{"subject": "token", "permission": "project:fly", "resource": map[string]any{"id": "authz_resource_acme_api"}, "allowed": false,
				"decided_by": "none", "reason": "unknown_permission", "revision": float64(demoRevision)},
		}},
		{"no entry without a decision", "/v1/check", "", tokenCheck(tokBob, "", api), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(buf.entries(t))
			got := post(t, h, tc.path, tc.auth, tc.body)
			entries := buf.entries(t)[before:]
			var trimmed []map[string]any
			for _, e := range entries {
				if e["decision_id"] != got.body["decision_id"] {
					t.Errorf("logged decision_id %v, answered %v", e["decision_id"], got.body["decision_id"])
				}
				if e["msg"] != "decision" || e["level"] != "INFO" {
					t.Errorf("entry %v: want an INFO \"decision\"", e)
				}
				for _, k := range []string{"time", "level", "msg", "decision_id"} {
					delete(e, k)
				}
				trimmed = append(trimmed, e)
			}
			if diff := cmp.Diff(trimmed, tc.want); diff != "" {
				t.Errorf("entries (-got +want):\n%s", diff)
			}
		})
	}
}

func TestMetricsReported(t *testing.T) {
	tests := []struct {
		name      string
		fix       fixture
		path      string
		auth      string
		body      any
		decisions []metricCall
		durations map[string]int
	}{
		{"check allowed by token", fixture{}, "/v1/check", "", tokenCheck(tokBob, "workspace:view", ref("workspace", "acme-eng")),
			[]metricCall{{"check", true, "token", false}}, map[string]int{"check": 1}},
		{"check denied", fixture{}, "/v1/check", "", tokenCheck(tokCarol, "project:edit", ref("project", "api")),
			[]metricCall{{"check", false, "none", false}}, map[string]int{"check": 1}},
		{"check without a decision", fixture{authz: authz.Config{MaxWait: time.Millisecond}}, "/v1/check", "",
			obj{"token": tokBob, "permission": "p", "resource": obj{"id": "r"}, "consistency": obj{"at_least_revision": 1 << 40}},
			[]metricCall{{"check", false, "", true}}, map[string]int{"check": 1}},
		{"batch reports every decision", fixture{}, "/v1/check/batch", "", obj{"token": tokBob, "checks": []any{
			obj{"permission": "project:edit", "resource": ref("project", "api")},
			obj{"permission": "project:edit", "resource": ref("project", "crm")},
		}}, []metricCall{{"batch", true, "assignment", false}, {"batch", false, "none", false}}, map[string]int{"batch": 1}},
		{"data API decision", fixture{}, "/v1/data/trellis/check", bearerOld, obj{"input": tokenCheck(tokBob, "project:edit", ref("project", "api"))},
			[]metricCall{{"data", true, "assignment", false}}, map[string]int{"data": 1}},
		{"data API other document", fixture{}, "/v1/data/trellis/revision", bearerOld, obj{}, nil, map[string]int{"data": 1}},
		{"list-resources is timed, not counted", fixture{}, "/v1/list-resources", "", obj{"token": tokBob, "permission": "project:edit"},
			nil, map[string]int{"list_resources": 1}},
		{"list-memberships", fixture{}, "/v1/list-memberships", bearerOld, obj{"permission": "project:edit", "resource": ref("project", "api")},
			nil, map[string]int{"list_memberships": 1}},
		{"effective permissions", fixture{}, "/v1/effective-permissions", "", obj{"token": tokBob, "resource": ref("project", "api")},
			nil, map[string]int{"effective_permissions": 1}},
		{"a rejected request is no decision", fixture{}, "/v1/check", "", `{"token": 1}`, nil, nil},
		{"an unauthorized request is no decision", fixture{}, "/v1/check", "", memberCheck("om_bob", "p", obj{"id": "r"}), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &recordingMetrics{}
			tc.fix.httpapi.Metrics = m
			post(t, newHandler(t, tc.fix), tc.path, tc.auth, tc.body)
			if diff := cmp.Diff(m.decisions, tc.decisions); diff != "" {
				t.Errorf("decisions (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(m.durations, tc.durations); diff != "" {
				t.Errorf("durations (-got +want):\n%s", diff)
			}
		})
	}
}

// TestExtensionFailureLogged: a check an extension's failure denies is
// answered denied and logged as a warning naming the rule.
func TestExtensionFailureLogged(t *testing.T) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Options{Modules: enginetest.Extended("broken", `deny contains {"code": "x", "message": "y"} if to_number(input.context.n) > 3`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDataset(ctx, datafile.Demo()); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := newHandler(t, fixture{authz: authz.Config{Engine: e}, httpapi: httpapi.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	got := post(t, h, "/v1/check", bearerOld, obj{"subject": obj{"organization_membership_id": "om_bob"}, "permission": "project:edit",
		"resource": obj{"id": "authz_resource_acme_api"}, "context": obj{"n": "not a number"}})
	if got.status != http.StatusOK || got.body["allowed"] != false || got.body["decided_by"] != "extension" {
		t.Fatalf("got %d %s, want a denial by the extension", got.status, got.raw)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "data.trellis.ext.broken.deny") || !strings.Contains(l, "to_number") {
		t.Errorf("log %q: want a warning naming the rule and the error", l)
	}
}
