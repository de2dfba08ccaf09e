package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trellis-authz/trellis/internal/console"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
)

const consoleKey = "console-test-key-0123456789"

// css is a CSS selector for chromedp (its plain strings are searches).
type css = chromedp.CSS

// chromium returns the Debian chromium binary, or skips the test with one
// line naming the package.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIP console browser tests: chromium not found (apt-get install chromium)")
	return ""
}

// apiCall is one request the page made to the server.
type apiCall struct {
	Method, Path, Query string
	Body                []byte
	Key                 bool // it carried an API key (the signed-in one, or the refused one)
}

// callLog records the requests a page makes, assets left out.
type callLog struct {
	mu    sync.Mutex
	calls []apiCall
}

func (l *callLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, console.Path) || r.URL.Path == "/favicon.ico" {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
		l.mu.Lock()
		l.calls = append(l.calls, apiCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body,
			Key: strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")})
		l.mu.Unlock()
	})
}

func (l *callLog) snapshot() []apiCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]apiCall(nil), l.calls...)
}

func (l *callLog) reset() {
	l.mu.Lock()
	l.calls = nil
	l.mu.Unlock()
}

// startConsoleServer imports ds into a fresh PostgreSQL database and serves
// it as `trellis serve --console --database-url …` does, extra flags added;
// every API request is recorded in the returned log.
func startConsoleServer(t *testing.T, ds *model.Dataset, extra ...string) (string, *callLog) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.URL(t)
	start := time.Now()
	if _, err := importDataset(ctx, dsn, ds, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d resources in %v", len(ds.Resources), time.Since(start).Round(time.Millisecond))
	return serveConsole(t, append([]string{"--database-url", dsn, "--poll-interval", "50ms"}, extra...)...)
}

// serveConsole serves `trellis serve --console --api-key … args`,
// recording every API request in the returned log.
func serveConsole(t *testing.T, args ...string) (string, *callLog) {
	t.Helper()
	ctx := context.Background()
	args = append([]string{"--console", "--api-key", consoleKey}, args...)
	svc, err := newService(ctx, testConfig(t, args...), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.cleanup)
	log := &callLog{}
	srv := httptest.NewServer(log.wrap(svc.handler))
	t.Cleanup(srv.Close)
	waitFor(t, 30*time.Second, "the server to be ready", func() bool {
		resp, err := http.Get(srv.URL + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	log.reset() // only the page's requests from here
	return srv.URL, log
}

// browser is a headless chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser, bound to ctx: a step's timeout
	// must not end the tab. Starting is bounded by the allocator's own
	// wait for the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir := os.Getenv("TRELLIS_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "trellis-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, dir: dir}
}

// do runs steps, each bounded by a timeout, and fails the test naming the
// step that did not complete.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, s := range steps {
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		err := chromedp.Do(ctx, s)
		cancel()
		if err != nil {
			b.t.Fatalf("%s, step %d: %v\npage state: %s", what, i+1, err, b.state())
		}
	}
}

// text is the text of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v\npage state: %s", sel, err, b.state())
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitUntil polls a JavaScript condition until it holds.
func (b *browser) waitUntil(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage state: %s", what, expr, err, b.state())
	}
}

// state is what a failure message shows of the page.
func (b *browser) state() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[document.querySelector('#signin-error')?.textContent,
		document.querySelector('#tree-status')?.textContent, document.querySelector('#explain-result')?.textContent].join(' | ')`))
	return s
}

// screenshot saves the whole page as name.png in the screenshot directory.
func (b *browser) screenshot(name string) { b.save(name, chromedp.FullScreenshot(100)) } // 100: PNG

// viewport saves what the window shows (not the whole page) as name.png.
func (b *browser) viewport(name string) { b.save(name, chromedp.CaptureScreenshot()) }

// save writes the PNG shot takes as name.png in the screenshot directory.
func (b *browser) save(name string, shot chromedp.Action[[]byte]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func (b *browser) signIn(url string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(url+console.Path+"/"),
		chromedp.WaitVisible(css("#api-key")),
		chromedp.SendKeys(css("#api-key"), consoleKey),
		chromedp.Click(css("#signin-form button[type=submit]")),
		chromedp.WaitVisible(css("#tree > li.node")))
}

// node is the CSS selector of the tree row of a resource by external id.
func node(ext string) string { return `#tree li.node[data-ext="` + ext + `"]` }

// explain fills the explainer with a membership, permission and resource
// and waits for the answer.
func (b *browser) explain(om, perm, resource string) {
	b.t.Helper()
	b.do("explain "+om+" "+perm+" "+resource,
		chromedp.Click(css(`[data-tab=explain]`)),
		chromedp.Click(css(`input[name=subject-kind][value=membership]`)),
		chromedp.SetValue(css("#subject-membership"), om),
		chromedp.SetValue(css("#permission"), perm),
		chromedp.SetValue(css("#resource"), resource),
		js(`document.querySelector('#explain-result').textContent = ''`),
		chromedp.Click(css(`#explain-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#explain-result[data-state=done] #decision`)))
}

// allowedBy is the explained decision's allowed, decided_by and role, as
// the page shows them, joined by spaces.
const allowedBy = `[document.querySelector('#decision').dataset.allowed, document.querySelector('#decision .decided-by').textContent, document.querySelector('#decision .role').textContent].join(' ')`

// js evaluates a JavaScript statement in the page as a step.
func js(stmt string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool]("(() => { "+stmt+"; return true })()")(ctx, t)
		return chromedp.Void{}, err
	}
}

// TestConsoleDemo drives the console in chromium over the demo data on
// PostgreSQL: sign in, browse to a project, explain an allow by
// inheritance (the drawn path names the role and the workspace it is
// assigned on) and two denials, who can and what can, a pasted token, the
// live revision after a write; then every API request the page made is
// replayed without the key and refused.
func TestConsoleDemo(t *testing.T) {
	b := newBrowser(t)
	signer := newSigner(t, "session-key")
	jwks := writeFile(t, t.TempDir(), "jwks.json", signer.JWKS())
	url, calls := startConsoleServer(t, datafile.Demo(), "--jwks-file", jwks, "--issuer", testIssuer)

	b.do("open the console", chromedp.Navigate(url+console.Path+"/"), chromedp.WaitVisible(css("#api-key")))
	b.screenshot("signin")
	b.do("a wrong key",
		chromedp.SendKeys(css("#api-key"), "not-the-key-0123456789"),
		chromedp.Click(css("#signin-form button[type=submit]")))
	b.waitUntil("the refusal", `document.querySelector('#signin-error').textContent.includes('401')`)
	if got := eval[bool](b, `document.querySelector('#app').hidden && sessionStorage.length === 0`); !got {
		t.Error("a refused key signed in or was stored")
	}
	b.do("clear the key", chromedp.Clear(css("#api-key")))
	b.signIn(url)
	if got := eval[string](b, `sessionStorage.getItem('trellis.console.apiKey') + '|' + localStorage.length + '|' + document.cookie`); got != consoleKey+"|0|" {
		t.Errorf("the key is kept as %q, want only in sessionStorage", got)
	}

	// Browse: the organization's root is open with its workspaces.
	b.waitUntil("Acme's workspaces", `!!document.querySelector('`+node("acme-eng")+`') && !!document.querySelector('`+node("acme-sales")+`')`)
	if got := eval[string](b, `document.querySelector('#org').value`); got != "org_acme" && got != "org_globex" {
		t.Fatalf("organization picker: %q", got)
	}
	b.do("pick Acme", chromedp.SetValue(css("#org"), "org_acme"),
		js(`document.querySelector('#org').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(css(node("acme-eng"))))
	if got := eval[int](b, `document.querySelectorAll('#tree > li.node').length`); got != 1 {
		t.Errorf("%d roots in the tree after picking the organization again, want 1", got)
	}
	b.do("browse to project:api",
		chromedp.Click(css(node("acme-eng")+" > .row > .toggle")),
		chromedp.WaitVisible(css(node("api"))),
		chromedp.Click(css(node("api")+" > .row .ext")),
		chromedp.WaitVisible(css("#resource-details")))
	if got := b.text("#resource-details"); !strings.Contains(got, "authz_resource_acme_api") || !strings.Contains(got, "Public API") {
		t.Errorf("details of project:api: %q", got)
	}
	b.waitUntil("assignment counts", `document.querySelector('`+node("web")+` > .row .count').dataset.count === '1'`)

	// An allow by inheritance: om_bob is workspace-admin on acme-eng.
	b.explain("om_bob", "project:edit", "authz_resource_acme_api")
	if got := eval[string](b, allowedBy); got != "true assignment workspace-admin" {
		t.Errorf("allow: %q", got)
	}
	if got := b.text(node("acme-eng") + " > .row .mark"); got != "← role workspace-admin here" {
		t.Errorf("mark on the workspace: %q", got)
	}
	if got := b.text(node("api") + " > .row .mark"); got != "← project:edit inherited here" {
		t.Errorf("mark on the project: %q", got)
	}
	if got := eval[int](b, `document.querySelectorAll('#tree li.path').length`); got != 2 {
		t.Errorf("%d resources drawn on the path, want 2 (acme-eng, api)", got)
	}
	b.screenshot("explain-allow")

	// A deny: om_dave is inactive. project:crm is under a collapsed
	// workspace: the explainer reveals it.
	b.explain("om_dave", "project:edit", "project:crm")
	if got := eval[string](b, `[document.querySelector('#decision').dataset.allowed, document.querySelector('#decision').dataset.code].join(' ')`); got != "false membership_inactive" {
		t.Errorf("deny of an inactive membership: %q", got)
	}
	if got := b.text(node("crm") + " > .row .mark"); got != "✗ project:edit denied here" {
		t.Errorf("mark on the denied project: %q", got)
	}
	if got := eval[int](b, `document.querySelectorAll('#tree li.path').length`); got != 0 {
		t.Errorf("a deny left %d path marks", got)
	}
	// A deny with no grant: what om_carol holds on crm and above, as an
	// explanation from public reads.
	b.explain("om_carol", "project:edit", "authz_resource_acme_crm")
	if got := eval[string](b, `document.querySelector('#decision').dataset.code`); got != "no_grant" {
		t.Errorf("carol on crm: %q, want no_grant", got)
	}
	b.waitUntil("the explanation", `!!document.querySelector('#missing ol')`)
	missing := b.text("#missing")
	for _, want := range []string{"not the decision", "organization:org_acme: org-member (organization role) — lacks project:edit", "workspace:acme-sales: no role", "project:crm: no role"} {
		if !strings.Contains(missing, want) {
			t.Errorf("explanation lacks %q:\n%s", want, missing)
		}
	}
	if got := eval[string](b, `[...document.querySelectorAll('#tree > li.node')].map(n => n.dataset.ext).join(' ')`); got != "org_acme" {
		t.Errorf("the tree's roots: %q, want org_acme only", got)
	}
	b.screenshot("explain-deny")

	// Another organization's resource is not found, as the API answers.
	b.explain("om_bob", "project:view", "authz_resource_globex_lab")
	if got := eval[string](b, `document.querySelector('#decision').dataset.code`); got != "unknown_resource" {
		t.Errorf("bob on globex's lab: %q, want unknown_resource", got)
	}

	// Who can edit project:web: carol directly, alice and bob from above.
	b.do("who can",
		chromedp.Click(css(`[data-tab=who]`)),
		chromedp.SetValue(css("#who-permission"), "project:edit"),
		chromedp.SetValue(css("#who-resource"), "authz_resource_acme_web"),
		chromedp.Click(css(`#who-form button[type=submit]`)),
		chromedp.WaitVisible(css("#who-table")))
	if got := eval[string](b, `[...document.querySelectorAll('#who-table tbody tr')].map(r => r.dataset.id + ':' + r.dataset.access).join(' ')`); got != "om_alice:inherited om_bob:inherited om_carol:direct" {
		t.Errorf("who can edit web: %q", got)
	}
	b.screenshot("who-can")

	// What can om_carol edit: project:web, highlighted.
	b.do("what can",
		chromedp.Click(css(`[data-tab=what]`)),
		chromedp.SetValue(css("#what-membership"), "om_carol"),
		chromedp.SetValue(css("#what-permission"), "project:edit"),
		chromedp.Click(css(`#what-form button[type=submit]`)),
		chromedp.WaitVisible(css("#what-list")))
	if got := eval[string](b, `[...document.querySelectorAll('#tree li.reachable')].map(n => n.dataset.ext).join(' ')`); got != "web" {
		t.Errorf("highlighted for carol's project:edit: %q, want web", got)
	}
	b.screenshot("what-can")

	// Search by external id: the app two levels down is revealed.
	b.do("search",
		chromedp.SetValue(css("#search"), "api-gateway"),
		chromedp.Click(css(`#search-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#search-results button[data-id="authz_resource_acme_api_gateway"]`)),
		chromedp.Click(css(`#search-results button[data-id="authz_resource_acme_api_gateway"]`)),
		chromedp.WaitVisible(css(node("api-gateway")+".selected")))

	// A pasted session token: decoded, verified by the server, and the
	// check decided on its membership (bob's workspace-admin grant).
	b.pasteToken(mint(t, signer, bobToken, time.Hour), "project:edit", "authz_resource_acme_api")
	if got := b.text("#token-claims"); !strings.Contains(got, "om_bob") || !strings.Contains(got, "org_acme") {
		t.Errorf("decoded claims: %q", got)
	}
	if got := eval[string](b, `document.querySelector('#decision').dataset.allowed + ' ' + document.querySelector('#token-verification').dataset.refused`); got != "true false" {
		t.Errorf("bob's token: allowed, refused = %q", got)
	}
	if got := b.text(node("acme-eng") + " > .row .mark"); got != "← role workspace-admin here" {
		t.Errorf("mark on the workspace for bob's token: %q", got)
	}
	// One that no key of the server signed, claiming project:edit: refused
	// with the exact reason, and denied.
	forged := mint(t, newSigner(t, "forged"), devToken{"om_bob", "org_acme", "user_bob", "org-admin", []string{"project:edit"}}, time.Hour)
	b.pasteToken(forged, "project:edit", "authz_resource_acme_api")
	if got := eval[string](b, `document.querySelector('#decision').dataset.allowed + ' ' + document.querySelector('#token-verification').textContent`); !strings.HasPrefix(got, "false Verification: refused by the server — token_unknown_key") {
		t.Errorf("a forged token: %q", got)
	}
	b.screenshot("token")

	// Live: a write through the WorkOS API raises the revision; the page
	// follows and redraws the counts.
	before := eval[int](b, `Number(document.querySelector('#revision').dataset.revision)`)
	status, got := call(t, "POST", url+"/authorization/organization_memberships/om_carol/role_assignments", consoleKey,
		map[string]any{"role_slug": "project-editor", "resource_id": "authz_resource_acme_api"})
	if status != http.StatusCreated {
		t.Fatalf("assign: %d %v", status, got)
	}
	b.waitUntil("the new revision", fmt.Sprintf(`Number(document.querySelector('#revision').dataset.revision) > %d`, before))
	b.waitUntil("the new count", `document.querySelector('`+node("api")+` > .row .count')?.dataset.count === '1'`)

	// Every request the page made is the public API with the key, and
	// refused without it.
	made := calls.snapshot()
	if len(made) < 20 {
		t.Fatalf("the page made %d API requests", len(made))
	}
	seen := map[string]bool{}
	for _, c := range made {
		if c.Method == "POST" && c.Path == "/authorization/organization_memberships/om_carol/role_assignments" {
			continue // the test's own write
		}
		if !c.Key {
			t.Errorf("%s %s was sent without the API key", c.Method, c.Path)
		}
		route := c.Method + " " + c.Path
		if seen[route] {
			continue
		}
		seen[route] = true
		// The native API answers a token subject without a key by design
		// (README: a token subject needs no API key unless
		// --require-api-key): the token is the credential there.
		var body map[string]any
		_ = json.Unmarshal(c.Body, &body)
		if _, isToken := body["token"]; isToken {
			continue
		}
		req, _ := http.NewRequest(c.Method, url+c.Path+"?"+c.Query, bytes.NewReader(c.Body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", route, resp.StatusCode)
		}
	}
	t.Logf("%d API requests, %d routes, each refused without the key", len(made), len(seen))
}

// pasteToken explains a check with a pasted session token as the subject.
func (b *browser) pasteToken(tok, perm, resource string) {
	b.t.Helper()
	b.do("paste a token",
		chromedp.Click(css(`[data-tab=explain]`)),
		chromedp.Click(css(`input[name=subject-kind][value=token]`)),
		chromedp.SetValue(css("#subject-token"), tok),
		chromedp.SetValue(css("#permission"), perm),
		chromedp.SetValue(css("#resource"), resource),
		js(`document.querySelector('#explain-result').textContent = ''`),
		chromedp.Click(css(`#explain-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#explain-result[data-state=done] #decision`)),
		chromedp.WaitVisible(css("#token-verification")))
}

// TestConsoleLargeOrganization opens a generated organization of 100,000
// resources. What keeps it fast is asserted, not the time (which is
// logged): opening the root fetches one page of its children, paging on
// fetches one more, and the page holds only those rows, never the tree.
func TestConsoleLargeOrganization(t *testing.T) {
	b := newBrowser(t)
	ds := gen.Generate(gen.Spec{Seed: 20, Organizations: 1, Resources: 100_000, Assignments: 5_000, MembershipsPerOrg: 50, Depth: 4})
	top := 0
	for _, r := range ds.Resources {
		if r.ParentID == "" {
			top++
		}
	}
	if len(ds.Resources) < 100_000 || top <= 2*consolePageSize {
		t.Fatalf("generated %d resources, %d under the root: the test needs 100,000 and over two pages under the root", len(ds.Resources), top)
	}
	url, calls := startConsoleServer(t, ds)

	start := time.Now()
	b.signIn(url)
	rows := `document.querySelectorAll('#tree > li.node > ul.children > li.node').length`
	b.waitUntil("the root's first page", rows+` === `+fmt.Sprint(consolePageSize))
	opened := time.Since(start)
	lists := func() (n int, bad []string) {
		for _, c := range calls.snapshot() {
			if c.Method == "GET" && c.Path == "/authorization/resources" {
				n++
				if !strings.Contains(c.Query, "limit="+fmt.Sprint(consolePageSize)) || !strings.Contains(c.Query, "parent_resource_id=") {
					bad = append(bad, c.Query)
				}
			}
		}
		return n, bad
	}
	if n, bad := lists(); n != 1 || len(bad) > 0 {
		t.Errorf("opening the root listed resources %d times (%v), want once, one page below the root", n, bad)
	}
	if got := eval[int](b, `document.querySelectorAll('#tree li.node').length`); got != consolePageSize+1 {
		t.Errorf("the tree holds %d rows after opening the root, want the root and one page (%d)", got, consolePageSize+1)
	}

	start = time.Now()
	b.do("page on", chromedp.Click(css(`#tree > li.node > ul.children > li.more button`)))
	b.waitUntil("the second page", rows+` === `+fmt.Sprint(2*consolePageSize))
	paged := time.Since(start)
	if n, bad := lists(); n != 2 || len(bad) > 0 {
		t.Errorf("paging listed resources %d times in all (%v), want twice", n, bad)
	}
	if got := eval[bool](b, `!!document.querySelector('#tree > li.node > ul.children > li.more button')`); !got {
		t.Error("no button for the next page")
	}
	// The counts are asked for in the background: once all are shown.
	b.waitUntil("the rows' assignment counts", `[...document.querySelectorAll('#tree li.node:not([data-type=organization]) > .row .count')].every(c => c.dataset.count !== undefined)`)
	counts := 0
	for _, c := range calls.snapshot() {
		if strings.HasSuffix(c.Path, "/role_assignments") {
			counts++
		}
	}
	if counts > 2*consolePageSize {
		t.Errorf("%d assignment-count requests for %d rows", counts, 2*consolePageSize)
	}
	if got := eval[int](b, `document.querySelectorAll('#tree li.node').length`); got != 2*consolePageSize+1 {
		t.Errorf("the tree holds %d rows after two pages, want %d", got, 2*consolePageSize+1)
	}
	pageMS := eval[string](b, `document.querySelector('#tree').dataset.openedMs`)
	t.Logf("%d resources, %d under the root: sign-in to the root's first page %v (the page's own timing: %s ms), the next page %v; %d API requests in all",
		len(ds.Resources), top, opened.Round(time.Millisecond), pageMS, paged.Round(time.Millisecond), len(calls.snapshot()))

	// An allow by inheritance deep in the tree, on a workspace no loaded
	// page holds: the explainer reveals the path and names the role and
	// the workspace.
	g, ok := findInheritedGrant(ds, "folder:view")
	if !ok {
		t.Fatal("the generated data has no folder:view granted only by a role on its workspace")
	}
	b.explain(g.membership, "folder:view", g.target)
	if got := eval[string](b, `[document.querySelector('#decision').dataset.allowed, document.querySelector('#decision .role')?.textContent].join(' ')`); got != "true "+g.role {
		t.Errorf("%s folder:view on %s: %q, want allowed by %s", g.membership, g.target, got, g.role)
	}
	if got := b.text(`#tree li.node[data-id="` + g.anchor + `"] > .row .mark`); got != "← role "+g.role+" here" {
		t.Errorf("mark on the workspace %s: %q", g.anchor, got)
	}
	if got := eval[string](b, `[...document.querySelectorAll('#tree li.path')].map(n => n.dataset.id).join(' ')`); got != g.anchor+" "+g.project+" "+g.target {
		t.Errorf("drawn path %q, want %s %s %s", got, g.anchor, g.project, g.target)
	}
	if n, _ := lists(); n > 4 {
		t.Errorf("explaining listed resources %d times in all: more than a page below each of the two revealed ancestors", n)
	}
	b.waitUntil("the rows' assignment counts", `[...document.querySelectorAll('#tree li.node:not([data-type=organization]) > .row .count')].every(c => c.dataset.count !== undefined)`)
	b.viewport("large-organization")
}

// inheritedGrant is a check allowed only by a role on an ancestor two
// levels up.
type inheritedGrant struct {
	membership, role        string
	anchor, project, target string // workspace, project, folder
}

// findInheritedGrant finds, in generated data, an active membership with a
// role holding perm on a workspace, and a folder two levels below it, such
// that nothing else the membership holds grants perm there: no
// organization role with perm, no other assignment on the workspace, the
// project or the folder. The decision must then name that role there.
func findInheritedGrant(ds *model.Dataset, perm string) (inheritedGrant, bool) {
	perms := map[string][]string{}
	for _, r := range ds.Roles {
		perms[r.Slug] = append(perms[r.Slug], r.Permissions...)
	}
	members := map[string]model.Membership{}
	for _, m := range ds.Memberships {
		members[m.ID] = m
	}
	typeOf, children := map[string]string{}, map[string][]string{}
	for _, r := range ds.Resources {
		typeOf[r.ID] = r.Type
		children[r.ParentID] = append(children[r.ParentID], r.ID)
	}
	held := map[[2]string]int{} // membership, resource → assignments
	for _, a := range ds.Assignments {
		held[[2]string{a.MembershipID, a.ResourceID}]++
	}
	for _, a := range ds.Assignments {
		m, ok := members[a.MembershipID]
		if !ok || m.Status != model.StatusActive || typeOf[a.ResourceID] != "workspace" || !slices.Contains(perms[a.RoleSlug], perm) ||
			held[[2]string{m.ID, a.ResourceID}] != 1 || slices.ContainsFunc(m.RoleSlugs, func(r string) bool { return slices.Contains(perms[r], perm) }) {
			continue
		}
		for _, p := range children[a.ResourceID] {
			if typeOf[p] != "project" || held[[2]string{m.ID, p}] > 0 {
				continue
			}
			for _, f := range children[p] {
				if typeOf[f] == "folder" && held[[2]string{m.ID, f}] == 0 {
					return inheritedGrant{m.ID, a.RoleSlug, a.ResourceID, p, f}, true
				}
			}
		}
	}
	return inheritedGrant{}, false
}

// consolePageSize is the number of children the console lists a page
// (PAGE_SIZE in static/js/tree.js).
const consolePageSize = 50

// TestConsoleRoute: /console is served only with --console, with the
// strict policy; without it the path is the API's 404.
func TestConsoleRoute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		status int
	}{
		{"off by default", nil, http.StatusNotFound},
		{"off", []string{"--console=false"}, http.StatusNotFound},
		{"on", []string{"--console"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startService(t, testConfig(t, append([]string{"--api-key", consoleKey}, tc.args...)...))
			for _, path := range []string{"/console/", "/console/js/main.js"} {
				resp, err := http.Get(url + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, tc.status)
				}
				csp := resp.Header.Get("Content-Security-Policy")
				if tc.status == http.StatusOK && csp != console.ContentSecurityPolicy {
					t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
				}
				if tc.status != http.StatusOK && csp != "" {
					t.Errorf("GET %s without the console answers a console header", path)
				}
			}
			// The console adds no route of its own to the API: without a key
			// the API still refuses.
			if status, _ := post(t, url, "/v1/data/trellis_data/revision", "", map[string]any{}); status != http.StatusUnauthorized {
				t.Errorf("the Data API without a key: %d, want 401", status)
			}
		})
	}
	t.Setenv("TRELLIS_CONSOLE", "true")
	if c := testConfig(t); !c.Console {
		t.Error("TRELLIS_CONSOLE=true does not turn the console on")
	}
}

// TestConsoleNotOnEdge: trellis edge has no --console, ignores
// TRELLIS_CONSOLE, and answers /console with its API's 404.
func TestConsoleNotOnEdge(t *testing.T) {
	base := []string{"--bundle-url", "http://127.0.0.1:1/bundles/trellis.tar.gz", "--allow-unsigned", "--addr", "127.0.0.1:0"}
	if _, err := parseEdge(append(base, "--console"), io.Discard); err == nil || !strings.Contains(err.Error(), "console") {
		t.Errorf("edge --console: %v, want an unknown flag", err)
	}
	t.Setenv("TRELLIS_CONSOLE", "true")
	c, err := parseEdge(base, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := newEdgeService(ctx, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console", "/console/", "/console/js/main.js"} {
		rec := httptest.NewRecorder()
		svc.handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Security-Policy") != "" {
			t.Errorf("edge GET %s: %d %v, want the API's 404", path, rec.Code, rec.Header())
		}
	}
}

// TestConsoleGroupAndExtension explains an allow through a group and a
// deny by an extension: the drawn path names the role, the group and the
// workspace the group's role is assigned on; the denial names the
// extension's rule (the README's confidential example) and marks the
// resource. The server is a shard node (--shard 1/2, which holds Acme):
// the page's decision requests carry the organization picked as their
// routing key, or they would be refused 421.
func TestConsoleGroupAndExtension(t *testing.T) {
	b := newBrowser(t)
	ds := datafile.Demo()
	ds.Groups = append(ds.Groups, model.Group{ID: "group_sales_leads", OrganizationID: "org_acme", Name: "Sales leads"})
	ds.GroupMembers = append(ds.GroupMembers, model.GroupMember{GroupID: "group_sales_leads", MembershipID: "om_carol"})
	ds.Assignments = append(ds.Assignments, model.Assignment{ID: "role_assignment_sales_leads", GroupID: "group_sales_leads", RoleSlug: "workspace-admin", ResourceID: "authz_resource_acme_sales"})
	for i, r := range ds.Resources {
		if r.ID == "authz_resource_acme_api" {
			ds.Resources[i].Attributes = model.Attributes{"confidential": true}
		}
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(examples, "confidential.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "confidential.rego", src)
	url, _ := startConsoleServer(t, ds, "--policy-dir", dir, "--shard", "1/2")
	b.signIn(url)
	b.waitUntil("Acme's workspaces", `!!document.querySelector('`+node("acme-sales")+`')`)
	b.do("pick Acme", chromedp.SetValue(css("#org"), "org_acme"),
		js(`document.querySelector('#org').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(css(node("acme-sales"))))

	// om_carol holds workspace-admin on acme-sales only through the group.
	b.explain("om_carol", "project:edit", "project:crm")
	if got := eval[string](b, allowedBy); got != "true assignment workspace-admin" {
		t.Errorf("allow through the group: %q", got)
	}
	if got := b.text("#decision"); !strings.Contains(got, "Sales leads (group_sales_leads)") {
		t.Errorf("the decision does not name the group: %q", got)
	}
	if got := b.text(node("acme-sales") + " > .row .mark"); got != "← role workspace-admin via group Sales leads here" {
		t.Errorf("mark on the workspace: %q", got)
	}
	if got := b.text(node("crm") + " > .row .mark"); got != "← project:edit inherited here" {
		t.Errorf("mark on the project: %q", got)
	}
	b.screenshot("explain-group")

	// om_bob's workspace-admin role allows project:edit on project:api,
	// but api is confidential and nobody holds project:view-confidential.
	b.explain("om_bob", "project:edit", "project:api")
	if got := eval[string](b, `[document.querySelector('#decision').dataset.allowed, document.querySelector('#decision').dataset.decidedBy, document.querySelector('#decision').dataset.code].join(' ')`); got != "false extension confidential" {
		t.Errorf("extension deny: %q", got)
	}
	const rule = "data.trellis.ext.confidential.deny"
	if got := b.text("#decision"); !strings.Contains(got, rule) || !strings.Contains(got, "project:api is confidential") {
		t.Errorf("the decision does not name the rule and its message: %q", got)
	}
	if got := b.text("#explain-result .cause"); got != "What is missing: an extension ("+rule+") denied what the roles allow" {
		t.Errorf("cause: %q", got)
	}
	if got := b.text(node("api") + " > .row .mark"); got != "✗ project:edit denied here" {
		t.Errorf("mark on the denied project: %q", got)
	}
	if got := eval[int](b, `document.querySelectorAll('#tree li.path').length`); got != 0 {
		t.Errorf("an extension deny left %d path marks", got)
	}
	b.screenshot("explain-extension")
}

// TestConsoleWithoutDatabase drives the console of a server on the demo
// data file, which has no WorkOS-compatible routes: the organization is
// named by hand, its tree read from the data document (types, external
// ids, assignment counts; no names), and decisions explained on it.
func TestConsoleWithoutDatabase(t *testing.T) {
	b := newBrowser(t)
	url, _ := serveConsole(t)
	b.do("sign in",
		chromedp.Navigate(url+console.Path+"/"),
		chromedp.WaitVisible(css("#api-key")),
		chromedp.SendKeys(css("#api-key"), consoleKey),
		chromedp.Click(css("#signin-form button[type=submit]")),
		chromedp.WaitVisible(css("#org-form")))
	b.do("name Acme",
		chromedp.SetValue(css("#org-id"), "org_acme"),
		chromedp.Click(css("#org-form button[type=submit]")),
		chromedp.WaitVisible(css(node("acme-eng"))))
	if got := b.text("#tree-status"); !strings.Contains(got, "read from the data document") {
		t.Errorf("the tree does not say where it reads from: %q", got)
	}
	b.do("open acme-eng", chromedp.Click(css(node("acme-eng")+" > .row > .toggle")), chromedp.WaitVisible(css(node("web"))))
	if got := eval[string](b, `[...document.querySelectorAll('`+node("acme-eng")+` > ul.children > li.node')].map(n => n.dataset.type + ':' + n.dataset.ext).join(' ')`); got != "project:api project:web" {
		t.Errorf("acme-eng's children: %q", got)
	}
	b.waitUntil("assignment counts", `document.querySelector('`+node("web")+` > .row .count')?.dataset.count === '1'`)

	b.explain("om_bob", "project:edit", "project:api")
	if got := eval[string](b, `[document.querySelector('#decision').dataset.allowed, document.querySelector('#decision .role').textContent].join(' ')`); got != "true workspace-admin" {
		t.Errorf("allow: %q", got)
	}
	if got := b.text(node("acme-eng") + " > .row .mark"); got != "← role workspace-admin here" {
		t.Errorf("mark on the workspace: %q", got)
	}

	// Search by external id reveals project:crm under a collapsed workspace.
	b.do("search crm", chromedp.SetValue(css("#search"), "project:crm"), chromedp.Click(css("#search-form button[type=submit]")),
		chromedp.WaitVisible(css(`#search-results button[data-id="authz_resource_acme_crm"]`)),
		chromedp.Click(css(`#search-results button[data-id="authz_resource_acme_crm"]`)),
		chromedp.WaitVisible(css(node("crm"))))
	b.screenshot("without-database")
}
