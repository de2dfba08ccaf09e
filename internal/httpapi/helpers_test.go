package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// The fixture is the embedded demo dataset at revision demoRevision, with
// these API keys and tokens.
const (
	demoRevision = 3
	keyOld       = "key-old"
	keyNew       = "key-new"

	tokBob     = "tok-bob"     // om_bob: org-member of org_acme, workspace-admin on acme-eng
	tokCarol   = "tok-carol"   // om_carol: project-editor on project web
	tokExpired = "tok-expired" // fails verification with token.CodeExpired
)

var (
	engineOnce sync.Once
	demoEngine *engine.Engine
	engineErr  error
)

// loadedEngine returns an engine holding the demo dataset. It is shared by
// every test (loading it is the slow part), which only read from it.
func loadedEngine(t testing.TB) *engine.Engine {
	t.Helper()
	engineOnce.Do(func() {
		ctx := context.Background()
		e, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
		if err != nil {
			engineErr = err
			return
		}
		ds := datafile.Demo()
		ds.Revision = demoRevision
		engineErr = e.LoadDataset(ctx, ds)
		demoEngine = e
	})
	if engineErr != nil {
		t.Fatalf("load demo engine: %v", engineErr)
	}
	return demoEngine
}

// fakeVerifier accepts the fixture's tokens; any other string fails with
// token.CodeBadSignature.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, raw string) (token.Claims, error) {
	member := []string{"org:view", "workspace:view"}
	switch raw {
	case tokBob:
		return token.Claims{Subject: "user_bob", OrganizationID: "org_acme", MembershipID: "om_bob", Role: "org-member", Permissions: member}, nil
	case tokCarol:
		return token.Claims{Subject: "user_carol", OrganizationID: "org_acme", MembershipID: "om_carol", Role: "org-member", Permissions: member}, nil
	case tokExpired:
		return token.Claims{}, &token.Error{Code: token.CodeExpired, Message: "the token has expired"}
	}
	return token.Claims{}, &token.Error{Code: token.CodeBadSignature, Message: "the signature does not verify"}
}

// fixture configures a test server. Zero fields get the defaults of
// newHandler.
type fixture struct {
	authz   authz.Config   // Engine and Tokens default to the demo engine and fakeVerifier
	httpapi httpapi.Config // Service is set by newHandler; APIKeys default to keyOld and keyNew
}

// newHandler returns the API handler over a real service and engine.
func newHandler(t testing.TB, f fixture) http.Handler {
	t.Helper()
	if f.authz.Engine == nil {
		f.authz.Engine = loadedEngine(t)
	}
	if f.authz.Tokens == nil {
		f.authz.Tokens = fakeVerifier{}
	}
	svc, err := authz.New(f.authz)
	if err != nil {
		t.Fatal(err)
	}
	f.httpapi.Service = svc
	if f.httpapi.APIKeys == nil {
		f.httpapi.APIKeys = []string{keyOld, keyNew}
	}
	if f.httpapi.Logger == nil {
		f.httpapi.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := httpapi.New(f.httpapi)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// response is a recorded answer with its JSON body decoded.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// Authorization header values.
const (
	bearerOld = "Bearer " + keyOld
	bearerNew = "Bearer " + keyNew
)

// send serves one request and decodes the answer, which must be a JSON
// object. auth, when set, is the Authorization header.
func send(t testing.TB, h http.Handler, method, path, auth, body string) response {
	t.Helper()
	return sendContext(t, context.Background(), h, method, path, auth, body)
}

// sendContext is send with the request's context.
func sendContext(t testing.TB, ctx context.Context, h http.Handler, method, path, auth, body string) response {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json (body %q)", method, path, ct, resp.raw)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp.body); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v (body %q)", method, path, err, resp.raw)
	}
	return resp
}

// post sends body, marshalled unless it is a string, to path.
func post(t testing.TB, h http.Handler, path, auth string, body any) response {
	t.Helper()
	s, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		s = string(b)
	}
	return send(t, h, http.MethodPost, path, auth, s)
}

// wantError fails unless r is an error answer with status and code and a
// non-empty message.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.body["code"] != code {
		t.Errorf("got %d %v, want %d with code %q", r.status, r.raw, status, code)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Errorf("error answer without a message: %s", r.raw)
	}
	if _, has := r.body["allowed"]; has {
		t.Errorf("error answer carries allowed: %s", r.raw)
	}
}

// obj is shorthand for a JSON object in a request.
type obj = map[string]any

func ref(typ, ext string) obj {
	return obj{"type": typ, "external_id": ext, "organization_id": "org_acme"}
}

func tokenCheck(tok, perm string, resource obj) obj {
	return obj{"token": tok, "permission": perm, "resource": resource}
}

func memberCheck(om, perm string, resource obj) obj {
	return obj{"subject": obj{"organization_membership_id": om}, "permission": perm, "resource": resource}
}

// fakeEvaluator wraps the demo engine and replaces the value of every
// decision with value (or fails with err).
type fakeEvaluator struct {
	*engine.Engine
	value any
	err   error
}

func (f fakeEvaluator) Decide(context.Context, engine.Entrypoint, ast.Value) (engine.Result, error) {
	return engine.Result{Value: f.value, Revision: demoRevision}, f.err
}

func (f fakeEvaluator) Session(ctx context.Context, fn func(func(engine.Entrypoint, ast.Value) (engine.Result, error)) error) error {
	return fn(func(ep engine.Entrypoint, in ast.Value) (engine.Result, error) { return f.Decide(ctx, ep, in) })
}

// logBuffer is a decision log that keeps its JSON entries.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries decodes the entries logged so far.
func (b *logBuffer) entries(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for dec.More() {
		var e map[string]any
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("decision log entry: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// metricCall is one call to a recordingMetrics.
type metricCall struct {
	Entrypoint string
	Allowed    bool
	DecidedBy  string
	Err        bool
}

// recordingMetrics records what the handler reports.
type recordingMetrics struct {
	mu        sync.Mutex
	decisions []metricCall
	durations map[string]int
}

func (m *recordingMetrics) ObserveDecision(ep string, allowed bool, decidedBy string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decisions = append(m.decisions, metricCall{ep, allowed, decidedBy, err != nil})
}

func (m *recordingMetrics) ObserveDuration(ep string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.durations == nil {
		m.durations = map[string]int{}
	}
	if d >= 0 {
		m.durations[ep]++
	}
}
