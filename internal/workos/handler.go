package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-authz/trellis/internal/apikey"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/cursor"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/rawjson"
)

// Decider answers checks and discovery questions (implemented by
// *authz.Service, the service layer the native routes share). The handler
// tells it of every write it acknowledges (Acknowledged), so that every
// decision of this instance, on any route, reflects them.
type Decider interface {
	Acknowledged(ctx context.Context, rev int64)
	Check(ctx context.Context, sub authz.Subject, c authz.Check, cons authz.Consistency) (authz.Decision, authz.Answer, error)
	ListResources(ctx context.Context, sub authz.Subject, req authz.ListRequest, cons authz.Consistency) (authz.Page, authz.Answer, error)
	ListMemberships(ctx context.Context, req authz.MembersRequest, cons authz.Consistency) (authz.Page, authz.Answer, error)
	EffectivePermissions(ctx context.Context, sub authz.Subject, r authz.ResourceRef, cons authz.Consistency) (authz.Permissions, authz.Answer, error)
}

// DefaultMaxInFlight bounds the requests a Handler serves at once unless
// configured otherwise.
const DefaultMaxInFlight = 256

// retryOverloaded is the Retry-After of a 429.
const retryOverloaded = time.Second

// DefaultMemberRole is the slug of WorkOS's default role: a membership
// created without roles gets it when it exists and neither
// Config.DefaultRoleSlug nor the store's default role names another.
const DefaultMemberRole = "member"

// DefaultMaxBodyBytes bounds request bodies unless configured otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Pagination bounds (WorkOS's).
const (
	DefaultLimit = 10
	MaxLimit     = 100
)

// retryUnavailable is the Retry-After of a 503 for ErrUnavailable.
const retryUnavailable = time.Second

// Consistency headers.
const (
	// HeaderRevision carries the revision a write produced (responses) and
	// the least revision a read must reflect (requests).
	HeaderRevision = "X-Trellis-Revision"
	// HeaderConsistency set to "full" asks a read to reflect the database
	// head.
	HeaderConsistency = "X-Trellis-Consistency"
)

// PathPrefixes are the URL path prefixes the handler serves, for mounting
// it next to the native API on one mux.
var PathPrefixes = []string{"/organizations", "/organizations/", "/user_management/", "/authorization/"}

// Config configures a Handler. Zero fields get defaults.
type Config struct {
	Store   Store   // required
	Decider Decider // required
	// APIKeys are accepted as "Authorization: Bearer <key>"; several may be
	// valid at once (rotation). Every route requires one.
	APIKeys []string
	// DefaultRoleSlug, if not "", is the default role of every membership
	// (see Handler.defaultRole), overriding the store's default role and
	// DefaultMemberRole.
	DefaultRoleSlug string
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Replays keeps the responses of POSTs by Idempotency-Key (default:
	// NewMemoryReplays, in this process only).
	Replays Replays
	// MaxInFlight bounds the requests served at once (default
	// DefaultMaxInFlight); one more is answered 429 with Retry-After, which
	// the SDKs wait for and retry.
	MaxInFlight int
	// Logger receives errors that are not the client's fault (default
	// slog.Default()).
	Logger *slog.Logger
}

// Handler serves the WorkOS-compatible API. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	replays  Replays
	inFlight chan struct{} // a slot per request being served
	keys     apikey.Set
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("workos: a store is required")
	}
	if cfg.Decider == nil {
		return nil, errors.New("workos: a decider is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Replays == nil {
		cfg.Replays = NewMemoryReplays()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	h := &Handler{cfg: cfg, replays: cfg.Replays, inFlight: make(chan struct{}, cfg.MaxInFlight),
		log: cfg.Logger, mux: http.NewServeMux(), keys: apikey.New(cfg.APIKeys)}
	h.routes()
	return h, nil
}

// ServeHTTP checks the API key and routes the request. Beyond MaxInFlight
// requests at once it answers 429 rate_limit_exceeded with Retry-After.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.keys.Valid(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Code: "unauthorized", Message: "Unauthorized: send a valid API key as Authorization: Bearer <key>"})
		return
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		retryAfter(w, retryOverloaded)
		writeJSON(w, http.StatusTooManyRequests, errorBody{Code: "rate_limit_exceeded",
			Message: fmt.Sprintf("the server is serving %d requests already; retry after the Retry-After delay", h.cfg.MaxInFlight)})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// route is a handler that returns an error instead of answering one.
type route func(w http.ResponseWriter, r *http.Request) error

// handle registers fn for pattern. A path segment that is not text (see
// model.CheckText) is refused before fn runs. A POST that writes runs
// once per Idempotency-Key (see idempotent); a check writes nothing, so
// its retry is answered afresh.
func (h *Handler) handle(pattern string, fn route) {
	params := wildcards(pattern)
	serve := func(w http.ResponseWriter, r *http.Request) {
		err := pathText(r, params)
		if err == nil {
			err = fn(w, r)
		}
		if err != nil {
			h.fail(w, r, err)
		}
	}
	if !strings.HasPrefix(pattern, http.MethodPost+" ") || strings.HasSuffix(pattern, "/check") {
		h.mux.HandleFunc(pattern, serve)
		return
	}
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h.idempotent(w, r, serve); err != nil {
			h.fail(w, r, err)
		}
	})
}

// wildcards lists the names of the wildcards of a ServeMux pattern
// ("{id}", "{path...}").
func wildcards(pattern string) []string {
	var names []string
	for rest := pattern; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return names
		}
		names = append(names, strings.TrimSuffix(rest[i+1:i+j], "..."))
		rest = rest[i+j+1:]
	}
}

// pathText rejects a path segment (decoded: %00 is a NUL byte) that is
// not text, naming its wildcard.
func pathText(r *http.Request, params []string) error {
	for _, p := range params {
		if err := model.CheckText(r.PathValue(p)); err != nil {
			return badRequest(p, "the path segment %v", err)
		}
	}
	return nil
}

// wrote records a write's revision: the response header, and the
// Decider's high-water mark that later decisions wait for.
func (h *Handler) wrote(r *http.Request, w http.ResponseWriter, rev int64) {
	w.Header().Set(HeaderRevision, strconv.FormatInt(rev, 10))
	h.cfg.Decider.Acknowledged(r.Context(), rev)
}

// consistency reads the request's consistency headers for a decision (the
// Decider adds the writes this instance acknowledged).
func (h *Handler) consistency(r *http.Request) (authz.Consistency, error) {
	var cons authz.Consistency
	switch v := r.Header.Get(HeaderConsistency); v {
	case "":
	case "full":
		cons.FullyConsistent = true
	default:
		return cons, badRequest(HeaderConsistency, "must be \"full\" when given, not %q", v)
	}
	if v := r.Header.Get(HeaderRevision); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return cons, badRequest(HeaderRevision, "must be a non-negative integer, not %q", v)
		}
		cons.AtLeastRevision = n
	}
	if cons.FullyConsistent {
		// The head is at or past every revision; the service takes one
		// or the other.
		cons.AtLeastRevision = 0
	}
	return cons, nil
}

// requestError is a malformed request: answered 400.
type requestError struct {
	Field   string
	Message string
}

func (e *requestError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func badRequest(field, format string, args ...any) error {
	return &requestError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// errorBody is WorkOS's error shape. The Node SDK reads code and message
// (every status), errors (400, 422) and nothing else; a 400 needs both code
// and errors to surface as BadRequestException.
type errorBody struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Errors  []Problem `json:"errors,omitempty"`
}

// fail answers err. This is the one table from error kinds to statuses:
//
//	*requestError, *authz.InvalidError   400 invalid_request
//	ErrNotFound                          404 entity_not_found
//	ErrConflict, model CodeDuplicate     409 conflict
//	*ValidationError, *model.ValidationError
//	                                     422 invalid_request_parameters
//	*authz.StaleError                    503 revision_not_applied
//	ErrUnavailable                       503 unavailable, Retry-After
//	ErrReadOnly                          421 read_only
//	authz.ErrNotReady                    503 not_ready (Retry-After)
//	*authz.OrganizationUnavailableError  503 organization_unavailable (Retry-After)
//	*engine.ExtensionError               500 extension_error (a list; a
//	                                     check is denied instead)
//	authz.ErrUnavailable, canceled       503 unavailable
//	anything else                        500 server_error (details logged)
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		req       *requestError
		inv       *authz.InvalidError
		val       *ValidationError
		modelVal  *model.ValidationError
		stale     *authz.StaleError
		orgDown   *authz.OrganizationUnavailableError
		extension *engine.ExtensionError
	)
	switch {
	case errors.As(err, &req):
		writeJSON(w, http.StatusBadRequest, errorBody{Code: "invalid_request", Message: req.Error(),
			Errors: []Problem{{Field: req.Field, Code: "invalid", Message: req.Message}}})
	case errors.As(err, &inv):
		writeJSON(w, http.StatusBadRequest, errorBody{Code: "invalid_request", Message: inv.Error(),
			Errors: []Problem{{Field: inv.Field, Code: "invalid", Message: inv.Message}}})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Code: "entity_not_found", Message: clientMessage(err, ErrNotFound)})
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, errorBody{Code: "conflict", Message: clientMessage(err, ErrConflict)})
	case errors.As(err, &modelVal):
		probs := make([]Problem, len(modelVal.Problems))
		status := http.StatusUnprocessableEntity
		for i, p := range modelVal.Problems {
			probs[i] = Problem{Field: p.Field, Code: p.Code, Message: p.Message}
			if p.Code == model.CodeDuplicate {
				status = http.StatusConflict
			}
		}
		code := "invalid_request_parameters"
		if status == http.StatusConflict {
			code = "conflict"
		}
		writeJSON(w, status, errorBody{Code: code, Message: (&ValidationError{Problems: probs}).Error(), Errors: probs})
	case errors.As(err, &val):
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Code: "invalid_request_parameters", Message: val.Error(), Errors: val.Problems})
	case errors.As(err, &stale):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "revision_not_applied", Message: stale.Error() + "; retry later"})
	case errors.Is(err, ErrReadOnly):
		writeJSON(w, http.StatusMisdirectedRequest, errorBody{Code: "read_only",
			Message: "this Trellis node follows a read-only PostgreSQL standby and takes no writes: send writes to a node on the primary; nothing was written"})
	case errors.Is(err, ErrUnavailable):
		h.log.WarnContext(r.Context(), "store unavailable", "err", err, "method", r.Method, "path", r.URL.Path)
		retryAfter(w, retryUnavailable)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "unavailable", Message: "the database is unavailable; retry later"})
	case errors.Is(err, authz.ErrNotReady):
		retryAfter(w, authz.RetryNotReady)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "not_ready", Message: "no data is loaded yet: this is no decision; retry later"})
	case errors.As(err, &orgDown):
		retryAfter(w, authz.RetryOrganizationUnavailable)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "organization_unavailable", Message: orgDown.Error() + "; retry later"})
	case errors.Is(err, authz.ErrUnavailable):
		h.log.ErrorContext(r.Context(), "data source unavailable", "err", err, "path", r.URL.Path)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "unavailable", Message: "the data source is unavailable; retry later"})
	case errors.As(err, &extension):
		h.log.WarnContext(r.Context(), "an extension failed", "err", err, "method", r.Method, "path", r.URL.Path)
		writeJSON(w, http.StatusInternalServerError, errorBody{Code: "extension_error", Message: extension.Error() + "; treat it as a deny"})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "unavailable", Message: "the request was canceled"})
	default:
		h.log.ErrorContext(r.Context(), "workos request failed", "err", err, "method", r.Method, "path", r.URL.Path)
		writeJSON(w, http.StatusInternalServerError, errorBody{Code: "server_error", Message: "the request could not be completed"})
	}
}

// retryAfter tells the client when to ask again, in whole seconds.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(d/time.Second)))
}

// clientMessage strips the sentinel's own text ("not found: …") from a
// Store error's message.
func clientMessage(err, sentinel error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok {
		return rest
	}
	return msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// body decodes the JSON body of a write route into dst (see decode), then
// rejects query parameters: a bad body is reported before a bad query.
func (h *Handler) body(w http.ResponseWriter, r *http.Request, dst any) error {
	if _, err := h.decode(w, r, dst); err != nil {
		return err
	}
	return noQuery(r)
}

// patchBody is body for a PATCH route: a body that names no field (empty,
// or {}) changes nothing and is refused, as a request that cannot mean
// what its sender intended.
func (h *Handler) patchBody(w http.ResponseWriter, r *http.Request, dst any) error {
	raw, err := h.decode(w, r, dst)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || len(fields) == 0 {
		return badRequest("", "the body names no field to change: send at least one")
	}
	return noQuery(r)
}

// written finishes a write route that answers with the written object.
// Called with a Store write's results, it returns the Store's error, or
// records the revision in X-Trellis-Revision and writes out(v) with status.
func written[T, J any](h *Handler, r *http.Request, w http.ResponseWriter, status int, out func(T) J) func(v T, rev int64, err error) error {
	return func(v T, rev int64, err error) error {
		if err != nil {
			return err
		}
		h.wrote(r, w, rev)
		writeJSON(w, status, out(v))
		return nil
	}
}

// deleted finishes a write route that answers 204. Called with a Store
// write's results, it returns the Store's error, or records the revision
// in X-Trellis-Revision and writes an empty 204.
func (h *Handler) deleted(r *http.Request, w http.ResponseWriter) func(rev int64, err error) error {
	return func(rev int64, err error) error {
		if err != nil {
			return err
		}
		h.wrote(r, w, rev)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// found finishes a read route. Called with a Store read's results, it
// returns the Store's error, or writes out(v) with 200.
func found[T, J any](w http.ResponseWriter, out func(T) J) func(v T, err error) error {
	return func(v T, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out(v))
		return nil
	}
}

// decode reads exactly one JSON object into dst and returns it as read.
// Unknown fields are rejected: a field Trellis does not implement must not
// be silently dropped; so is a string that is not text (rawjson.CheckText),
// naming its field. An empty body decodes as {} (the SDK sends {} or
// nothing for bodiless PUTs).
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, badRequest("", "the request body is over %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, badRequest("", "read the request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := rawjson.Decode(body, dst); err != nil {
		var (
			bad       *rawjson.TextError
			syntax    *json.SyntaxError
			wrongType *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &bad):
			return nil, badRequest(bad.Path, "%s", bad.Reason())
		case errors.Is(err, rawjson.ErrTrailing):
			return nil, badRequest("", "%v", err)
		case errors.As(err, &syntax):
			return nil, badRequest("", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
		case errors.As(err, &wrongType):
			return nil, badRequest(wrongType.Field, "must be %s, not %s", wrongType.Type, wrongType.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return nil, badRequest(f, "is not a field Trellis accepts here")
		}
		return nil, badRequest("", "malformed JSON: %v", err)
	}
	return body, nil
}

// query reads the allowed query parameters of r; any other is a 400, so a
// filter Trellis does not implement is never silently ignored.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, vs := range r.URL.Query() {
		if err := model.CheckText(k); err != nil {
			return nil, badRequest("", "a query parameter name %v", err)
		}
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return nil, badRequest(k, "is not a query parameter of %s", r.URL.Path)
		}
		if len(vs) > 1 {
			return nil, badRequest(k, "is given more than once")
		}
		if err := model.CheckText(vs[0]); err != nil {
			return nil, badRequest(k, "%v", err)
		}
		out[k] = vs[0]
	}
	return out, nil
}

// paginationParams are the query parameters of every paginated list.
var paginationParams = []string{"limit", "before", "after", "order"}

// page is a parsed pagination request.
type page struct {
	limit int
	// before and after are the positions (keys) the cursors hold.
	before, after string
	desc          bool
	// cursors is the query of the list, which its cursors are bound to.
	cursors cursor.Query
}

// parsePage reads the pagination parameters of q for a list whose cursors
// belong to cq.
func parsePage(q map[string]string, cq cursor.Query) (page, error) {
	p := page{limit: DefaultLimit, desc: true, cursors: cq}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return p, badRequest("limit", "must be an integer from 1 to %d, not %q", MaxLimit, v)
		}
		p.limit = n
	}
	switch q["order"] {
	case "", "desc":
	case "asc", "normal":
		p.desc = false
	default:
		return p, badRequest("order", "must be \"asc\" or \"desc\", not %q", q["order"])
	}
	if q["before"] != "" && q["after"] != "" {
		return p, badRequest("before", "give before or after, not both")
	}
	var err error
	if p.before, err = cq.Decode(q["before"]); err != nil {
		return p, badRequest("before", "%v", err)
	}
	if p.after, err = cq.Decode(q["after"]); err != nil {
		return p, badRequest("after", "%v", err)
	}
	return p, nil
}

// cursorQuery is the query the cursors of r's list are bound to: its
// route, the values of the route's path wildcards and of the filter
// parameters params, in that order (not limit, order or the cursors, which
// may change from page to page).
func cursorQuery(r *http.Request, q map[string]string, params []string) cursor.Query {
	var parts []string
	for _, w := range wildcards(r.Pattern) {
		parts = append(parts, r.PathValue(w))
	}
	for _, p := range params {
		parts = append(parts, q[p])
	}
	return cursor.For(r.Pattern, parts...)
}

// listMetadata is the cursor pair of a WorkOS list envelope.
type listMetadata struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// list is the WorkOS list envelope.
type list[T any] struct {
	Object       string       `json:"object"`
	Data         []T          `json:"data"`
	ListMetadata listMetadata `json:"list_metadata"`
}

func newList[T any](data []T, md listMetadata) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", Data: data, ListMetadata: md}
}

// pageQuery reads the query of a list route: params and the pagination
// parameters (any other is a 400, see query), and the page they ask for.
func pageQuery(r *http.Request, params ...string) (map[string]string, page, error) {
	q, err := query(r, slices.Concat(params, paginationParams)...)
	if err != nil {
		return nil, page{}, err
	}
	p, err := parsePage(q, cursorQuery(r, q, params))
	if err != nil {
		return nil, page{}, err
	}
	return q, p, nil
}

// writePage answers a list route with page p fetched through fetch (see
// paginate), each item written as out of it.
func writePage[T, J any](w http.ResponseWriter, p page, key func(T) string, out func(T) J, fetch func(ListOptions) ([]T, error)) error {
	items, md, err := paginate(p, key, fetch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(mapSlice(items, out), md))
	return nil
}

// paginate fetches one page through fetch (a Store list call) and returns
// the page in the requested order with its cursors. With after (or no
// cursor) it scans forward from the cursor; with before it scans backward
// from it and reverses. One extra item is fetched to know whether more
// follow.
func paginate[T any](p page, key func(T) string, fetch func(ListOptions) ([]T, error)) ([]T, listMetadata, error) {
	opts := ListOptions{After: p.after, Descending: p.desc, Limit: p.limit + 1}
	backward := p.before != ""
	if backward {
		opts = ListOptions{After: p.before, Descending: !p.desc, Limit: p.limit + 1}
	}
	items, err := fetch(opts)
	if err != nil {
		return nil, listMetadata{}, err
	}
	more := len(items) > p.limit
	if more {
		items = items[:p.limit]
	}
	var md listMetadata
	if len(items) == 0 {
		return items, md, nil
	}
	if backward {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
		first, last := p.cursors.Encode(key(items[0])), p.cursors.Encode(key(items[len(items)-1]))
		if more {
			md.Before = &first
		}
		md.After = &last
		return items, md, nil
	}
	first, last := p.cursors.Encode(key(items[0])), p.cursors.Encode(key(items[len(items)-1]))
	if more {
		md.After = &last
	}
	if p.after != "" {
		md.Before = &first
	}
	return items, md, nil
}

// sliceList pages through an in-memory list already in ascending key order
// (effective permissions) with the same semantics as paginate.
func sliceList[T any](all []T, p page, key func(T) string) ([]T, listMetadata, error) {
	return paginate(p, key, func(o ListOptions) ([]T, error) {
		var out []T
		if o.Descending {
			for i := len(all) - 1; i >= 0 && len(out) < o.Limit; i-- {
				if o.After == "" || key(all[i]) < o.After {
					out = append(out, all[i])
				}
			}
			return out, nil
		}
		for i := 0; i < len(all) && len(out) < o.Limit; i++ {
			if o.After == "" || key(all[i]) > o.After {
				out = append(out, all[i])
			}
		}
		return out, nil
	})
}
