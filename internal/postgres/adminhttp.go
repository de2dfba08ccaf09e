package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

// Writer applies a batch of changes (implemented by *Store).
type Writer interface {
	Write(ctx context.Context, changes []model.Change, opts ...WriteOption) (int64, error)
}

// AdminConfig configures the admin write handler.
type AdminConfig struct {
	// Writer applies the batches (required).
	Writer Writer
	// Authorize reports whether a request carries a valid API key
	// (required). A request it rejects gets 401.
	Authorize func(r *http.Request) bool
	// MaxBodyBytes bounds the request body (default 1 MiB).
	MaxBodyBytes int64
	// Logger receives internal errors (default: discarded).
	Logger *slog.Logger
	// Acknowledged, when set, is told the revision of every write before
	// it is answered (*authz.Service.Acknowledged), so that the
	// instance's decisions reflect it (read-your-writes).
	Acknowledged func(ctx context.Context, rev int64)
}

// WireChange is one change of an admin request body: the op and exactly
// one entity, in model's JSON form under its lower-case kind.
type WireChange struct {
	Op           model.Op            `json:"op"`
	Organization *model.Organization `json:"organization,omitempty"`
	Membership   *model.Membership   `json:"membership,omitempty"`
	ResourceType *model.ResourceType `json:"resource_type,omitempty"`
	Permission   *model.Permission   `json:"permission,omitempty"`
	Role         *model.Role         `json:"role,omitempty"`
	Resource     *model.Resource     `json:"resource,omitempty"`
	Assignment   *model.Assignment   `json:"assignment,omitempty"`
	Group        *model.Group        `json:"group,omitempty"`
	GroupMember  *model.GroupMember  `json:"group_member,omitempty"`
	// CascadeDelete, on a resource delete, also deletes its subtree and
	// their assignments.
	CascadeDelete bool `json:"cascade_delete,omitempty"`
}

// AdminRequest is the body of POST /v1/admin/changes.
type AdminRequest struct {
	Changes []WireChange `json:"changes"`
}

// AdminResponse is the answer to a successful write.
type AdminResponse struct {
	Revision int64 `json:"revision"`
}

// ReadOnlyCode and ReadOnlyMessage are the error code and message of a
// write refused because the node's database is a read-only standby
// (ErrReadOnly), answered with status 421 Misdirected Request.
const (
	ReadOnlyCode    = "read_only"
	ReadOnlyMessage = "this Trellis node follows a read-only PostgreSQL standby and takes no writes: send writes to a node on the primary; nothing was written"
)

// AdminPath is the route of the admin write handler.
const AdminPath = "/v1/admin/changes"

// NewAdminHandler returns the handler of POST /v1/admin/changes: it applies
// the body's changes in one transaction and answers {"revision": N}. Errors
// are {"code", "message"}: 401 without a valid API key, 400 invalid_request
// for a malformed body (a NUL byte or invalid UTF-8 in a string, an id
// not of its documented shape (model.CheckID), attributes that are not a
// JSON object or are over model.MaxAttributesBytes, the field named), 404
// (not_found) and 409 (has_dependents) for deletes, 422 for any other
// data-model violation (the code is a model.Code… constant), 503
// unavailable with Retry-After when the database is unavailable or the
// write could not be serialized with concurrent writes (ErrUnavailable),
// 421 read_only on a node whose database is a read-only standby
// (ErrReadOnly: the write belongs to a node on the primary), 500 otherwise (details logged, not returned).
func NewAdminHandler(cfg AdminConfig) (http.Handler, error) {
	if cfg.Writer == nil || cfg.Authorize == nil {
		return nil, errors.New("postgres: admin handler needs a Writer and an Authorize func")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AdminPath, func(w http.ResponseWriter, r *http.Request) {
		if !cfg.Authorize(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this request needs a valid API key: Authorization: Bearer <key>")
			return
		}
		req, err := decodeAdmin(w, r, cfg.MaxBodyBytes)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		changes := make([]model.Change, len(req.Changes))
		var cascade []string
		for i, c := range req.Changes {
			changes[i] = model.Change{Op: c.Op, Organization: c.Organization, Membership: c.Membership,
				ResourceType: c.ResourceType, Permission: c.Permission, Role: c.Role, Resource: c.Resource, Assignment: c.Assignment,
				Group: c.Group, GroupMember: c.GroupMember}
			if c.CascadeDelete {
				if c.Op != model.OpDelete || c.Resource == nil {
					writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("change %d: cascade_delete applies to resource deletes only", i))
					return
				}
				cascade = append(cascade, c.Resource.ID)
			}
		}
		rev, err := cfg.Writer.Write(r.Context(), changes, CascadeDelete(cascade...))
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			writeError(w, StatusOf(ve.Code), ve.Code, ve.Error())
		case errors.Is(err, ErrReadOnly):
			writeError(w, http.StatusMisdirectedRequest, ReadOnlyCode, ReadOnlyMessage)
		case errors.Is(err, ErrUnavailable):
			cfg.Logger.WarnContext(r.Context(), "admin write: database unavailable", "err", err)
			w.Header().Set("Retry-After", RetryAfter)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the database cannot take the write now; retry later")
		case err != nil:
			cfg.Logger.ErrorContext(r.Context(), "admin write failed", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "the write failed; see the server log")
		default:
			if cfg.Acknowledged != nil {
				cfg.Acknowledged(r.Context(), rev)
			}
			writeJSON(w, http.StatusOK, AdminResponse{Revision: rev})
		}
	})
	return mux, nil
}

// decodeAdmin reads an admin request body: exactly one JSON object with
// known fields, every string of it text (rawjson.CheckText), at least one
// change, every id it names of its documented shape (model.CheckID) and
// every attributes object within model.CheckAttributes.
// The error is the message for the client.
func decodeAdmin(w http.ResponseWriter, r *http.Request, maxBytes int64) (AdminRequest, error) {
	var req AdminRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		return req, fmt.Errorf("malformed body: %w", err)
	}
	if err := rawjson.Decode(body, &req); err != nil {
		var bad *rawjson.TextError
		if errors.As(err, &bad) {
			return req, bad
		}
		if field := badAttributes(body); field != "" {
			return req, fmt.Errorf("%s must be a JSON object", field)
		}
		return req, fmt.Errorf("malformed body: %w", err)
	}
	if len(req.Changes) == 0 {
		return req, errors.New("changes must list at least one change")
	}
	for i, c := range req.Changes {
		if err := c.checkIDs(); err != nil {
			return req, fmt.Errorf("changes[%d].%w", i, err)
		}
		if err := c.checkAttributes(); err != nil {
			return req, fmt.Errorf("changes[%d].%w", i, err)
		}
	}
	return req, nil
}

// badAttributes names the first attributes field of an admin body that
// is neither an object nor null ("changes[1].resource.attributes"), or
// returns "". model.Attributes refuses such a value without saying which
// change holds it, so a body that failed to decode is probed for one.
func badAttributes(body []byte) string {
	var probe struct {
		Changes []map[string]json.RawMessage `json:"changes"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ""
	}
	for i, c := range probe.Changes {
		for _, kind := range []string{"organization", "resource"} {
			var entity struct {
				Attributes json.RawMessage `json:"attributes"`
			}
			if c[kind] == nil || json.Unmarshal(c[kind], &entity) != nil || entity.Attributes == nil {
				continue
			}
			if v := bytes.TrimSpace(entity.Attributes); len(v) > 0 && v[0] != '{' && string(v) != "null" {
				return fmt.Sprintf("changes[%d].%s.attributes", i, kind)
			}
		}
	}
	return ""
}

// checkAttributes checks the attributes of an organization or resource
// (model.CheckAttributes), the field named.
func (c WireChange) checkAttributes() error {
	var field string
	var a model.Attributes
	switch {
	case c.Organization != nil:
		field, a = "organization.attributes", c.Organization.Attributes
	case c.Resource != nil:
		field, a = "resource.attributes", c.Resource.Attributes
	}
	if err := model.CheckAttributes(a); err != nil {
		return fmt.Errorf("%s%w", field, err)
	}
	return nil
}

// checkIDs checks every id the change names (an empty one is left to the
// write path, which knows whether it is required) against its prefix.
func (c WireChange) checkIDs() error {
	type idField struct{ name, prefix, value string }
	var ids []idField
	switch {
	case c.Organization != nil:
		ids = []idField{{"organization.id", model.PrefixOrganization, c.Organization.ID},
			{"organization.root_resource_id", model.PrefixResource, c.Organization.RootResourceID}}
	case c.Membership != nil:
		ids = []idField{{"membership.id", model.PrefixMembership, c.Membership.ID},
			{"membership.user_id", model.PrefixUser, c.Membership.UserID},
			{"membership.organization_id", model.PrefixOrganization, c.Membership.OrganizationID}}
	case c.Role != nil:
		ids = []idField{{"role.organization_id", model.PrefixOrganization, c.Role.OrganizationID}}
	case c.Resource != nil:
		ids = []idField{{"resource.id", model.PrefixResource, c.Resource.ID},
			{"resource.organization_id", model.PrefixOrganization, c.Resource.OrganizationID},
			{"resource.parent_id", model.PrefixResource, c.Resource.ParentID}}
	case c.Assignment != nil && c.Assignment.GroupID != "":
		// A group role assignment's id is WorkOS's gra_ or role_assignment_.
		prefix := model.PrefixGroupAssignment
		if strings.HasPrefix(c.Assignment.ID, model.PrefixAssignment) {
			prefix = model.PrefixAssignment
		}
		ids = []idField{{"assignment.id", prefix, c.Assignment.ID},
			{"assignment.group_id", model.PrefixGroup, c.Assignment.GroupID},
			{"assignment.resource_id", model.PrefixResource, c.Assignment.ResourceID}}
	case c.Assignment != nil:
		ids = []idField{{"assignment.id", model.PrefixAssignment, c.Assignment.ID},
			{"assignment.membership_id", model.PrefixMembership, c.Assignment.MembershipID},
			{"assignment.resource_id", model.PrefixResource, c.Assignment.ResourceID}}
	case c.Group != nil:
		ids = []idField{{"group.id", model.PrefixGroup, c.Group.ID},
			{"group.organization_id", model.PrefixOrganization, c.Group.OrganizationID}}
	case c.GroupMember != nil:
		ids = []idField{{"group_member.group_id", model.PrefixGroup, c.GroupMember.GroupID},
			{"group_member.membership_id", model.PrefixMembership, c.GroupMember.MembershipID}}
	}
	for _, f := range ids {
		if f.value == "" {
			continue
		}
		if err := model.CheckID(f.prefix, f.value); err != nil {
			return fmt.Errorf("%s %w", f.name, err)
		}
	}
	return nil
}

// StatusOf maps a ValidationError code to its HTTP status: the one table of
// write-path error statuses.
func StatusOf(code string) int {
	switch code {
	case CodeNotFound:
		return http.StatusNotFound
	case CodeHasDependents:
		return http.StatusConflict
	default:
		return http.StatusUnprocessableEntity
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
