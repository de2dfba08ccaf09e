package bundle_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/policies"
)

// quarantinedDoc is the demo at revision rev, org_acme quarantined when
// held.
func quarantinedDoc(t testing.TB, rev int64, held bool) bundle.Document {
	t.Helper()
	ds := datafile.Demo()
	if held {
		ds = ds.Without([]model.Problem{{Entity: "test", Organizations: []string{"org_acme"}}})
	}
	ds.Revision = rev
	doc, err := index.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Document{Revision: rev, Data: doc}
}

func TestQuarantinedOrganizationBundles(t *testing.T) {
	held := quarantinedDoc(t, 9, true)
	if _, err := bundle.Build(context.Background(), io.Discard, held, bundle.Options{Modules: policies.Modules(), Organization: "org_acme"}); !errors.Is(err, bundle.ErrOrganizationUnavailable) {
		t.Fatalf("bundle of a quarantined organization: %v, want ErrOrganizationUnavailable", err)
	}
	// The full bundle omits the organization's data and records it.
	raw, _ := build(t, held, bundle.Options{})
	c, err := bundle.Read(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data.Get(ast.InternedTerm("orgs")).Value.(ast.Object).Get(ast.StringTerm("org_acme")) != nil {
		t.Error("the full bundle holds the quarantined organization's data")
	}
	if q := c.Data.Get(ast.InternedTerm("quarantined")).Value.(ast.Object); q.Get(ast.StringTerm("org_acme")) == nil {
		t.Errorf("the full bundle does not record the quarantine: %v", q)
	}

	src := &fakeSource{changed: make(chan struct{}, 1)}
	srv, err := bundle.NewServer(bundle.ServerConfig{Source: src, Options: bundle.Options{Modules: policies.Modules()}, Organizations: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	get := func(org, etag string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/bundles/orgs/"+org+".tar.gz", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}

	// Quarantined from the start: no bundle, 503 with Retry-After; the
	// other organization is built.
	src.doc.Store(&held)
	if status, h := get("org_acme", ""); status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("quarantined organization without a bundle: %d, Retry-After %q; want 503 with Retry-After", status, h.Get("Retry-After"))
	}
	if status, _ := get("org_globex", ""); status != http.StatusOK {
		t.Errorf("the other organization: %d", status)
	}

	// Healthy, then quarantined: its last good bundle is kept, not rebuilt.
	good := quarantinedDoc(t, 10, false)
	src.doc.Store(&good)
	status, h := get("org_acme", "")
	lastGood := h.Get("ETag")
	if status != http.StatusOK || lastGood == "" {
		t.Fatalf("healthy organization: %d", status)
	}
	bad := quarantinedDoc(t, 11, true)
	src.doc.Store(&bad)
	if status, h := get("org_acme", ""); status != http.StatusOK || h.Get("ETag") != lastGood {
		t.Errorf("quarantined after a good build: %d, ETag %q; want its last good bundle %q", status, h.Get("ETag"), lastGood)
	}
	if status, _ := get("org_acme", lastGood); status != http.StatusNotModified {
		t.Errorf("quarantined, with the last good bundle: %d, want 304", status)
	}
	if status, h := get("org_globex", ""); status != http.StatusOK || h.Get("ETag") == "" {
		t.Errorf("the other organization is rebuilt: %d", status)
	}
	// Lifted: rebuilt at the new revision.
	lifted := quarantinedDoc(t, 12, false)
	src.doc.Store(&lifted)
	if status, h := get("org_acme", lastGood); status != http.StatusOK || h.Get("ETag") == lastGood {
		t.Errorf("after the quarantine is lifted: %d, ETag %q; want a new bundle", status, h.Get("ETag"))
	}
}
