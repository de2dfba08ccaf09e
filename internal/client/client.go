// Package client asks a running Trellis server for decisions over its
// native API (/v1), for the command line's check, explain, list and
// permissions, and renders the answers for people.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-authz/trellis/internal/authz"
)

// Client talks to one server.
type Client struct {
	Server string // base URL, e.g. http://127.0.0.1:8080
	APIKey string // "" sends none
	HTTP   *http.Client
}

// Subject is who asks: a membership (which the server accepts only with
// the API key) or a session token.
type Subject struct {
	Membership string
	Token      string
}

// fields returns the subject's request fields.
func (s Subject) fields() map[string]any {
	if s.Token != "" {
		return map[string]any{"token": s.Token}
	}
	return map[string]any{"subject": map[string]string{"organization_membership_id": s.Membership}}
}

// Name is the subject as output shows it.
func (s Subject) Name() string {
	if s.Token != "" {
		return "the token"
	}
	return s.Membership
}

// Error is an error answer of the server.
type Error struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// Resource parses a resource as the command line gives it: an id, or
// type:external_id in organization org ("" for the subject's).
func Resource(ref, org string) (authz.ResourceRef, error) {
	if ref == "" {
		return authz.ResourceRef{}, fmt.Errorf("no resource: give an id or type:external_id")
	}
	if typ, ext, ok := strings.Cut(ref, ":"); ok {
		if typ == "" || ext == "" {
			return authz.ResourceRef{}, fmt.Errorf("resource %q: give type:external_id, both non-empty", ref)
		}
		return authz.ResourceRef{Type: typ, ExternalID: ext, OrganizationID: org}, nil
	}
	return authz.ResourceRef{ID: ref, OrganizationID: org}, nil
}

// post sends body to path and decodes the answer into out; the raw answer
// is returned too, for --output json.
func (c *Client) post(ctx context.Context, path string, body map[string]any, out any) (json.RawMessage, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Server, "/")+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(answer, e) != nil || e.Message == "" {
			e.Code, e.Message = "http", fmt.Sprintf("%s answered %s", c.Server+path, resp.Status)
		}
		return nil, e
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return nil, fmt.Errorf("%s: unexpected answer: %w", path, err)
	}
	return answer, nil
}

// CheckAnswer is the answer of POST /v1/check.
type CheckAnswer struct {
	authz.Decision
	authz.Answer
}

// Check asks whether sub may perm on res; explain asks for the grant's
// path too.
func (c *Client) Check(ctx context.Context, sub Subject, perm string, res authz.ResourceRef, explain bool) (CheckAnswer, json.RawMessage, error) {
	body := sub.fields()
	body["permission"], body["resource"] = perm, res
	if explain {
		body["explain"] = true
	}
	var a CheckAnswer
	raw, err := c.post(ctx, "/v1/check", body, &a)
	return a, raw, err
}

// maxListed bounds the ids a list command collects.
const maxListed = 100_000

// ListResources returns every resource id sub may perm on (resourceType
// and parent optional), following the cursors.
func (c *Client) ListResources(ctx context.Context, sub Subject, perm, resourceType string, parent *authz.ResourceRef, org string) ([]string, error) {
	body := sub.fields()
	body["permission"], body["limit"] = perm, authz.MaxPageSize
	if resourceType != "" {
		body["resource_type"] = resourceType
	}
	if parent != nil {
		body["parent"] = parent
	}
	if org != "" {
		body["organization_id"] = org
	}
	return c.pages(ctx, "/v1/list-resources", body, "resource_ids")
}

// ListMemberships returns every membership with perm on res.
func (c *Client) ListMemberships(ctx context.Context, perm string, res authz.ResourceRef) ([]string, error) {
	body := map[string]any{"permission": perm, "resource": res, "limit": authz.MaxPageSize}
	return c.pages(ctx, "/v1/list-memberships", body, "membership_ids")
}

// pages collects the ids under field of every page of a list.
func (c *Client) pages(ctx context.Context, path string, body map[string]any, field string) ([]string, error) {
	var ids []string
	for {
		var page map[string]json.RawMessage
		if _, err := c.post(ctx, path, body, &page); err != nil {
			return nil, err
		}
		var got []string // absent when the page is empty
		if raw, ok := page[field]; ok {
			if err := json.Unmarshal(raw, &got); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, field, err)
			}
		}
		ids = append(ids, got...)
		var next string
		_ = json.Unmarshal(page["next_cursor"], &next)
		if next == "" || len(got) == 0 {
			return ids, nil
		}
		if len(ids) >= maxListed {
			return nil, fmt.Errorf("%s: more than %d ids; narrow the list (resource type, parent)", path, maxListed)
		}
		body["cursor"] = next
	}
}

// Permissions returns sub's effective permissions on res.
func (c *Client) Permissions(ctx context.Context, sub Subject, res authz.ResourceRef) (authz.Permissions, json.RawMessage, error) {
	body := sub.fields()
	body["resource"] = res
	var p authz.Permissions
	raw, err := c.post(ctx, "/v1/effective-permissions", body, &p)
	return p, raw, err
}
