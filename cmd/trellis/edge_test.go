package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/bundle/bundletest"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
	"github.com/trellis-authz/trellis/policies"
)

// edgeWorld is a Trellis server with signed bundles, a stock OPA and a
// `trellis edge` pulling from it, and the keys and tokens to query them.
type edgeWorld struct {
	t          *testing.T
	ds         *model.Dataset
	server     string // Trellis server URL
	opa        string // stock OPA URL
	edge       string // trellis edge URL
	signer     *token.Signer
	jwksFile   string
	persistDir string
	pubKeyFile string
	log        *syncBuffer

	handler http.Handler // the server's real handler
	tamper  atomic.Pointer[tampered]
	opaReqs atomic.Int64 // bundle requests by stock OPA
	edgeReq atomic.Int64 // bundle requests by trellis edge
	load    func(ds *model.Dataset)
}

type tampered struct {
	body []byte
	etag string
}

const (
	opaBundleKey  = "opa-bundle-key"
	edgeBundleKey = "edge-bundle-key"
)

// syncBuffer collects logs from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t testing.TB, dir, name string, body []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// buildOPA builds the stock opa binary of go.mod's version.
func buildOPA(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "opa")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/open-policy-agent/opa")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build opa: %v\n%s", err, out)
	}
	return bin
}

// newEdgeWorld is the world of a random dataset and Trellis's own policies.
func newEdgeWorld(t *testing.T) *edgeWorld {
	t.Helper()
	// Groups: 3 per organization, 30 % of the assignments to groups, so
	// that the corpus holds checks allowed only through a group.
	ds := gen.Generate(gen.Spec{Seed: 11, Organizations: 4, Resources: 400, Assignments: 500, MembershipsPerOrg: 8, Depth: 4, Skew: 1.1, InactiveRatio: 0.2,
		GroupsPerOrg: 3, GroupAssignmentRatio: 0.3})
	return newEdgeWorldWith(t, ds, policies.Modules())
}

// newEdgeWorldWith is the world of dataset ds (its revision set to 1) and
// the policy modules mods (Trellis's own, with any extensions), which the
// server evaluates and its bundles carry to both edges.
func newEdgeWorldWith(t *testing.T, ds *model.Dataset, mods map[string]string) *edgeWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	w := &edgeWorld{t: t, log: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", w.log.String())
		}
	})
	log := slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Session tokens and the bundle signing key.
	w.signer = newSigner(t, "session-key")
	w.jwksFile = writeFile(t, dir, "jwks.json", w.signer.JWKS())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	privFile := writeFile(t, dir, "bundle-signing.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	w.pubKeyFile = writeFile(t, dir, "bundle-signing.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))

	// The server, wired as `trellis serve` wires it.
	w.ds = ds
	w.ds.Revision = 1
	eng, err := engine.New(ctx, engine.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadDataset(ctx, w.ds); err != nil {
		t.Fatal(err)
	}
	w.load = func(ds *model.Dataset) {
		if err := eng.LoadDataset(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	tcfg := token.Config{JWKSFile: w.jwksFile, Issuer: testIssuer, Algorithms: []string{token.RS256}}
	verifier, err := token.New(ctx, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	as, err := authz.New(authz.Config{Engine: eng, Tokens: verifier})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Service: as, APIKeys: []string{"edge-api-key-0123456789"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	flags := serveBundleFlags{Enabled: true, Name: "trellis", Organizations: true, Signing: signingFlags{Key: privFile, KeyID: "trellis"}}
	w.handler, _, err = withBundles(ctx, api, flags, mods, tcfg, engineSource{eng}, []string{opaBundleKey, edgeBundleKey}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(srv.Close)
	w.server = srv.URL

	// trellis edge, as `trellis edge` runs.
	w.persistDir = filepath.Join(dir, "edge-persist")
	w.edge = w.startEdge(ctx, w.server+"/bundles/trellis.tar.gz")

	// Stock OPA, configured from bundle/opa-config.yaml.
	w.opa = w.startOPA(ctx, dir)
	return w
}

// serve is the server's handler, which a test can make serve a tampered
// bundle instead of the real one.
func (w *edgeWorld) serve(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/bundles/trellis.tar.gz" {
		switch r.Header.Get("Authorization") {
		case "Bearer " + opaBundleKey:
			w.opaReqs.Add(1)
		case "Bearer " + edgeBundleKey:
			w.edgeReq.Add(1)
		}
		if tb := w.tamper.Load(); tb != nil {
			rw.Header().Set("ETag", tb.etag)
			rw.Header().Set("Content-Type", bundle.ContentType)
			if strings.Contains(r.Header.Get("If-None-Match"), tb.etag) {
				time.Sleep(200 * time.Millisecond) // a short long poll
				rw.WriteHeader(http.StatusNotModified)
				return
			}
			_, _ = rw.Write(tb.body)
			return
		}
	}
	w.handler.ServeHTTP(rw, r)
}

func (w *edgeWorld) startEdge(ctx context.Context, url string) string {
	w.t.Helper()
	cfg, err := parseEdge([]string{
		"--addr", "127.0.0.1:0", "--bundle-url", url, "--bundle-token", edgeBundleKey,
		"--verification-key", w.pubKeyFile, "--verification-key-id", "trellis",
		"--persist-dir", w.persistDir, "--long-poll", "1s", "--poll-interval", "200ms",
		"--jwks-file", w.jwksFile, "--issuer", testIssuer, "--api-key", "edge-api-key-0123456789",
	}, io.Discard)
	if err != nil {
		w.t.Fatal(err)
	}
	ectx, stop := context.WithCancel(ctx)
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runEdgeNode(ectx, cfg, w.log, listening) }()
	w.t.Cleanup(func() {
		stop()
		select {
		case <-done: //nolint:errcheck // only that the node stops is checked; its exit error on cancel is not under test
		case <-time.After(15 * time.Second):
			w.t.Error("trellis edge did not stop")
		}
	})
	select {
	case addr := <-listening:
		return "http://" + addr
	case err := <-done:
		w.t.Fatalf("trellis edge: %v", err)
	case <-time.After(30 * time.Second):
		w.t.Fatal("trellis edge did not start")
	}
	return ""
}

func (w *edgeWorld) startOPA(ctx context.Context, dir string) string {
	w.t.Helper()
	bin := buildOPA(w.t)
	addr := freeAddr(w.t)
	cmd := exec.CommandContext(ctx, bin, "run", "--server", "--addr", addr,
		"--config-file", filepath.Join("..", "..", "bundle", "opa-config.yaml"),
		"--set-file", "keys.trellis.key="+w.pubKeyFile,
		// Short delays so that the test's retries take seconds, not minutes.
		"--set", "bundles.trellis.polling.long_polling_timeout_seconds=2",
		"--set", "bundles.trellis.polling.min_delay_seconds=1",
		"--set", "bundles.trellis.polling.max_delay_seconds=2",
		"--log-level", "error",
	)
	cmd.Env = append(os.Environ(),
		"TRELLIS_URL="+w.server, "TRELLIS_API_KEY="+opaBundleKey,
		"TRELLIS_OPA_PERSIST_DIR="+filepath.Join(dir, "opa-persist"))
	cmd.Stdout, cmd.Stderr = w.log, w.log
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	waitFor(w.t, 60*time.Second, "stock OPA to activate the bundle", func() bool {
		resp, err := http.Get(url + "/health?bundles")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// token signs claims for membership m with the test issuer's key, with
// the extra claims (nil for none).
func (w *edgeWorld) token(m model.Membership, org string, perms []string, extra map[string]any) string {
	w.t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": testIssuer, "sub": m.UserID, "org_id": org, "role": "member", "roles": []string{"member"},
		"permissions": perms, "organization_membership_id": m.ID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	maps.Copy(claims, extra)
	raw, err := w.signer.Sign(claims)
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

// decision is the part of an answer the three deciders must agree on.
// Token errors are compared by code: internal/token and package
// trellis.edge word their messages differently.
func decisionOf(v map[string]any) map[string]any {
	reason, _ := v["reason"].(map[string]any)
	if code, _ := reason["code"].(string); strings.HasPrefix(code, "token_") && code != "token_permission" {
		reason = map[string]any{"code": code}
	}
	return map[string]any{"allowed": v["allowed"], "decided_by": v["decided_by"], "reason": reason}
}

// checkServer asks the Trellis server (or trellis edge) for one check.
func (w *edgeWorld) checkTrellis(url string, req map[string]any) (map[string]any, float64) {
	w.t.Helper()
	status, out := post(w.t, url, "/v1/check", "", req)
	if status != http.StatusOK {
		w.t.Fatalf("%s /v1/check: %d %v", url, status, out)
	}
	rev, _ := out["revision"].(float64)
	return decisionOf(out), rev
}

// checkOPA asks stock OPA through its Data API on the edge entrypoint.
func (w *edgeWorld) checkOPA(path string, input map[string]any) map[string]any {
	w.t.Helper()
	status, out := post(w.t, w.opa, "/v1/data/"+path, "", map[string]any{"input": input})
	if status != http.StatusOK {
		w.t.Fatalf("opa %s: %d %v", path, status, out)
	}
	res, ok := out["result"].(map[string]any)
	if !ok {
		w.t.Fatalf("opa %s: no result in %v", path, out)
	}
	return decisionOf(res)
}

func (w *edgeWorld) opaRevision() float64 {
	w.t.Helper()
	_, out := post(w.t, w.opa, "/v1/data/trellis/edge/revision", "", map[string]any{})
	rev, _ := out["result"].(float64)
	return rev
}

func (w *edgeWorld) edgeReady() map[string]any {
	w.t.Helper()
	resp, err := http.Get(w.edge + "/ready")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// corpus returns n random checks with valid tokens: memberships of every
// status, token permissions that do and do not apply, resources by id and
// by external id, unknown resources and permissions.
func (w *edgeWorld) corpus(n int) []map[string]any { return w.corpusWith(n, corpusExtras{}) }

// corpusExtras widen a corpus for extensions. Empty fields draw nothing
// from the random source, so a corpus without them stays the same.
type corpusExtras struct {
	claims   []map[string]any // extra claims, one drawn for each token (nil: none)
	contexts []map[string]any // context objects, one drawn for each check (nil: none)
	// focused draws four resources in five among those of the token's
	// organization and four permissions in five among those of the
	// resource's type, so that more checks reach the extensions (which
	// only deny what the core allows).
	focused bool
}

// corpusWith is corpus with the extras x.
func (w *edgeWorld) corpusWith(n int, x corpusExtras) []map[string]any {
	rng := mrand.New(mrand.NewPCG(7, 9))
	perms := make([]string, len(w.ds.Permissions))
	byType := map[string][]string{}
	for i, p := range w.ds.Permissions {
		perms[i] = p.Slug
		byType[p.ResourceType] = append(byType[p.ResourceType], p.Slug)
	}
	type ref struct{ id, typ, ext, org string }
	var refs []ref
	for _, o := range w.ds.Organizations {
		refs = append(refs, ref{o.RootID(), model.OrganizationType, o.ID, o.ID})
	}
	for _, r := range w.ds.Resources {
		refs = append(refs, ref{r.ID, r.Type, r.ExternalID, r.OrganizationID})
	}
	inOrg := map[string][]ref{}
	for _, r := range refs {
		inOrg[r.org] = append(inOrg[r.org], r)
	}
	tokens, tokenOrg := make([]string, 40), make([]string, 40)
	for i := range tokens {
		m := w.ds.Memberships[rng.IntN(len(w.ds.Memberships))]
		org := m.OrganizationID
		if rng.IntN(8) == 0 {
			org = w.ds.Organizations[rng.IntN(len(w.ds.Organizations))].ID
		}
		tp := []string{}
		for range rng.IntN(4) {
			tp = append(tp, perms[rng.IntN(len(perms))])
		}
		var extra map[string]any
		if len(x.claims) > 0 {
			extra = x.claims[rng.IntN(len(x.claims))]
		}
		tokens[i], tokenOrg[i] = w.token(m, org, tp, extra), org
	}
	out := make([]map[string]any, n)
	for i := range out {
		tok := -1
		if x.focused {
			tok = rng.IntN(len(tokens))
		}
		r := refs[rng.IntN(len(refs))]
		if x.focused && rng.IntN(5) != 0 {
			if rs := inOrg[tokenOrg[tok]]; len(rs) > 0 {
				r = rs[rng.IntN(len(rs))]
			}
		}
		var res map[string]any
		switch rng.IntN(10) {
		case 0:
			res = map[string]any{"id": "authz_resource_unknown"}
		case 1, 2, 3:
			res = map[string]any{"type": r.typ, "external_id": r.ext, "organization_id": r.org}
		default:
			res = map[string]any{"id": r.id}
		}
		perm := perms[rng.IntN(len(perms))]
		if x.focused && rng.IntN(5) != 0 {
			if ps := byType[r.typ]; len(ps) > 0 {
				perm = ps[rng.IntN(len(ps))]
			}
		}
		if rng.IntN(25) == 0 {
			perm = "nope:nope"
		}
		if tok < 0 {
			tok = rng.IntN(len(tokens))
		}
		out[i] = map[string]any{"token": tokens[tok], "permission": perm, "resource": res}
		if len(x.contexts) > 0 {
			if c := x.contexts[rng.IntN(len(x.contexts))]; c != nil {
				out[i]["context"] = c
			}
		}
	}
	return out
}

// agree asserts that the server, trellis edge and stock OPA give the same
// decision for every check, and returns how many were allowed.
func (w *edgeWorld) agree(checks []map[string]any) int { return w.agreeCounting(checks).allowed }

// tally counts the answers of a corpus.
type tally struct {
	allowed   int
	viaGroup  int            // allowed by a group's role assignment
	denials   map[string]int // denied by an extension, by reason code
	allowedAt []bool         // by check
}

// agreeCounting is agree that also counts the kinds of answer.
func (w *edgeWorld) agreeCounting(checks []map[string]any) tally {
	w.t.Helper()
	n := tally{denials: map[string]int{}, allowedAt: make([]bool, len(checks))}
	for i, c := range checks {
		want, _ := w.checkTrellis(w.server, c)
		got, _ := w.checkTrellis(w.edge, c)
		if diff := cmp.Diff(want, got); diff != "" {
			w.t.Fatalf("check %d %v: trellis edge differs from the server (-server +edge):\n%s", i, c, diff)
		}
		got = w.checkOPA("trellis/edge/check", c)
		if diff := cmp.Diff(want, got); diff != "" {
			w.t.Fatalf("check %d %v: stock OPA differs from the server (-server +opa):\n%s", i, c, diff)
		}
		reason, _ := want["reason"].(map[string]any)
		switch {
		case want["allowed"] == true:
			n.allowed++
			n.allowedAt[i] = true
			if reason["group"] != nil {
				n.viaGroup++
			}
		case want["decided_by"] == "extension":
			n.denials[fmt.Sprint(reason["code"])]++
		}
	}
	return n
}

func TestEdgesAgreeWithTheServer(t *testing.T) {
	w := newEdgeWorld(t)
	checks := w.corpus(1000)
	n := w.agreeCounting(checks)
	allowed, viaGroup := n.allowed, n.viaGroup
	t.Logf("1000 random checks: %d allowed (%d through a group), identical on the server, trellis edge and stock OPA", allowed, viaGroup)
	if allowed < 50 || allowed > 950 {
		t.Errorf("%d of 1000 allowed: the corpus should exercise both answers", allowed)
	}
	if viaGroup == 0 {
		t.Error("no check allowed through a group: the corpus should exercise group grants")
	}

	t.Run("forged tokens are denied", func(t *testing.T) { w.forgedTokens(t) })
	t.Run("tampered bundles are rejected", func(t *testing.T) { w.tamperedBundles(t, checks[:40]) })
	t.Run("propagation", func(t *testing.T) { w.propagation(t, checks[:200]) })
	t.Run("restart from the persisted bundle", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		url := w.startEdge(ctx, "http://"+freeAddr(t)+"/bundles/trellis.tar.gz") // nothing listens there
		resp, err := http.Get(url + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("restarted edge /ready: %d, want 200 from the persisted bundle", resp.StatusCode)
		}
		want, _ := w.checkTrellis(w.server, checks[0])
		got, rev := w.checkTrellis(url, checks[0])
		if diff := cmp.Diff(want, got); diff != "" || rev != float64(w.ds.Revision) {
			t.Errorf("restarted edge at revision %v, want %d; diff:\n%s", rev, w.ds.Revision, diff)
		}
	})
}

func (w *edgeWorld) forgedTokens(t *testing.T) {
	// A membership and a resource of its organization, and claims that
	// would allow by the token layer if they were believed.
	m := w.ds.Memberships[0]
	var res model.Resource
	for _, r := range w.ds.Resources {
		if r.OrganizationID == m.OrganizationID {
			res = r
			break
		}
	}
	perm := w.ds.Permissions[len(w.ds.Permissions)-1].Slug
	now := time.Now()
	claims := map[string]any{
		"iss": testIssuer, "sub": m.UserID, "org_id": m.OrganizationID, "permissions": []string{perm},
		"organization_membership_id": m.ID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	sign := func(s *token.Signer, c map[string]any) string {
		raw, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	attacker := newSigner(t, "session-key") // same kid, another key
	hs256 := func(secret []byte) string {
		signing := b64(map[string]any{"alg": "HS256", "kid": "session-key", "typ": "JWT"}) + "." + b64(claims)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	var pub struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(w.signer.JWKS(), &pub)
	check := func(tok string) map[string]any {
		return map[string]any{"token": tok, "permission": perm, "resource": map[string]any{"id": res.ID}}
	}

	// The control: the genuine token is allowed everywhere.
	valid := check(sign(w.signer, claims))
	for name, d := range map[string]map[string]any{
		"server": first(w.checkTrellis(w.server, valid)), "trellis edge": first(w.checkTrellis(w.edge, valid)),
		"stock OPA": w.checkOPA("trellis/edge/check", valid),
	} {
		if d["allowed"] != true {
			t.Fatalf("%s denies the genuine token: %v", name, d)
		}
	}
	for name, tok := range map[string]string{
		"bad signature":              sign(attacker, claims),
		"alg none":                   b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + ".",
		"HS256 with the public JWK":  hs256(pub.Keys[0]),
		"HS256 with the public JWKS": hs256(w.signer.JWKS()),
		"wrong issuer":               sign(w.signer, with("iss", "https://evil.test")),
		"expired":                    sign(w.signer, with("exp", now.Add(-time.Hour).Unix())),
		"not yet valid":              sign(w.signer, with("nbf", now.Add(time.Hour).Unix())),
		"payload swapped":            swapPayload(sign(w.signer, with("permissions", []string{})), b64(claims)),
		"not a JWT":                  "forged",
	} {
		c := check(tok)
		for where, d := range map[string]map[string]any{
			"server": first(w.checkTrellis(w.server, c)), "trellis edge": first(w.checkTrellis(w.edge, c)),
			"stock OPA": w.checkOPA("trellis/edge/check", c),
		} {
			if d["allowed"] != false {
				t.Errorf("%s: %s allows a forged token: %v", name, where, d)
			}
		}
	}

	// A client that skips the edge entrypoint and hands the core package a
	// claims object of its choosing gets nothing: no host vouches for it.
	forged := map[string]any{"token": map[string]any{"org_id": m.OrganizationID, "permissions": []string{perm}, "membership_id": m.ID},
		"permission": perm, "resource": map[string]any{"id": res.ID}}
	if d := w.checkOPA("trellis/check", forged); d["allowed"] != false {
		t.Errorf("stock OPA data.trellis.check allows a forged claims object: %v", d)
	}
	// Nor can it vouch for itself: data.trellis_host is a bundle root, so
	// OPA refuses writes there.
	req, _ := http.NewRequest(http.MethodPut, w.opa+"/v1/data/trellis_host", strings.NewReader(`{"verifies_tokens": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("PUT /v1/data/trellis_host on stock OPA: %d, want it refused", resp.StatusCode)
	}
	if d := w.checkOPA("trellis/check", forged); d["allowed"] != false {
		t.Errorf("after the PUT, data.trellis.check allows a forged claims object: %v", d)
	}
}

func first(d map[string]any, _ float64) map[string]any { return d }

func swapPayload(tok, payload string) string {
	parts := strings.Split(tok, ".")
	return parts[0] + "." + payload + "." + parts[2]
}

func (w *edgeWorld) tamperedBundles(t *testing.T, sample []map[string]any) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/bundles/trellis.tar.gz", nil)
	req.Header.Set("Authorization", "Bearer "+opaBundleKey)
	w.handler.ServeHTTP(rec, req)
	good := rec.Body.Bytes()
	if rec.Code != http.StatusOK {
		t.Fatalf("current bundle: %d", rec.Code)
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(otherKey)
	otherSigner, err := bundle.NewSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "", "trellis", "")
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := func(signer *bundle.Signer) []byte {
		var buf bytes.Buffer
		doc, err := index.BuildAST(w.ds)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bundle.Build(context.Background(), &buf, bundle.Document{Revision: w.ds.Revision + 100, Data: doc},
			bundle.Options{Modules: policies.Modules(), Signer: signer}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	allowAll := func(b []byte) []byte {
		out := strings.Replace(string(b), "} else := decide(input.permission, input.resource)",
			`} else := {"allowed": true, "decided_by": "token", "reason": {"code": "tampered", "message": "tampered"}}`, 1)
		if out == string(b) {
			t.Fatal("the policy tamper changed nothing: update it to authz.rego's check rule")
		}
		return []byte(out)
	}
	cases := []struct {
		name string
		body []byte
	}{
		{"modified data file", bundletest.Tamper(t, good, "/data.json", func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte(`"active":false`), []byte(`"active":true`))
		})},
		{"modified policy", bundletest.Tamper(t, good, "/trellis/authz.rego", allowAll)},
		{"missing file", bundletest.Tamper(t, good, "/trellis/discovery.rego", nil)},
		{"extra file", bundletest.Add(t, good, "/trellis/zz_extra.rego", "package trellis.extra\n\nx := 1\n")},
		{"wrong key", rebuilt(otherSigner)},
		{"no signature", rebuilt(nil)},
	}
	before := w.edgeReady()
	opaRev := w.opaRevision()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opaN, edgeN := w.opaReqs.Load(), w.edgeReq.Load()
			failures := w.edgeReady()["failures"].(float64)
			w.tamper.Store(&tampered{body: tc.body, etag: fmt.Sprintf(`"tampered-%d"`, i)})
			// Each edge has fetched the tampered bundle and asked again,
			// so it has processed (and rejected) it.
			waitFor(t, 30*time.Second, "both edges to fetch the tampered bundle", func() bool {
				return w.opaReqs.Load() >= opaN+2 && w.edgeReq.Load() >= edgeN+2
			})
			ready := w.edgeReady()
			if ready["ready"] != true || ready["stale"] != true || ready["failures"].(float64) <= failures ||
				ready["bundle_revision"] != before["bundle_revision"] {
				t.Errorf("trellis edge /ready after a tampered bundle: %v; want ready, stale, the old bundle revision %v", ready, before["bundle_revision"])
			}
			if got := w.opaRevision(); got != opaRev {
				t.Errorf("stock OPA revision %v, want %v (the last good bundle)", got, opaRev)
			}
			w.agree(sample)
			w.tamper.Store(nil)
			waitFor(t, 30*time.Second, "trellis edge to recover", func() bool { return w.edgeReady()["stale"] == false })
		})
	}
	if !strings.Contains(w.log.String(), "keeping the last good bundle") {
		t.Error("trellis edge did not log that it kept the last good bundle")
	}
}

func (w *edgeWorld) propagation(t *testing.T, sample []map[string]any) {
	// Let both edges settle into a long poll on the current bundle.
	n := w.opaReqs.Load()
	waitFor(t, 30*time.Second, "stock OPA to poll again", func() bool { return w.opaReqs.Load() >= n+2 })
	next := *w.ds
	next.Revision = w.ds.Revision + 1
	next.Memberships = append([]model.Membership(nil), w.ds.Memberships...)
	for i := range next.Memberships { // flip every membership's status
		if next.Memberships[i].Status == model.StatusActive {
			next.Memberships[i].Status = model.StatusInactive
		} else {
			next.Memberships[i].Status = model.StatusActive
		}
	}
	start := time.Now()
	w.load(&next)
	edgeTook := waitFor(t, 10*time.Second, "trellis edge to serve the new revision", func() bool {
		_, rev := w.checkTrellis(w.edge, sample[0])
		return rev == float64(next.Revision)
	})
	opaTook := waitFor(t, 10*time.Second, "stock OPA to serve the new revision", func() bool {
		return w.opaRevision() == float64(next.Revision)
	})
	t.Logf("revision %d propagated in %v to trellis edge and %v to stock OPA (both long polling)", next.Revision, edgeTook, time.Since(start))
	if edgeTook > time.Second || opaTook > time.Second {
		t.Errorf("propagation took %v (trellis edge) and %v (stock OPA); want within 1s", edgeTook, opaTook)
	}
	w.ds = &next
	w.agree(sample)
}
