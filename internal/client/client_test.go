package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/client"
)

func TestResource(t *testing.T) {
	for in, want := range map[string]authz.ResourceRef{
		"authz_resource_x": {ID: "authz_resource_x", OrganizationID: "org_a"},
		"project:api":      {Type: "project", ExternalID: "api", OrganizationID: "org_a"},
		"app:a:b":          {Type: "app", ExternalID: "a:b", OrganizationID: "org_a"},
	} {
		if got, err := client.Resource(in, "org_a"); err != nil || got != want {
			t.Errorf("Resource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":api", "project:"} {
		if _, err := client.Resource(bad, ""); err == nil {
			t.Errorf("Resource(%q) accepted", bad)
		}
	}
}

// TestErrorAnswer: a server's error body becomes an *Error naming its
// message and code; a body that is not one still says what happened.
func TestErrorAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code": "unauthorized", "message": "an API key is required"}`))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>"))
	}))
	defer srv.Close()
	ctx := context.Background()
	_, _, err := (&client.Client{Server: srv.URL}).Check(ctx, client.Subject{Membership: "om_a"}, "p", authz.ResourceRef{ID: "r"}, false)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthorized" || !strings.Contains(err.Error(), "an API key is required") {
		t.Errorf("401: %v", err)
	}
	_, _, err = (&client.Client{Server: srv.URL, APIKey: "k"}).Check(ctx, client.Subject{Membership: "om_a"}, "p", authz.ResourceRef{ID: "r"}, false)
	if !errors.As(err, &e) || e.Status != 502 || !strings.Contains(err.Error(), "502") {
		t.Errorf("502: %v", err)
	}
}

func TestWriteExplainThroughAGroup(t *testing.T) {
	a := client.CheckAnswer{Decision: authz.Decision{Allowed: true, DecidedBy: "assignment", Reason: map[string]any{
		"role": "editor", "group": map[string]any{"id": "group_1", "name": "Platform"},
		"path": []any{map[string]any{"id": "r_1", "type": "doc", "external_id": "d1"}},
	}}}
	var b strings.Builder
	if err := client.WriteExplain(&b, client.Subject{Membership: "om_a"}, "doc:edit", "doc:d1", a); err != nil {
		t.Fatal(err)
	}
	want := "ALLOWED  om_a  doc:edit  doc:d1  (decided by assignment, revision 0)\n" +
		"  role editor, assigned to group Platform (group_1), which om_a is a member of\n" +
		"  doc:d1  r_1  ← role editor here grants doc:edit\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
