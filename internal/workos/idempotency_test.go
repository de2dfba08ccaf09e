package workos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workos/sdktest"
)

func TestIdempotencyKey(t *testing.T) { conformance(t, testIdempotencyKey) }

func testIdempotencyKey(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	f := e.seed()
	key := func(k string) []string { return []string{workos.HeaderIdempotencyKey, k} }
	create := obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "once", "name": "Once"}

	first := e.raw("POST", "/authorization/resources", create, key("k-1")...)
	if first.status != 201 {
		t.Fatalf("first create: %d %s", first.status, first.body)
	}
	again := e.raw("POST", "/authorization/resources", create, key("k-1")...)
	if again.status != 201 || !bytes.Equal(again.body, first.body) || again.header.Get(workos.HeaderReplayed) != "true" {
		t.Fatalf("replay: %d %q %s, want the first answer %s", again.status, again.header.Get(workos.HeaderReplayed), again.body, first.body)
	}
	if got, want := again.header.Get(workos.HeaderRevision), first.header.Get(workos.HeaderRevision); got != want {
		t.Fatalf("replay revision %q, want %q", got, want)
	}
	if got := e.raw("POST", "/authorization/resources", create, key("k-2")...); got.status != 409 {
		t.Fatalf("the same create under a new key: %d %s, want 409 (the first one was written once)", got.status, got.body)
	}

	// The key of another request: refused, nothing written.
	other := obj{"organization_id": f.org, "resource_type_slug": "workspace", "external_id": "other", "name": "Other"}
	got := e.wantError("POST", "/authorization/resources", other, 400, "invalid_request", key("k-1")...)
	if !strings.Contains(str(got["message"]), "Idempotency-Key") {
		t.Fatalf("reuse message does not name the header: %v", got)
	}
	e.wantError("GET", "/authorization/organizations/"+f.org+"/resources/workspace/other", nil, 404, "entity_not_found")
	// So is a key on another route, and a key that is not text.
	e.wantError("POST", "/organizations", obj{"name": "X"}, 400, "invalid_request", key("k-1")...)
	e.wantError("POST", "/organizations", obj{"name": "X"}, 400, "invalid_request", key(strings.Repeat("k", 256))...)

	// A refused request is recorded too: its retry is refused the same way.
	bad := obj{"organization_id": f.org, "resource_type_slug": "project", "external_id": "orphan", "name": "Orphan"}
	r1 := e.raw("POST", "/authorization/resources", bad, key("k-bad")...)
	r2 := e.raw("POST", "/authorization/resources", bad, key("k-bad")...)
	if r1.status != 422 || r2.status != 422 || !bytes.Equal(r1.body, r2.body) {
		t.Fatalf("refused create and its retry: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
	}

	// Eight concurrent identical requests with one key: one write, eight
	// equal answers.
	const n = 8
	role := obj{"slug": "concurrent", "name": "Concurrent"}
	answers := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i], errs[i] = e.send("POST", "/authorization/roles", role, key("k-concurrent")...) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if answers[i].status != 201 || !bytes.Equal(answers[i].body, answers[0].body) {
			t.Fatalf("concurrent request %d: %d %s, request 0: %d %s", i, answers[i].status, answers[i].body, answers[0].status, answers[0].body)
		}
	}
	var roles []string
	for _, r := range e.do("GET", "/authorization/roles", nil, 200)["data"].([]any) {
		roles = append(roles, str(r.(obj)["slug"]))
	}
	if c := countOf(roles, "concurrent"); c != 1 {
		t.Fatalf("roles after 8 concurrent creates with one key: %v", roles)
	}

	// A check writes nothing: a key on it is not recorded (its retry is
	// answered afresh) and may be sent again with another check.
	for _, perm := range []string{"project:view", "org:read"} {
		e.do("POST", "/authorization/organization_memberships/"+f.alice+"/check", obj{"permission_slug": perm, "resource_id": f.web}, 200, key("k-check")...)
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// TestIdempotencyKeyAcrossInstances: a retry that reaches another instance
// of the same database is answered with the first response too, and that
// instance's decisions then reflect the write.
func TestIdempotencyKeyAcrossInstances(t *testing.T) {
	dsn := pgtest.URL(t)
	a, b := instance(t, dsn), instance(t, dsn)
	f := a.seed()
	body := obj{"role_slug": "project-viewer", "resource_id": f.web}
	path := "/authorization/organization_memberships/" + f.bob + "/role_assignments"
	first := a.raw("POST", path, body, workos.HeaderIdempotencyKey, "k-across")
	retry := b.raw("POST", path, body, workos.HeaderIdempotencyKey, "k-across")
	if first.status != 201 || retry.status != 201 || !bytes.Equal(first.body, retry.body) {
		t.Fatalf("first %d %s, retry on the other instance %d %s", first.status, first.body, retry.status, retry.body)
	}
	if got := b.do("POST", "/authorization/organization_memberships/"+f.bob+"/check", obj{"permission_slug": "project:view", "resource_id": f.web}, 200); got["authorized"] != true {
		t.Fatalf("check on the instance that replayed the write: %v", got)
	}
	if got := ids(t, b.do("GET", path, nil, 200)); len(got) != 1 {
		t.Fatalf("assignments after a create and its replay: %v", got)
	}
}

// droppingProxy forwards requests to target, but of each POST with an
// Idempotency-Key it has not seen, it lets Trellis answer and then closes
// the client's connection without a response — a network failure after
// the write, which the SDK retries with the same key.
type droppingProxy struct {
	target  string
	mu      sync.Mutex
	seen    map[string]bool
	dropped []string // "POST /path" of each dropped response
}

func (p *droppingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	res, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	resBody, err := io.ReadAll(res.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	key := r.Header.Get(workos.HeaderIdempotencyKey)
	p.mu.Lock()
	drop := r.Method == http.MethodPost && key != "" && !p.seen[key]
	if drop {
		p.seen[key] = true
		p.dropped = append(p.dropped, r.Method+" "+r.URL.Path)
	}
	p.mu.Unlock()
	if drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	for k, vs := range res.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(resBody)
}

// TestNodeSDKRetries drives sdktest/retry.mjs (the real SDK, default
// retries) through droppingProxy: every create's first response is lost
// after Trellis wrote it, the SDK retries with its Idempotency-Key, and
// each call returns its entity — created exactly once.
func TestNodeSDKRetries(t *testing.T) {
	if testing.Short() || os.Getenv("TRELLIS_SKIP_SDK_TEST") == "1" {
		t.Skip("skipped on request (-short or TRELLIS_SKIP_SDK_TEST=1)")
	}
	dir := sdktest.Dir(t)
	e := newEnvOn(t, postgresBackend)
	proxy := &droppingProxy{target: e.srv.URL, seen: map[string]bool{}}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "node", "retry.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(), "TRELLIS_URL="+ps.URL, "TRELLIS_API_KEY="+testKey, "NODE_NO_WARNINGS=1")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("node retry.mjs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("retry.mjs output: %v\n%s", err, out)
	}
	wantDropped := []string{
		"POST /authorization/resource_types", "POST /authorization/permissions", "POST /authorization/roles",
		"POST /authorization/roles/workspace-viewer/permissions", "POST /organizations",
		"POST /user_management/organization_memberships", "POST /authorization/resources",
		"POST /authorization/organization_memberships/" + got["membership"] + "/role_assignments",
		"POST /authorization/organization_memberships/" + got["membership"] + "/check",
	}
	if d := cmp.Diff(proxy.dropped, wantDropped); d != "" {
		t.Fatalf("dropped responses (-got +want):\n%s", d)
	}
	// Exactly one of each, the one the SDK returned.
	for _, c := range []struct{ path, want string }{
		{"/authorization/permissions", got["permission"]},
		{"/organizations", got["organization"]},
		{"/user_management/organization_memberships?organization_id=" + got["organization"], got["membership"]},
		{"/authorization/resources?organization_id=" + got["organization"], got["resource"]},
		{"/authorization/organization_memberships/" + got["membership"] + "/role_assignments", got["assignment"]},
	} {
		if list := ids(t, e.do("GET", c.path, nil, 200)); !slices.Equal(list, []string{c.want}) {
			t.Errorf("GET %s: %v, want exactly [%s]", c.path, list, c.want)
		}
	}
	if role := e.do("GET", "/authorization/roles/workspace-viewer", nil, 200); role["id"] != got["role"] {
		t.Errorf("role: %v, the SDK returned %s", role["id"], got["role"])
	}
}
