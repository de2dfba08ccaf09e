package bundle_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/bundle/bundletest"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/policies"
)

// keyPair returns a PEM private key and its PEM public key.
func keyPair(t testing.TB, alg string) (priv, pub []byte) {
	t.Helper()
	var key any
	var err error
	switch alg {
	case bundle.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubKey := key.(crypto.Signer).Public()
	pubDER, err := x509.MarshalPKIXPublicKey(pubKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}

func demoDoc(t testing.TB) bundle.Document {
	t.Helper()
	ds := datafile.Demo()
	ds.Revision = 7
	doc, err := index.BuildAST(ds)
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Document{Revision: 7, Data: doc}
}

func build(t testing.TB, doc bundle.Document, opts bundle.Options) ([]byte, bundle.Info) {
	t.Helper()
	if opts.Modules == nil {
		opts.Modules = policies.Modules()
	}
	var buf bytes.Buffer
	info, err := bundle.Build(context.Background(), &buf, doc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), info
}

var testKeys = &bundle.Keys{
	Issuer: "https://issuer.test", Algorithms: []string{"RS256"}, MembershipClaim: "organization_membership_id",
	SkewSeconds: 30, JWKS: []byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}`),
}

func TestBuildReadRoundTrip(t *testing.T) {
	for _, alg := range []string{bundle.RS256, bundle.ES256} {
		t.Run(alg, func(t *testing.T) {
			priv, pub := keyPair(t, alg)
			signer, err := bundle.NewSigner(priv, "", "kid-1", "trellis-edge")
			if err != nil {
				t.Fatal(err)
			}
			if signer.Algorithm() != alg {
				t.Fatalf("signer algorithm %s, want %s", signer.Algorithm(), alg)
			}
			doc := demoDoc(t)
			raw, info := build(t, doc, bundle.Options{Keys: testKeys, Signer: signer})
			if !info.Signed || !strings.HasPrefix(info.Revision, "7-") || info.Size != int64(len(raw)) {
				t.Fatalf("info = %+v", info)
			}
			got, err := bundle.Read(raw, &bundle.Verification{PublicKey: pub, KeyID: "kid-1", Algorithm: alg, Scope: "trellis-edge"})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got.Revision != info.Revision || got.DataRevision != 7 {
				t.Errorf("read revision %q/%d, want %q/7", got.Revision, got.DataRevision, info.Revision)
			}
			if diff := cmp.Diff(policies.Modules(), got.Modules); diff != "" {
				t.Errorf("modules (-want +got):\n%s", diff)
			}
			if got.Data.Compare(doc.Data.(ast.Object)) != 0 {
				t.Error("the data read back differs from the data built")
			}
			// The right key under another scope is refused. (The key id only
			// selects the configured key, as in OPA: it is not a secret.)
			if _, err := bundle.Read(raw, &bundle.Verification{PublicKey: pub, KeyID: "kid-1", Algorithm: alg, Scope: "other"}); err == nil {
				t.Error("Read accepted a bundle signed for another scope")
			}
		})
	}
}

// The data encoded from AST values and from the Go values an evaluation
// returns is the same document, so both sources give the same bundle.
func TestBuildFromGoValuesMatchesAST(t *testing.T) {
	doc := demoDoc(t)
	goValue, err := ast.JSON(doc.Data.(ast.Object))
	if err != nil {
		t.Fatal(err)
	}
	a, infoA := build(t, doc, bundle.Options{Keys: testKeys})
	b, infoB := build(t, bundle.Document{Revision: 7, Data: goValue}, bundle.Options{Keys: testKeys})
	if infoA.Revision != infoB.Revision || !bytes.Equal(bundletest.File(t, a, "/data.json"), bundletest.File(t, b, "/data.json")) {
		t.Error("AST and Go values encode differently")
	}
}

func TestReadRejects(t *testing.T) {
	priv, pub := keyPair(t, bundle.RS256)
	otherPriv, _ := keyPair(t, bundle.RS256)
	signer, _ := bundle.NewSigner(priv, "", "k", "")
	other, _ := bundle.NewSigner(otherPriv, "", "k", "")
	good, _ := build(t, demoDoc(t), bundle.Options{Signer: signer})
	wrongKey, _ := build(t, demoDoc(t), bundle.Options{Signer: other})
	unsigned, _ := build(t, demoDoc(t), bundle.Options{})
	v := &bundle.Verification{PublicKey: pub, KeyID: "k"}
	for name, raw := range map[string][]byte{
		"modified data":   bundletest.Tamper(t, good, "/data.json", func(b []byte) []byte { return bytes.Replace(b, []byte(`"active":false`), []byte(`"active":true`), 1) }),
		"modified policy": bundletest.Tamper(t, good, "/trellis/authz.rego", func(b []byte) []byte { return append(b, "\n# edited\n"...) }),
		"missing file":    bundletest.Tamper(t, good, "/trellis/discovery.rego", nil),
		"extra file":      bundletest.Add(t, good, "/trellis/extra.rego", "package trellis.extra\n\nx := 1\n"),
		"wrong key":       wrongKey,
		"no signature":    unsigned,
		"not a bundle":    []byte("garbage"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := bundle.Read(raw, v); err == nil {
				t.Fatal("Read accepted a tampered bundle")
			}
		})
	}
	if _, err := bundle.Read(unsigned, v); !errors.Is(err, bundle.ErrUnsigned) {
		t.Errorf("unsigned: got %v, want ErrUnsigned", err)
	}
}

func TestOrganizationBundle(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 5, Resources: 300, Assignments: 300, Depth: 4})
	doc, err := index.BuildAST(ds)
	if err != nil {
		t.Fatal(err)
	}
	org := ds.Organizations[1].ID
	raw, info := build(t, bundle.Document{Revision: ds.Revision, Data: doc}, bundle.Options{Organization: org})
	full, fullInfo := build(t, bundle.Document{Revision: ds.Revision, Data: doc}, bundle.Options{})
	if info.Revision == fullInfo.Revision || len(raw) >= len(full) {
		t.Errorf("organization bundle %+v vs full %+v", info, fullInfo)
	}
	c, err := bundle.Read(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	orgs := c.Data.Get(ast.InternedTerm("orgs")).Value.(ast.Object)
	if orgs.Len() != 1 || orgs.Get(ast.StringTerm(org)) == nil {
		t.Errorf("orgs = %v, want only %s", orgs, org)
	}
	c.Data.Get(ast.InternedTerm("resources")).Value.(ast.Object).Foreach(func(_, v *ast.Term) {
		if got := v.Value.(*ast.Array).Elem(0).Value.(ast.String); string(got) != org { // [org, type, ext, anc]
			t.Errorf("resource of %s in %s's bundle", got, org)
		}
	})
	c.Data.Get(ast.InternedTerm("memberships")).Value.(ast.Object).Foreach(func(_, v *ast.Term) {
		if got := v.Value.(ast.Object).Get(ast.InternedTerm("org")).Value.(ast.String); string(got) != org {
			t.Errorf("membership of %s in %s's bundle", got, org)
		}
	})
	if _, err := bundle.Build(context.Background(), io.Discard, bundle.Document{Data: doc}, bundle.Options{Modules: policies.Modules(), Organization: "org_nope"}); !errors.Is(err, bundle.ErrUnknownOrganization) {
		t.Errorf("unknown organization: %v", err)
	}
}

// fakeSource is a Source whose revision the test moves.
type fakeSource struct {
	doc       atomic.Pointer[bundle.Document]
	changed   chan struct{}
	snapshots atomic.Int64
}

func (f *fakeSource) Revision() int64 { return f.doc.Load().Revision }

func (f *fakeSource) WaitFor(ctx context.Context, rev int64, timeout time.Duration) error {
	deadline := time.After(timeout)
	for f.Revision() < rev {
		select {
		case <-f.changed:
		case <-deadline:
			return errors.New("timeout")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeSource) Snapshot(context.Context) (bundle.Document, error) {
	f.snapshots.Add(1)
	return *f.doc.Load(), nil
}

func TestServerProtocol(t *testing.T) {
	src := &fakeSource{changed: make(chan struct{}, 1)}
	d := demoDoc(t)
	src.doc.Store(&d)
	srv, err := bundle.NewServer(bundle.ServerConfig{
		Source: src, Options: bundle.Options{Modules: policies.Modules()}, Organizations: true,
		Authorize: bundle.BearerKeys([]string{"key"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	// reply is what the tests read of a response; get closes the body
	// itself, so no *http.Response (and no open body) leaves it.
	type reply struct {
		StatusCode int
		Header     http.Header
	}
	get := func(path string, hdr map[string]string) reply {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer key")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return reply{StatusCode: resp.StatusCode, Header: resp.Header}
	}

	first := get("/bundles/trellis.tar.gz", nil)
	etag := first.Header.Get("ETag")
	if first.StatusCode != http.StatusOK || etag == "" || first.Header.Get("Content-Type") != bundle.ContentType {
		t.Fatalf("first GET: %d, ETag %q, Content-Type %q", first.StatusCode, etag, first.Header.Get("Content-Type"))
	}
	if r := get("/bundles/trellis.tar.gz", map[string]string{"If-None-Match": `"old", ` + etag}); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: %d, want 304", r.StatusCode)
	}
	if r := get("/bundles/trellis.tar.gz", nil); r.StatusCode != http.StatusOK || src.snapshots.Load() != 1 {
		t.Errorf("second GET: %d after %d snapshots, want 200 after 1 (built once per revision)", r.StatusCode, src.snapshots.Load())
	}

	// Long polling: held until the revision changes, then the new bundle.
	go func() {
		time.Sleep(200 * time.Millisecond)
		next := demoDoc(t)
		next.Revision = 8
		src.doc.Store(&next)
		src.changed <- struct{}{}
	}()
	start := time.Now()
	r := get("/bundles/trellis.tar.gz", map[string]string{"If-None-Match": etag, "Prefer": "modes=snapshot,delta;wait=5"})
	if r.StatusCode != http.StatusOK || r.Header.Get("ETag") == etag || time.Since(start) < 150*time.Millisecond || time.Since(start) > 4*time.Second {
		t.Errorf("long poll: %d, ETag %q after %v; want 200 with a new ETag after ~200ms", r.StatusCode, r.Header.Get("ETag"), time.Since(start))
	}
	etag = r.Header.Get("ETag")
	start = time.Now()
	if r := get("/bundles/trellis.tar.gz", map[string]string{"If-None-Match": etag, "Prefer": "wait=1"}); r.StatusCode != http.StatusNotModified || time.Since(start) < 900*time.Millisecond {
		t.Errorf("long poll without a change: %d after %v, want 304 after 1s", r.StatusCode, time.Since(start))
	}

	org := datafile.Demo().Organizations[0].ID
	for path, want := range map[string]int{
		"/bundles/orgs/" + org + ".tar.gz": http.StatusOK,
		"/bundles/orgs/org_nope.tar.gz":    http.StatusNotFound,
		"/bundles/other.tar.gz":            http.StatusNotFound,
	} {
		if r := get(path, nil); r.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, r.StatusCode, want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/bundles/trellis.tar.gz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no API key: %d, want 401", resp.StatusCode)
	}
}

// TestBuildProgress: a build reports encoding (a rising count) and then
// compressing, from 0 to all the bytes archived, data.json's included.
func TestBuildProgress(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 1, Organizations: 10, Resources: 100_000, Assignments: 50_000, MembershipsPerOrg: 20})
	doc, err := index.BuildAST(ds)
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		stage       string
		done, total int64
	}
	var calls []call
	_, info := build(t, bundle.Document{Revision: ds.Revision, Data: doc}, bundle.Options{Progress: func(stage string, done, total int64) {
		calls = append(calls, call{stage, done, total})
	}})
	var encoding, compressing []call
	for i, c := range calls {
		switch {
		case c.stage == "encoding" && len(compressing) == 0:
			encoding = append(encoding, c)
		case c.stage == "compressing":
			compressing = append(compressing, c)
		default:
			t.Fatalf("call %d %+v: want encoding calls, then compressing calls", i, c)
		}
	}
	if len(encoding) == 0 || len(compressing) < 3 {
		t.Fatalf("%d encoding and %d compressing calls, want some of each (the data is %d bytes)", len(encoding), len(compressing), info.DataBytes)
	}
	for i, c := range encoding {
		if c.total != 0 || (i > 0 && c.done <= encoding[i-1].done) {
			t.Errorf("encoding call %+v after %+v, want a rising count and no total", c, encoding[max(i-1, 0)])
		}
	}
	total := compressing[0].total
	if first, last := compressing[0], compressing[len(compressing)-1]; first.done != 0 || last.done != total || total <= info.DataBytes {
		t.Errorf("compressing from %+v to %+v, want 0 to the total, above data.json's %d bytes", first, last, info.DataBytes)
	}
	for i := 1; i < len(compressing); i++ {
		if c := compressing[i]; c.total != total || c.done < compressing[i-1].done {
			t.Errorf("compressing call %+v after %+v", c, compressing[i-1])
		}
	}
}

// TestServerSetModules: after SetModules, the full and the organization
// bundles are rebuilt with the new modules, under a new ETag, at the same
// data revision.
func TestServerSetModules(t *testing.T) {
	src := &fakeSource{changed: make(chan struct{}, 1)}
	d := demoDoc(t)
	src.doc.Store(&d)
	srv, err := bundle.NewServer(bundle.ServerConfig{Source: src, Options: bundle.Options{Modules: policies.Modules()}, Organizations: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	fetch := func(path string) (string, bundle.Contents) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		c, err := bundle.Read(body, nil)
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		return resp.Header.Get("ETag"), c
	}
	org := "/bundles/orgs/" + datafile.Demo().Organizations[0].ID + ".tar.gz"
	fullTag, _ := fetch("/bundles/trellis.tar.gz")
	orgTag, _ := fetch(org)
	mods := policies.Modules()
	mods["ext/x.rego"] = "package trellis.ext.x\n\ndeny contains {\"code\": \"c\", \"message\": \"m\"} if false\n"
	srv.SetModules(mods)
	for path, old := range map[string]string{"/bundles/trellis.tar.gz": fullTag, org: orgTag} {
		tag, c := fetch(path)
		if tag == old || c.Modules["ext/x.rego"] != mods["ext/x.rego"] || c.DataRevision != d.Revision {
			t.Errorf("%s after SetModules: ETag %s (was %s), extension %q, data revision %d", path, tag, old, c.Modules["ext/x.rego"], c.DataRevision)
		}
	}
}
