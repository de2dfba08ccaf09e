package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trellis-authz/trellis/internal/rawjson"
)

// HandlerConfig configures the HTTP handler. Log and Authorize are
// required.
type HandlerConfig struct {
	Log *Log
	// Authorize reports whether a request carries a valid API key. Every
	// route needs one: events describe every organization's data.
	Authorize func(*http.Request) bool
	// Waker wakes watches when the log grows (default: they poll once a
	// second).
	Waker *Waker
	// Watch tunes GET /v1/watch.
	Watch WatchConfig
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// Logger receives internal errors (default: discarded).
	Logger *slog.Logger
}

// Paths are the routes of the handler, for mounting it on a mux.
var Paths = []string{"/events", "/webhook_endpoints", "/webhook_endpoints/", WatchPath}

// WatchPath is the route of the native watch.
const WatchPath = "/v1/watch"

type handler struct {
	cfg HandlerConfig
	mux *http.ServeMux
}

// NewHandler returns the handler of the change stream's routes:
//
//	GET /events                          the WorkOS Events API
//	GET, POST /webhook_endpoints         WorkOS's webhook endpoint API
//	GET, PATCH, DELETE /webhook_endpoints/{id}
//	GET /v1/watch                        Server-Sent Events (see WatchConfig)
//
// Errors are {"code", "message", "errors": [{"field", "code", "message"}]}
// (WorkOS's shape; errors on 400 and 422): 400 invalid_request for a bad
// query parameter or body, naming it; 401 unauthorized; 404
// entity_not_found; 422 invalid_request_parameters for an endpoint field
// that cannot be accepted (a non-HTTP(S) URL, an unknown event type); 500
// server_error (details logged).
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Log == nil || cfg.Authorize == nil {
		return nil, errors.New("events: the handler needs a Log and an Authorize func")
	}
	if cfg.Waker == nil {
		cfg.Waker = &Waker{}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Watch = cfg.Watch.withDefaults()
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /events", h.listEvents)
	h.mux.HandleFunc("GET /webhook_endpoints", h.listEndpoints)
	h.mux.HandleFunc("POST /webhook_endpoints", h.createEndpoint)
	h.mux.HandleFunc("GET /webhook_endpoints/{id}", h.getEndpoint)
	h.mux.HandleFunc("PATCH /webhook_endpoints/{id}", h.updateEndpoint)
	h.mux.HandleFunc("DELETE /webhook_endpoints/{id}", h.deleteEndpoint)
	h.mux.HandleFunc("GET "+WatchPath, h.watch)
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.Authorize(r) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)", nil)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// fieldError is one entry of an error body's errors.
type fieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorBody struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Errors  []fieldError `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string, fields []fieldError) {
	writeJSON(w, status, errorBody{Code: code, Message: msg, Errors: fields})
}

// badRequest answers 400 invalid_request naming the field.
func badRequest(w http.ResponseWriter, field, msg string) {
	writeError(w, http.StatusBadRequest, "invalid_request", field+": "+msg,
		[]fieldError{{Field: field, Code: "invalid", Message: msg}})
}

// fail answers err: the one table of error kinds to statuses.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		writeError(w, http.StatusUnprocessableEntity, "invalid_request_parameters", inv.Error(),
			[]fieldError{{Field: inv.Field, Code: "invalid", Message: inv.Message}})
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "entity_not_found", "no webhook endpoint "+strconv.Quote(r.PathValue("id")), nil)
	default:
		h.cfg.Logger.Error("events: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "internal error", nil)
	}
}

// params reads a query string strictly: every parameter known, at most
// once unless repeatable, text only.
type params struct {
	v   url.Values
	err func(field, msg string)
	bad bool
}

func newParams(w http.ResponseWriter, r *http.Request, known ...string) (*params, bool) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		badRequest(w, "query", "is not a valid query string: "+err.Error())
		return nil, false
	}
	for k, vals := range v {
		if !contains(known, k) {
			badRequest(w, k, "is not a parameter of this route (known: "+strings.Join(known, ", ")+")")
			return nil, false
		}
		for _, s := range vals {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				badRequest(w, k, "must be UTF-8 text without NUL bytes")
				return nil, false
			}
		}
	}
	p := &params{v: v}
	p.err = func(field, msg string) {
		if !p.bad {
			p.bad = true
			badRequest(w, field, msg)
		}
	}
	return p, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// one returns the single value of k ("" when absent).
func (p *params) one(k string) string {
	vals := p.v[k]
	if len(vals) > 1 {
		p.err(k, "is given more than once")
	}
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

// list returns the values of k and k[], each split at commas (the WorkOS
// SDK sends arrays comma-separated).
func (p *params) list(k string) []string {
	var out []string
	for _, v := range append(p.v[k], p.v[k+"[]"]...) {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (p *params) time(k string) time.Time {
	s := p.one(k)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.err(k, "must be an ISO 8601 timestamp such as 2026-01-02T03:04:05.000Z")
	}
	return t
}

func (p *params) limit(def, most int) int {
	s := p.one("limit")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		p.err("limit", fmt.Sprintf("must be a whole number from 1 to %d", most))
	}
	return n
}

func (p *params) desc(def bool) bool {
	switch p.one("order") {
	case "":
		return def
	case "asc":
		return false
	case "desc":
		return true
	default:
		p.err("order", `must be "asc" or "desc"`)
		return false
	}
}

// Limits of GET /events (WorkOS's).
const (
	defaultEventsLimit = 10
	maxEventsLimit     = 100
)

// listEvents serves GET /events: events[] (types, comma-separated or
// repeated), organization_id, range_start, range_end (ISO 8601; start
// inclusive, end exclusive), after (an event id), limit (1–100, default
// 10), order (asc, the default, or desc). list_metadata.after is the id of
// the page's last event (with asc always, so a poller continues from it;
// with desc only when more may follow), null otherwise.
func (h *handler) listEvents(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r, "events", "events[]", "organization_id", "range_start", "range_end", "after", "limit", "order")
	if !ok {
		return
	}
	q := Query{Types: p.list("events"), OrganizationID: p.one("organization_id"),
		RangeStart: p.time("range_start"), RangeEnd: p.time("range_end"),
		Limit: p.limit(defaultEventsLimit, maxEventsLimit), Desc: p.desc(false)}
	for _, t := range q.Types {
		if !KnownType(t) {
			p.err("events", fmt.Sprintf("%q is not an event type; known: %s", t, strings.Join(knownTypes, ", ")))
		}
	}
	if !q.RangeStart.IsZero() && !q.RangeEnd.IsZero() && q.RangeStart.After(q.RangeEnd) {
		p.err("range_start", "is after range_end")
	}
	if a := p.one("after"); a != "" {
		pos, err := ParseID(a)
		if err != nil {
			p.err("after", "is not an event id: give the id of an event (event_<position>) from an earlier page")
		}
		q.After = pos
	}
	if p.bad {
		return
	}
	evs, err := h.cfg.Log.List(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var after *string
	switch {
	case len(evs) > 0 && (!q.Desc || len(evs) == q.Limit):
		id := evs[len(evs)-1].ID()
		after = &id
	case len(evs) == 0 && !q.Desc && q.After > 0:
		id := Event{Position: q.After}.ID()
		after = &id
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": nonNilEvents(evs),
		"list_metadata": map[string]any{"before": nil, "after": after},
	})
}

func nonNilEvents(evs []Event) []Event {
	if evs == nil {
		return []Event{}
	}
	return evs
}

// endpointJSON is WorkOS's webhook_endpoint object, plus Trellis's
// delivery state.
type endpointJSON struct {
	Object      string       `json:"object"`
	ID          string       `json:"id"`
	EndpointURL string       `json:"endpoint_url"`
	Secret      string       `json:"secret"`
	Status      string       `json:"status"`
	Events      []string     `json:"events"`
	CreatedAt   string       `json:"created_at"`
	UpdatedAt   string       `json:"updated_at"`
	Delivery    deliveryJSON `json:"delivery"`
}

type deliveryJSON struct {
	// Position: every event up to it was delivered.
	Position      int64   `json:"position"`
	Attempts      int     `json:"attempts"`
	FailingSince  *string `json:"failing_since"`
	NextAttemptAt string  `json:"next_attempt_at"`
	LastError     *string `json:"last_error"`
}

func endpointOut(e Endpoint) endpointJSON {
	out := endpointJSON{
		Object: "webhook_endpoint", ID: e.ID, EndpointURL: e.URL, Secret: e.Secret, Status: e.Status,
		Events: nonNil(e.Events), CreatedAt: e.CreatedAt.UTC().Format(timeFormat), UpdatedAt: e.UpdatedAt.UTC().Format(timeFormat),
		Delivery: deliveryJSON{Position: e.DeliveredPosition, Attempts: e.Attempts,
			NextAttemptAt: e.NextAttemptAt.UTC().Format(timeFormat)},
	}
	if e.FailingSince.Valid {
		s := e.FailingSince.Time.UTC().Format(timeFormat)
		out.Delivery.FailingSince = &s
	}
	if e.LastError != "" {
		out.Delivery.LastError = &e.LastError
	}
	return out
}

// listEndpoints serves GET /webhook_endpoints: every endpoint in one page
// (limit, order, before and after are accepted for the SDK's sake).
func (h *handler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r, "limit", "order", "before", "after")
	if !ok {
		return
	}
	p.limit(10, 100)
	desc := p.desc(true)
	if p.bad {
		return
	}
	es, err := h.cfg.Log.Endpoints(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]endpointJSON, len(es))
	for i, e := range es {
		if desc {
			out[len(es)-1-i] = endpointOut(e)
		} else {
			out[i] = endpointOut(e)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": out,
		"list_metadata": map[string]any{"before": nil, "after": nil}})
}

// decodeBody reads a JSON object body strictly into dst.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", h.cfg.MaxBodyBytes), nil)
		return false
	}
	if err := rawjson.Decode(body, dst); err != nil {
		badRequest(w, "body", err.Error())
		return false
	}
	return true
}

type createEndpointBody struct {
	EndpointURL string   `json:"endpoint_url"`
	Events      []string `json:"events"`
	// Secret is a Trellis extension: WorkOS always generates it.
	Secret string `json:"secret"`
}

func (h *handler) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var b createEndpointBody
	if !h.decodeBody(w, r, &b) {
		return
	}
	e, err := h.cfg.Log.CreateEndpoint(r.Context(), NewEndpoint{URL: b.EndpointURL, Secret: b.Secret, Events: b.Events})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, endpointOut(e))
}

func (h *handler) getEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := h.cfg.Log.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, endpointOut(e))
}

type updateEndpointBody struct {
	EndpointURL *string   `json:"endpoint_url"`
	Status      *string   `json:"status"`
	Events      *[]string `json:"events"`
}

func (h *handler) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var b updateEndpointBody
	if !h.decodeBody(w, r, &b) {
		return
	}
	e, err := h.cfg.Log.UpdateEndpoint(r.Context(), r.PathValue("id"),
		EndpointUpdate{URL: b.EndpointURL, Status: b.Status, Events: b.Events})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, endpointOut(e))
}

func (h *handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Log.DeleteEndpoint(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
