package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

// fuzzRoutes are the routes FuzzDecode sends bodies to, chosen by the
// fuzzer's route byte.
var fuzzRoutes = []string{"/v1/check", "/v1/check/batch", "/v1/data/trellis/check", "/v1/list-resources", "/v1/list-memberships"}

// activeMembers are the demo memberships that may be granted anything.
var activeMembers = []string{"om_alice", "om_bob", "om_carol", "om_erin", "om_frank"}

// FuzzDecode sends arbitrary bodies, with a valid API key, to the decision
// routes. It must never panic, never answer 5xx (but for 503
// revision_not_applied, the documented answer to an at_least_revision that
// is not applied), always answer JSON, answer 400 to a body with a NUL byte
// or invalid UTF-8 in a string (raw or escaped), and answer allowed: true
// only to a well-formed request from an authentic subject.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		route int
		body  string
	}{
		{0, `{"token": "tok-bob", "permission": "project:edit", "resource": {"type": "project", "external_id": "api", "organization_id": "org_acme"}}`},
		{0, `{"token": "tok-bob", "permission": "workspace:view", "resource": {"type": "workspace", "external_id": "acme-eng"}}`},
		{0, `{"subject": {"organization_membership_id": "om_alice"}, "permission": "org:manage", "resource": {"id": "authz_resource_root_org_acme"}}`},
		{0, `{"subject": {"organization_membership_id": "om_dave"}, "permission": "project:edit", "resource": {"id": "authz_resource_acme_crm"}}`},
		{0, `{"token": "tok-carol", "permission": "project:edit", "resource": {"id": "authz_resource_acme_web"}, "consistency": {"at_least_revision": 3}}`},
		{0, `{"token": "tok-bob", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}, "consistency": {"fully_consistent": true}}`},
		{0, `{"token": "tok-bob", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}, "consistency": {"at_least_revision": 99}}`},
		{0, `{"token": "forged", "permission": "workspace:view", "resource": {"id": "authz_resource_acme_eng"}}`},
		{0, `{"token": "tok-bob", "subject": {"organization_membership_id": "om_alice"}, "permission": "org:manage", "resource": {"id": "authz_resource_root_org_acme"}}`},
		{0, `{"token": "tok-bob", "permission": "project:edit", "resource": {"id": "authz_resource_acme_api", "type": "project"}}`},
		{0, `{"token": "tok-bob", "permission": 7}`},
		{0, `{"token": "tok-bob", "permision": "a"}`},
		{0, `{"token": "tok-bob"} {}`},
		{0, `{"token": `},
		{0, ``},
		{0, `null`},
		{0, `[]`},
		{0, `{"token": "` + strings.Repeat("x", 5000) + `"}`},
		{1, `{"token": "tok-bob", "checks": [{"permission": "project:edit", "resource": {"type": "project", "external_id": "api"}}, {"permission": "project:edit", "resource": {"id": "authz_resource_acme_crm"}}]}`},
		{1, `{"subject": {"organization_membership_id": "om_carol"}, "checks": [{"permission": "project:edit", "resource": {"id": "authz_resource_acme_web"}}]}`},
		{1, `{"token": "tok-bob", "checks": []}`},
		{1, `{"token": "tok-bob", "checks": [{"permission": "project:edit"}]}`},
		{1, `{"token": "tok-bob", "checks": {"permission": "project:edit"}}`},
		{2, `{"input": {"token": "tok-bob", "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}}}`},
		{2, `{"input": {"subject": {"organization_membership_id": "om_bob"}, "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}, "extra": [1, 2]}}`},
		{2, `{"input": {"token": {"org_id": "org_acme", "permissions": ["project:edit"]}, "permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}}}`},
		{2, `{"input": {"token_error": {"code": "x"}}}`},
		{2, `{"input": {"permission": "project:edit", "resource": {"id": "authz_resource_acme_api"}}}`},
		{2, `{"input": 1}`},
		{2, `{"input": {"token": "tok-bob", "permission": ["project:edit"], "resource": "authz_resource_acme_api"}}`},
		{2, `{}`},
		{0, `{"token": "tok-bob", "permission": "project:edit\u0000", "resource": {"id": "authz_resource_acme_api"}}`},
		{0, "{\"token\": \"tok-bob\", \"permission\": \"project:edit\", \"resource\": {\"type\": \"project\", \"external_id\": \"api\xff\"}}"},
		{0, `{"subject": {"organization_membership_id": "om_alice\ud800"}, "permission": "org:manage", "resource": {"id": "authz_resource_root_org_acme"}}`},
		{1, `{"token": "tok-bob", "checks": [{"permission": "project:edit", "resource": {"id": "\udc00"}}]}`},
		{2, "{\"input\": {\"token\": \"tok-bob\", \"permission\": \"project:edit\", \"resource\": {\"id\": \"authz_resource_acme_api\"}, \"\xed\xa0\x80\": 1}}"},
		{2, `{"input": {"a\u0000": "b"}}`},
		{3, `{"token": "tok-bob", "permission": "project:edit", "limit": 1}`},
		{3, `{"token": "tok-bob", "permission": "project:edit", "cursor": "AVzKBGK9EDrJYXV0aHpfcmVzb3VyY2VfYWNtZV9hcGkeWYrt"}`},
		{3, `{"token": "tok-bob", "permission": "project:edit", "cursor": "authz_resource_acme_api"}`},
		{3, `{"token": "tok-bob", "permission": "project:edit", "cursor": "\u0000"}`},
		{4, `{"permission": "project:edit", "resource": {"id": "authz_resource_acme_web"}, "cursor": "AAAAAAAAAAAAAAAA"}`},
		{4, "{\"permission\": \"project:edit\", \"resource\": {\"id\": \"authz_resource_acme_web\"}, \"cursor\": \"\xff\"}"},
	}
	for _, s := range seeds {
		f.Add(uint8(s.route), []byte(s.body))
	}
	const maxBody = 4096
	h := newHandler(f, fixture{
		authz:   authz.Config{MaxWait: time.Millisecond, MaxBatch: 16},
		httpapi: httpapi.Config{MaxBodyBytes: maxBody},
	})
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", bearerOld)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: answer %d is not a JSON object: %q", path, rec.Code, rec.Body.String())
		}
		if rec.Code >= 500 && (rec.Code != http.StatusServiceUnavailable || out["code"] != "revision_not_applied") {
			t.Fatalf("%s %q: %d %v", path, body, rec.Code, out)
		}
		if rawjson.CheckText(body) != nil && len(body) <= maxBody && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s %q: a string is not text, but the answer is %d %v", path, body, rec.Code, out)
		}
		if rec.Code != http.StatusOK {
			if _, ok := out["allowed"]; ok {
				t.Fatalf("%s %q: error answer %d carries allowed: %v", path, body, rec.Code, out)
			}
			return
		}
		for i, allowed := range allowedValues(t, path, out) {
			if allowed && !validRequest(path, body, i) {
				t.Fatalf("%s: allowed answer %d to an invalid request %q: %v", path, i, body, out)
			}
		}
	})
}

// allowedValues extracts the allowed flags of an answer, in order.
func allowedValues(t *testing.T, path string, out map[string]any) []bool {
	t.Helper()
	allowedOf := func(v any) bool {
		obj, _ := v.(map[string]any)
		a, isBool := obj["allowed"].(bool)
		if obj != nil && obj["allowed"] != nil && !isBool {
			t.Fatalf("%s: allowed is %T", path, obj["allowed"])
		}
		return a
	}
	switch path {
	case "/v1/check":
		return []bool{allowedOf(out)}
	case "/v1/check/batch":
		results, _ := out["results"].([]any)
		flags := make([]bool, len(results))
		for i, r := range results {
			flags[i] = allowedOf(r)
		}
		return flags
	default:
		return []bool{allowedOf(out["result"])}
	}
}

// fuzzSubject mirrors the subject fields of a native request.
type fuzzSubject struct {
	Token   string `json:"token"`
	Subject *struct {
		MembershipID string `json:"organization_membership_id"`
	} `json:"subject"`
}

// authentic says the subject is one that may be granted anything: exactly
// one of a token the fixture's verifier accepts and an active membership.
func (s fuzzSubject) authentic() bool {
	switch {
	case s.Token != "" && s.Subject != nil:
		return false
	case s.Subject != nil:
		return slices.Contains(activeMembers, s.Subject.MembershipID)
	}
	return s.Token == tokBob || s.Token == tokCarol
}

// validRequest says whether body is a well-formed request to path from an
// authentic subject; for a batch, whether its check i is well-formed.
func validRequest(path string, body []byte, i int) bool {
	switch path {
	case "/v1/check":
		var req struct {
			fuzzSubject
			Permission  string            `json:"permission"`
			Resource    authz.ResourceRef `json:"resource"`
			Consistency authz.Consistency `json:"consistency"`
		}
		return strictDecode(body, &req) && req.authentic() && validCheck(req.Permission, req.Resource)
	case "/v1/check/batch":
		var req struct {
			fuzzSubject
			Checks      []authz.Check     `json:"checks"`
			Consistency authz.Consistency `json:"consistency"`
		}
		return strictDecode(body, &req) && req.authentic() && i < len(req.Checks) &&
			validCheck(req.Checks[i].Permission, req.Checks[i].Resource)
	}
	// The Data API: OPA input may carry anything besides what the policy
	// reads, so only the fields it reads are checked.
	var req struct {
		Input json.RawMessage `json:"input"`
	}
	if !strictDecode(body, &req) {
		return false
	}
	var in struct {
		Token      any            `json:"token"`
		Subject    map[string]any `json:"subject"`
		Permission any            `json:"permission"`
		Resource   map[string]any `json:"resource"`
	}
	if json.Unmarshal(req.Input, &in) != nil {
		return false
	}
	perm, _ := in.Permission.(string)
	tok, _ := in.Token.(string)
	om, _ := in.Subject["organization_membership_id"].(string)
	id, _ := in.Resource["id"].(string)
	typ, _ := in.Resource["type"].(string)
	ext, _ := in.Resource["external_id"].(string)
	subjectOK := (in.Token == nil || tok == tokBob || tok == tokCarol) &&
		(in.Subject == nil && in.Token != nil || slices.Contains(activeMembers, om))
	return subjectOK && perm != "" && (id != "" || typ != "" && ext != "")
}

func validCheck(perm string, r authz.ResourceRef) bool {
	return perm != "" && (r.ID != "") != (r.Type != "" && r.ExternalID != "") && (r.ID == "" || r.Type == "" && r.ExternalID == "")
}

// strictDecode decodes exactly one JSON object with known fields.
func strictDecode(body []byte, dst any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(dst) != nil {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}
