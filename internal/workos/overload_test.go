package workos_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/requestid"
	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/policies"
)

// blockingStore holds every ListOrganizations call until release closes.
type blockingStore struct {
	workos.Store
	entered chan struct{}
	release chan struct{}
}

func (b blockingStore) ListOrganizations(ctx context.Context, f workos.OrganizationFilter, o workos.ListOptions) ([]workos.Organization, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.ListOrganizations(ctx, f, o)
}

// TestOverload: beyond MaxInFlight requests at once the handler answers 429
// rate_limit_exceeded with Retry-After (which the SDKs wait for), and
// serves again once a slot is free; every answer carries X-Request-ID.
func TestOverload(t *testing.T) {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Modules: policies.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadDataset(ctx, &model.Dataset{}); err != nil {
		t.Fatal(err)
	}
	svc, err := authz.New(authz.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	store := blockingStore{Store: newMemStore(eng.Apply), entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, err := workos.New(workos.Config{Store: store, Decider: svc, APIKeys: []string{testKey}, MaxInFlight: 2,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(requestid.Handler(h))
	defer srv.Close()
	e := &env{t: t, srv: srv, h: h, eng: eng, svc: svc}

	held := make(chan response, 2)
	for range 2 {
		go func() {
			r, err := e.send("GET", "/organizations", nil)
			if err != nil {
				t.Error(err)
			}
			held <- r
		}()
		<-store.entered
	}
	r := e.raw("GET", "/organizations", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.json(t)["code"] != "rate_limit_exceeded" {
		t.Fatalf("a third request at once: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r.header.Get(requestid.Header) == "" {
		t.Fatal("429 without X-Request-ID")
	}
	close(store.release)
	for range 2 {
		if r := <-held; r.status != http.StatusOK {
			t.Fatalf("a held request: %d %s", r.status, r.body)
		}
	}
	if r := e.raw("GET", "/organizations", nil); r.status != http.StatusOK || r.header.Get(requestid.Header) == "" {
		t.Fatalf("after the load: %d %q %s", r.status, r.header.Get(requestid.Header), r.body)
	}
}
