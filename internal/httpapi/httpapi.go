// Package httpapi serves Trellis's native decision API (/v1/…), the OPA Data
// API and the health endpoints over HTTP. It decodes and validates requests,
// checks credentials and encodes answers; decisions come from the service
// layer (package authz), never from here.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/apikey"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/cursor"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

// DefaultMaxBodyBytes bounds request bodies unless configured otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Config configures the handler. Zero fields get defaults.
type Config struct {
	Service *authz.Service // required
	// APIKeys are accepted as "Authorization: Bearer <key>". Several may be
	// valid at once (rotation). A request naming a membership subject, the
	// membership listing and the Data API require one.
	APIKeys []string
	// RequireAPIKey makes every decision request require an API key, token
	// subjects included.
	RequireAPIKey bool
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Ready reports readiness for /ready: true only after the first full
	// data load. Details are added to the response body. Nil means ready.
	Ready func() (bool, map[string]any)
	// Logger receives errors that are not the client's fault (default
	// slog.Default()).
	Logger *slog.Logger
	// DecisionLog, when set, receives one entry per decision.
	DecisionLog *slog.Logger
	// Metrics, when set, receives decision counts and latencies.
	Metrics Metrics
}

// Metrics receives decision metrics (implemented by *metrics.Metrics). Its
// methods must be safe for concurrent use and must not block.
type Metrics interface {
	// ObserveDecision counts one decision of entrypoint; a non-nil err means
	// the request got no decision, and allowed and decidedBy are then
	// meaningless. A batch reports each of its decisions.
	ObserveDecision(entrypoint string, allowed bool, decidedBy string, err error)
	// ObserveDuration records how long one request to entrypoint took, from
	// the decoded request to the answer (a batch as a whole).
	ObserveDuration(entrypoint string, d time.Duration)
}

// Entrypoint labels passed to Metrics.
const (
	EntrypointCheck                = "check"
	EntrypointBatch                = "batch"
	EntrypointListResources        = "list_resources"
	EntrypointListMemberships      = "list_memberships"
	EntrypointEffectivePermissions = "effective_permissions"
	EntrypointData                 = "data"
)

type server struct {
	cfg  Config
	keys apikey.Set
	log  *slog.Logger
}

// New returns the HTTP handler. It is safe for concurrent use.
func New(cfg Config) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("httpapi: a service is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{cfg: cfg, log: cfg.Logger, keys: apikey.New(cfg.APIKeys)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/check", s.check)
	mux.HandleFunc("POST /v1/check/batch", s.batch)
	mux.HandleFunc("POST /v1/list-resources", s.listResources)
	mux.HandleFunc("POST /v1/list-memberships", s.listMemberships)
	mux.HandleFunc("POST /v1/effective-permissions", s.effectivePermissions)
	mux.HandleFunc("POST /v1/data/{path...}", s.data)
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return mux, nil
}

// allowedMethods lists the methods a route other than the catch-all serves
// r's path with. The catch-all "/" matches every method, so ServeMux never
// answers 405 by itself.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// subjectFields are the request fields that say who is asking.
type subjectFields struct {
	Token   string        `json:"token,omitempty"`
	Subject *subjectField `json:"subject,omitempty"`
	// Context is the request's context object (input.context of the
	// extensions).
	Context json.RawMessage `json:"context,omitempty"`
}

type subjectField struct {
	MembershipID string `json:"organization_membership_id"`
}

type checkRequest struct {
	subjectFields
	Permission  string            `json:"permission"`
	Resource    authz.ResourceRef `json:"resource"`
	Explain     bool              `json:"explain"`
	Consistency authz.Consistency `json:"consistency"`
}

type checkResponse struct {
	authz.Decision
	authz.Answer
}

func (s *server) check(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if !s.decode(w, r, &req) {
		return
	}
	sub, ok := s.subject(w, r, req.subjectFields)
	if !ok {
		return
	}
	start := time.Now()
	d, ans, err := s.cfg.Service.Check(r.Context(), sub, authz.Check{Permission: req.Permission, Resource: req.Resource, Explain: req.Explain}, req.Consistency)
	s.observe(EntrypointCheck, start, err, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logDecision(r.Context(), ans, req.subjectFields, req.Permission, req.Resource, d)
	s.logExtensionFailure(r, d)
	writeJSON(w, http.StatusOK, checkResponse{d, ans})
}

type batchRequest struct {
	subjectFields
	Checks      []authz.Check     `json:"checks"`
	Consistency authz.Consistency `json:"consistency"`
}

type batchResponse struct {
	Results []authz.Decision `json:"results"`
	authz.Answer
}

func (s *server) batch(w http.ResponseWriter, r *http.Request) {
	var req batchRequest
	if !s.decode(w, r, &req) {
		return
	}
	sub, ok := s.subject(w, r, req.subjectFields)
	if !ok {
		return
	}
	start := time.Now()
	ds, ans, err := s.cfg.Service.CheckBatch(r.Context(), sub, req.Checks, req.Consistency)
	s.observe(EntrypointBatch, start, err, ds...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i, c := range req.Checks {
		s.logDecision(r.Context(), ans, req.subjectFields, c.Permission, c.Resource, ds[i])
	}
	s.logExtensionFailure(r, ds...)
	writeJSON(w, http.StatusOK, batchResponse{ds, ans})
}

type listResourcesRequest struct {
	subjectFields
	Permission     string             `json:"permission"`
	ResourceType   string             `json:"resource_type"`
	Parent         *authz.ResourceRef `json:"parent"`
	OrganizationID string             `json:"organization_id"`
	pageFields
	Consistency authz.Consistency `json:"consistency"`
}

// pageFields are the paging fields of a list request.
type pageFields struct {
	// Cursor (a next_cursor) pages forward, Before (a prev_cursor) back.
	Cursor string `json:"cursor"`
	Before string `json:"before"`
	Order  string `json:"order"`
	// Limit is the page's size; left out, the default. (0 is refused: a
	// page of nothing is no page.)
	Limit *int `json:"limit"`
}

// listPage is where a list request's page starts, and its size.
type listPage struct {
	after string // the position the page starts after ("": the start)
	desc  bool   // in the order asked for, or the reverse when back
	back  bool   // the page before a position (before): reversed to answer
	limit int    // 0: the default
}

// page reads the paging fields of a list of q, or answers 400.
func (f *pageFields) page(w http.ResponseWriter, q cursor.Query) (listPage, bool) {
	if f.Cursor != "" && f.Before != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "cursor and before: give one, cursor to page forward or before to page back")
		return listPage{}, false
	}
	if f.Limit != nil && *f.Limit == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be between 1 and %d, or left out for %d", authz.MaxPageSize, authz.DefaultPageSize))
		return listPage{}, false
	}
	if f.Order != "" && f.Order != "asc" && f.Order != "desc" {
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("order %q: must be asc or desc", f.Order))
		return listPage{}, false
	}
	after, ok := decodeCursor(w, q, "cursor", f.Cursor)
	if !ok {
		return listPage{}, false
	}
	before, ok := decodeCursor(w, q, "before", f.Before)
	if !ok {
		return listPage{}, false
	}
	// A page before a position is the page after it in the other order,
	// reversed.
	lp := listPage{after: after, desc: f.Order == "desc"}
	if before != "" {
		lp = listPage{after: before, desc: !lp.desc, back: true}
	}
	if f.Limit != nil {
		lp.limit = *f.Limit
	}
	return lp, true
}

// badList answers a list whose request names what does not exist, as the
// policy's reason says: a 400 for a permission or a resource type, a 404
// for the resource (field) or the organization, the policy's message
// prefixed with the field. It reports whether it answered.
func badList(w http.ResponseWriter, reason map[string]any, field string) bool {
	code, _ := reason["code"].(string)
	msg, _ := reason["message"].(string)
	switch code {
	case "unknown_permission":
		writeError(w, http.StatusBadRequest, "invalid_request", "permission: "+msg)
	case "unknown_resource_type":
		writeError(w, http.StatusBadRequest, "invalid_request", "resource_type: "+msg)
	case "unknown_resource":
		writeError(w, http.StatusNotFound, "not_found", field+": "+msg)
	case "unknown_organization":
		writeError(w, http.StatusNotFound, "not_found", "organization_id: "+msg)
	default:
		return false
	}
	return true
}

// answer puts page p of list q, asked for as lp, in resp: its ids in the
// order asked for, and the cursors to the next and previous pages.
func (lp listPage) answer(q cursor.Query, p authz.Page, resp *listResponse) []string {
	n := len(p.IDs)
	if n == 0 {
		return p.IDs
	}
	first, last := q.Encode(p.Positions[0]), q.Encode(p.Positions[n-1])
	if lp.back {
		slices.Reverse(p.IDs)
		resp.NextCursor = first
		if p.HasMore {
			resp.PrevCursor = last
		}
		return p.IDs
	}
	if p.HasMore {
		resp.NextCursor = last
	}
	if lp.after != "" {
		resp.PrevCursor = first
	}
	return p.IDs
}

type listResponse struct {
	ResourceIDs   []string       `json:"resource_ids,omitempty"`
	MembershipIDs []string       `json:"membership_ids,omitempty"`
	NextCursor    string         `json:"next_cursor,omitempty"`
	PrevCursor    string         `json:"prev_cursor,omitempty"`
	Reason        map[string]any `json:"reason,omitempty"`
	authz.Answer
}

func (s *server) listResources(w http.ResponseWriter, r *http.Request) {
	var req listResourcesRequest
	if !s.decode(w, r, &req) {
		return
	}
	sub, ok := s.subject(w, r, req.subjectFields)
	if !ok {
		return
	}
	q := cursor.For(EntrypointListResources, append([]string{req.Permission, req.ResourceType, req.OrganizationID}, refParts(req.Parent)...)...)
	lp, ok := req.page(w, q)
	if !ok {
		return
	}
	start := time.Now()
	p, ans, err := s.cfg.Service.ListResources(r.Context(), sub, authz.ListRequest{
		Permission: req.Permission, ResourceType: req.ResourceType, Parent: req.Parent,
		OrganizationID: req.OrganizationID, After: lp.after, Descending: lp.desc, Limit: lp.limit,
	}, req.Consistency)
	s.observeDuration(EntrypointListResources, start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if badList(w, p.Reason, "parent") {
		return
	}
	resp := listResponse{Reason: p.Reason, Answer: ans}
	resp.ResourceIDs = nonNil(lp.answer(q, p, &resp))
	writeJSON(w, http.StatusOK, resp)
}

type listMembershipsRequest struct {
	Context    json.RawMessage   `json:"context,omitempty"`
	Permission string            `json:"permission"`
	Resource   authz.ResourceRef `json:"resource"`
	Direct     bool              `json:"direct"`
	pageFields
	Consistency authz.Consistency `json:"consistency"`
}

func (s *server) listMemberships(w http.ResponseWriter, r *http.Request) {
	var req listMembershipsRequest
	if !s.decode(w, r, &req) || !s.requireKey(w, r) {
		return
	}
	q := cursor.For(EntrypointListMemberships, append([]string{req.Permission, strconv.FormatBool(req.Direct)}, refParts(&req.Resource)...)...)
	lp, ok := req.page(w, q)
	if !ok {
		return
	}
	start := time.Now()
	p, ans, err := s.cfg.Service.ListMemberships(r.Context(), authz.MembersRequest{
		Permission: req.Permission, Resource: req.Resource, Direct: req.Direct, After: lp.after, Descending: lp.desc,
		Limit: lp.limit, Context: string(req.Context),
	}, req.Consistency)
	s.observeDuration(EntrypointListMemberships, start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if badList(w, p.Reason, "resource") {
		return
	}
	resp := listResponse{Reason: p.Reason, Answer: ans}
	resp.MembershipIDs = nonNil(lp.answer(q, p, &resp))
	writeJSON(w, http.StatusOK, resp)
}

type effectiveRequest struct {
	subjectFields
	Resource    authz.ResourceRef `json:"resource"`
	Consistency authz.Consistency `json:"consistency"`
}

type effectiveResponse struct {
	authz.Permissions
	authz.Answer
}

func (s *server) effectivePermissions(w http.ResponseWriter, r *http.Request) {
	var req effectiveRequest
	if !s.decode(w, r, &req) {
		return
	}
	sub, ok := s.subject(w, r, req.subjectFields)
	if !ok {
		return
	}
	start := time.Now()
	p, ans, err := s.cfg.Service.EffectivePermissions(r.Context(), sub, req.Resource, req.Consistency)
	s.observeDuration(EntrypointEffectivePermissions, start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Permissions == nil {
		p.Permissions = []string{}
	}
	writeJSON(w, http.StatusOK, effectiveResponse{p, ans})
}

// data serves the OPA Data API: {"input": …} → {"result": …}, with no
// "result" key when the document is undefined.
func (s *server) data(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Input json.RawMessage `json:"input"`
	}
	if !s.decode(w, r, &req) || !s.requireKey(w, r) {
		return
	}
	if err := model.CheckText(r.PathValue("path")); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the document path "+err.Error())
		return
	}
	var input ast.Value
	if len(req.Input) > 0 {
		v, err := ast.ValueFromReader(strings.NewReader(string(req.Input)))
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "input: "+err.Error())
			return
		}
		input = v
	}
	start := time.Now()
	result, ok, ans, err := s.cfg.Service.Data(r.Context(), r.PathValue("path"), input)
	if d, isDecision := asDecision(result); isDecision || err != nil {
		s.observe(EntrypointData, start, err, d)
	} else {
		s.observeDuration(EntrypointData, start)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := map[string]any{"decision_id": ans.DecisionID, "revision": ans.Revision}
	if ok {
		body["result"] = result
	}
	writeJSON(w, http.StatusOK, body)
}

// asDecision reads a Data API result as a decision when it has the shape of
// one (an object with a boolean "allowed"), for the metrics only.
func asDecision(result any) (authz.Decision, bool) {
	obj, ok := result.(map[string]any)
	if !ok {
		return authz.Decision{}, false
	}
	allowed, ok := obj["allowed"].(bool)
	by, _ := obj["decided_by"].(string)
	return authz.Decision{Allowed: allowed, DecidedBy: by}, ok
}

// observe reports a request's latency and its decisions (one error when err
// is set) to the metrics, if configured.
func (s *server) observe(ep string, start time.Time, err error, ds ...authz.Decision) {
	if s.cfg.Metrics == nil {
		return
	}
	s.cfg.Metrics.ObserveDuration(ep, time.Since(start))
	if err != nil {
		s.cfg.Metrics.ObserveDecision(ep, false, "", err)
		return
	}
	for _, d := range ds {
		s.cfg.Metrics.ObserveDecision(ep, d.Allowed, d.DecidedBy, nil)
	}
}

// observeDuration reports the latency of a request that answers no
// allow/deny decision (lists, effective permissions, other documents).
func (s *server) observeDuration(ep string, start time.Time) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ObserveDuration(ep, time.Since(start))
	}
}

func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *server) ready(w http.ResponseWriter, _ *http.Request) {
	ok, details := true, map[string]any{}
	if s.cfg.Ready != nil {
		ok, details = s.cfg.Ready()
	}
	body := map[string]any{"ready": ok}
	for k, v := range details {
		body[k] = v
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// subject enforces the credential rule — a membership subject (or, with
// RequireAPIKey, any request) needs a valid API key — and returns who asks.
func (s *server) subject(w http.ResponseWriter, r *http.Request, f subjectFields) (authz.Subject, bool) {
	if (f.Subject != nil || s.cfg.RequireAPIKey || f.Token == "") && !s.requireKey(w, r) {
		return authz.Subject{}, false
	}
	sub := authz.Subject{Token: f.Token, Context: string(f.Context)}
	if f.Subject != nil {
		if f.Subject.MembershipID == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "subject.organization_membership_id is required")
			return authz.Subject{}, false
		}
		sub.MembershipID = f.Subject.MembershipID
	}
	return sub, true
}

func (s *server) requireKey(w http.ResponseWriter, r *http.Request) bool {
	if s.keys.Valid(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "this request needs a valid API key: Authorization: Bearer <key>")
	return false
}

// logExtensionFailure logs, as a list's extension_error is logged, the
// first of ds that an extension's failure denied (a batch is one
// evaluation: its checks fail together).
func (s *server) logExtensionFailure(r *http.Request, ds ...authz.Decision) {
	for _, d := range ds {
		if code, _ := d.Reason["code"].(string); d.DecidedBy == "extension" && (code == "extension_error" || code == "extension_timeout") {
			s.log.WarnContext(r.Context(), "an extension failed; denied", "code", code, "rule", d.Reason["rule"],
				"location", d.Reason["location"], "err", d.Reason["message"], "path", r.URL.Path)
			return
		}
	}
}

func (s *server) logDecision(ctx context.Context, ans authz.Answer, f subjectFields, perm string, res authz.ResourceRef, d authz.Decision) {
	if s.cfg.DecisionLog == nil {
		return
	}
	subject := "token"
	if f.Subject != nil {
		subject = f.Subject.MembershipID
	}
	code, _ := d.Reason["code"].(string)
	s.cfg.DecisionLog.LogAttrs(ctx, slog.LevelInfo, "decision",
		slog.String("decision_id", ans.DecisionID),
		slog.String("subject", subject),
		slog.String("permission", perm),
		slog.Any("resource", res),
		slog.Bool("allowed", d.Allowed),
		slog.String("decided_by", d.DecidedBy),
		slog.String("reason", code),
		slog.Int64("revision", ans.Revision),
	)
}

// decodeCursor returns the position a request's cursor holds in the list
// of q ("" for the first page), or answers 400 when it is not one of q's.
func decodeCursor(w http.ResponseWriter, q cursor.Query, field, c string) (string, bool) {
	after, err := q.Decode(c)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", field+" "+err.Error())
		return "", false
	}
	return after, true
}

// refParts are the filters a resource reference adds to a list's cursor
// query; a nil ref (no parent) is told from an empty one.
func refParts(ref *authz.ResourceRef) []string {
	if ref == nil {
		return []string{"none"}
	}
	return []string{"ref", ref.ID, ref.Type, ref.ExternalID, ref.OrganizationID}
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// decode reads exactly one JSON object with known fields into dst, or
// answers the client with what is wrong.
func (s *server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err == nil {
		err = rawjson.Decode(body, dst)
	}
	if err == nil {
		return true
	}
	var bad *rawjson.TextError
	if errors.As(err, &bad) {
		// encoding/json would replace (or decode to NUL) what the raw
		// bytes show, or fail on a raw NUL without naming the field: the
		// request is refused, never answered on a guess.
		writeError(w, http.StatusBadRequest, "invalid_request", bad.Error())
		return false
	}
	status, code, msg := http.StatusBadRequest, "invalid_json", err.Error()
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		status, code, msg = http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the request body is over %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		msg = "the request body is empty: send a JSON object"
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &wrongType):
		// The path names an embedded struct by its Go name; clients know
		// only the JSON names and kinds.
		code, msg = "invalid_request", fmt.Sprintf("field %s must be %s, not %s",
			strings.TrimPrefix(wrongType.Field, "subjectFields."), jsonKind(wrongType.Type), wrongType.Value)
		if wrongType.Field == "" {
			msg = "the request body must be a JSON object, not " + wrongType.Value
		}
	case strings.HasPrefix(msg, "json: unknown field "):
		code, msg = "invalid_request", "unknown field "+strings.TrimPrefix(msg, "json: unknown field ")
	}
	writeError(w, status, code, msg)
	return false
}

// jsonKind names the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.Kind().String()
}

// fail maps a service error to its status in one place; internals go to the
// log, never to the client.
//
//	*authz.InvalidError                     400 invalid_request
//	*authz.StaleError                       503 revision_not_applied
//	authz.ErrNotReady                       503 not_ready (Retry-After)
//	*authz.OrganizationUnavailableError     503 organization_unavailable (Retry-After)
//	authz.ErrUnavailable                    503 unavailable
//	*engine.ExtensionError                  500 extension_error (a list or a
//	                                        lookup; a check is denied instead)
//	canceled                                503 canceled
//	anything else                           500 internal_error (details logged)
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		bad         *authz.InvalidError
		stale       *authz.StaleError
		unavailable *authz.OrganizationUnavailableError
		extension   *engine.ExtensionError
	)
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "invalid_request", bad.Error())
	case errors.As(err, &stale):
		writeError(w, http.StatusServiceUnavailable, "revision_not_applied", stale.Error()+"; retry later")
	case errors.Is(err, authz.ErrNotReady):
		retryAfter(w, authz.RetryNotReady)
		writeError(w, http.StatusServiceUnavailable, "not_ready", "no data is loaded yet: this is no decision; retry later")
	case errors.As(err, &unavailable):
		retryAfter(w, authz.RetryOrganizationUnavailable)
		writeError(w, http.StatusServiceUnavailable, "organization_unavailable", unavailable.Error()+"; retry later")
	case errors.Is(err, authz.ErrUnavailable):
		s.log.ErrorContext(r.Context(), "data source unavailable", "err", err, "path", r.URL.Path)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the data source is unavailable; retry later")
	case errors.As(err, &extension):
		s.log.WarnContext(r.Context(), "an extension failed", "err", err, "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, "extension_error", extension.Error()+"; treat it as a deny")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "canceled", "the request was canceled before a decision")
	default:
		s.log.ErrorContext(r.Context(), "decision failed", "err", err, "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, "internal_error", "the decision could not be evaluated; treat it as a deny")
	}
}

// retryAfter tells the client when to ask again, in whole seconds.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(d/time.Second)))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
