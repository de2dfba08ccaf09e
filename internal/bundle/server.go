package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trellis-authz/trellis/internal/apikey"
)

// Source gives the bundle server the data document and tells it when the
// document changes. *engine.Engine provides Revision and WaitFor; the
// caller provides Snapshot (see cmd/trellis).
type Source interface {
	// Revision returns the revision of the current document. It is cheap.
	Revision() int64
	// WaitFor blocks until the revision is rev or later, ctx ends, or
	// timeout passes (an error).
	WaitFor(ctx context.Context, rev int64, timeout time.Duration) error
	// Snapshot returns the whole document at one revision, read
	// consistently (e.g. in one store read transaction). The caller only
	// reads it.
	Snapshot(ctx context.Context) (Document, error)
}

// ServerConfig configures a Server. Zero fields get defaults.
type ServerConfig struct {
	// Source is the data (required).
	Source Source
	// Options are the build options every bundle shares (Modules required;
	// Organization is ignored: it is set per request).
	Options Options
	// Name is the bundle's name in /bundles/{name}.tar.gz (default
	// "trellis").
	Name string
	// Organizations serves /bundles/orgs/{org_id}.tar.gz.
	Organizations bool
	// Authorize, when set, must accept a request before it is answered;
	// a rejected request gets 401.
	Authorize func(*http.Request) bool
	// MaxWait caps the long-polling wait a client asks for with
	// "Prefer: wait=N" (default 50s; keep it under the HTTP server's write
	// timeout).
	MaxWait time.Duration
	// MaxOrganizationBundles bounds the organization bundles kept built
	// (default 256).
	MaxOrganizationBundles int
	// Logger receives build failures and build timings (default
	// slog.Default()).
	Logger *slog.Logger
}

// Server serves bundles over OPA's bundle service protocol: ETag and
// If-None-Match (304), and long polling ("Prefer: wait=N"; the response
// Content-Type application/vnd.openpolicyagent.bundles tells OPA it is
// supported). It builds a bundle lazily, when first asked for after the
// revision changed, at most once per revision and bundle, from one
// consistent snapshot; decisions never wait for it. It is safe for
// concurrent use.
type Server struct {
	cfg ServerConfig

	mu       sync.Mutex        // guards built, held, modules and policies
	modules  map[string]string // the policy modules, first cfg.Options.Modules (SetModules)
	policies int               // counts SetModules, so a build of older modules is not kept
	built    map[string]*built
	held     map[string]int64 // organization → the revision at which it was found quarantined
	buildMu  sync.Mutex       // serializes snapshots and builds
	snapshot *Document        // the last snapshot, reused by builds at its revision
}

type built struct {
	info Info
	body []byte
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("bundle: server needs a source")
	}
	if len(cfg.Options.Modules) == 0 {
		return nil, errors.New("bundle: server needs policy modules")
	}
	if _, err := cfg.Options.Keys.value(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "trellis"
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 50 * time.Second
	}
	if cfg.MaxOrganizationBundles <= 0 {
		cfg.MaxOrganizationBundles = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Options.Organization = ""
	return &Server{cfg: cfg, modules: cfg.Options.Modules, built: map[string]*built{}, held: map[string]int64{}}, nil
}

// SetModules makes every bundle built from now on carry modules (the
// policies were reloaded): the bundles built before are dropped, and as
// the bundle revision covers the policies, every client's next poll gets
// the new ones (a long poll waiting for a data change ends by its wait).
func (s *Server) SetModules(modules map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modules = modules
	s.policies++
	clear(s.built)
}

// options returns the build options of org's bundle, and the count of
// SetModules they are as of.
func (s *Server) options(org string) (Options, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := s.cfg.Options
	opts.Modules, opts.Organization = s.modules, org
	return opts, s.policies
}

// ServeHTTP answers GET /bundles/{name}.tar.gz and, when enabled,
// GET /bundles/orgs/{org_id}.tar.gz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method_not_allowed", "bundles are fetched with GET")
		return
	}
	org, ok := s.route(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound, "not_found", "no bundle at "+r.URL.Path)
		return
	}
	if s.cfg.Authorize != nil && !s.cfg.Authorize(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
		httpError(w, http.StatusUnauthorized, "unauthorized", "bundles need a valid API key: Authorization: Bearer <key>")
		return
	}
	ctx := r.Context()
	known := ifNoneMatch(r.Header.Get("If-None-Match"))
	rev := s.cfg.Source.Revision()
	current := s.etag(rev, org)
	if held := s.heldETag(org, rev); held != "" {
		current = held
	}
	if known[current] {
		wait := preferWait(r.Header.Get("Prefer"), s.cfg.MaxWait)
		if wait <= 0 || s.cfg.Source.WaitFor(ctx, rev+1, wait) != nil {
			// Nothing new: the client's bundle is current.
			w.Header().Set("ETag", current)
			w.Header().Set("Content-Type", ContentType)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	b, err := s.get(ctx, org)
	switch {
	case errors.Is(err, ErrUnknownOrganization):
		httpError(w, http.StatusNotFound, "not_found", "no such organization: "+org)
		return
	case errors.Is(err, ErrOrganizationUnavailable):
		w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetry/time.Second)))
		httpError(w, http.StatusServiceUnavailable, "organization_unavailable",
			"organization "+org+" is quarantined: its data breaks a rule of the data model; retry later")
		return
	case err != nil:
		if ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "bundle build failed", "err", err, "org_id", org)
		}
		httpError(w, http.StatusServiceUnavailable, "unavailable", "the bundle could not be built; retry later")
		return
	}
	w.Header().Set("ETag", b.info.ETag())
	w.Header().Set("Content-Type", ContentType)
	if known[b.info.ETag()] {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b.body)
	}
}

// route returns the organization a bundle path names ("" for the full
// bundle) and whether the path names a bundle at all.
func (s *Server) route(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/bundles/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, ".tar.gz")
	if !ok {
		return "", false
	}
	if org, isOrg := strings.CutPrefix(name, "orgs/"); isOrg {
		return org, s.cfg.Organizations && org != "" && !strings.Contains(org, "/")
	}
	return "", name == s.cfg.Name
}

// etag is the ETag the bundle of org at rev has (or will have once built).
func (s *Server) etag(rev int64, org string) string {
	opts, _ := s.options(org)
	d, _ := Digest(opts) // keys were checked by NewServer
	return Info{Revision: fmt.Sprintf("%d-%s", rev, d)}.ETag()
}

// unavailableRetry is the Retry-After of a quarantined organization's
// bundle (as of its decisions, authz.RetryOrganizationUnavailable).
const unavailableRetry = 30 * time.Second

// get returns the bundle of org at the current revision, building it if
// needed. Concurrent callers share one build. The bundle of an
// organization quarantined since its last build is not rebuilt: get
// returns that last good bundle, or ErrOrganizationUnavailable when there
// is none.
func (s *Server) get(ctx context.Context, org string) (*built, error) {
	rev := s.cfg.Source.Revision()
	s.mu.Lock()
	b := s.built[org]
	s.mu.Unlock()
	if b != nil && b.info.DataRevision >= rev {
		return b, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.mu.Lock()
	b = s.built[org]
	s.mu.Unlock()
	if b != nil && b.info.DataRevision >= s.cfg.Source.Revision() {
		return b, nil // built while this request waited
	}
	// A build is not tied to one request: finish it even if this client
	// goes away, so the next one finds it. (An organization's build reuses
	// the snapshot of its revision, so a quarantined one fails fast.)
	ctx = context.WithoutCancel(ctx)
	snap := s.snapshot
	if snap == nil || snap.Revision < s.cfg.Source.Revision() {
		doc, err := s.cfg.Source.Snapshot(ctx)
		if err != nil {
			return nil, fmt.Errorf("bundle: snapshot: %w", err)
		}
		snap = &doc
		if s.cfg.Organizations {
			s.snapshot = snap // organization builds reuse it
		}
	}
	opts, policies := s.options(org)
	start := time.Now()
	var buf bytes.Buffer
	info, err := Build(ctx, &buf, *snap, opts)
	if errors.Is(err, ErrOrganizationUnavailable) {
		s.mu.Lock()
		s.held[org] = snap.Revision
		s.mu.Unlock()
		if b != nil {
			return b, nil // its last good bundle, at an older revision
		}
	}
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "bundle built", "revision", info.Revision, "org_id", org,
		"bytes", info.Size, "data_bytes", info.DataBytes, "signed", info.Signed, "duration_ms", time.Since(start).Milliseconds())
	b = &built{info: info, body: buf.Bytes()}
	s.mu.Lock()
	if policies != s.policies {
		s.mu.Unlock()
		return b, nil // the policies changed during the build: keep none of it
	}
	if org != "" && len(s.built) > s.cfg.MaxOrganizationBundles {
		for k := range s.built {
			if k != "" {
				delete(s.built, k) // evict one at random
				break
			}
		}
	}
	s.built[org] = b
	delete(s.held, org)
	s.mu.Unlock()
	return b, nil
}

// heldETag is the ETag of the last good bundle of org while org is
// quarantined at revision rev, so that a client holding it long-polls for
// a change instead of being answered 304 at once, again and again; ""
// otherwise.
func (s *Server) heldETag(org string, rev int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, held := s.held[org]; held && at >= rev && s.built[org] != nil {
		return s.built[org].info.ETag()
	}
	return ""
}

// ifNoneMatch parses an If-None-Match header: OPA sends its current ETag,
// possibly followed by superseded ones, comma-separated.
func ifNoneMatch(h string) map[string]bool {
	out := map[string]bool{}
	for _, tag := range strings.Split(h, ",") {
		if tag = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tag), "W/")); tag != "" {
			out[tag] = true
		}
	}
	return out
}

// preferWait reads the wait preference OPA sends when long polling
// ("Prefer: modes=snapshot,delta;wait=30"), capped at limit.
func preferWait(h string, limit time.Duration) time.Duration {
	for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ';' || r == ',' }) {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "wait=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, limit)
	}
	return 0
}

// BearerKeys returns an Authorize function that accepts a request whose
// "Authorization: Bearer <key>" names one of keys, compared in constant
// time. With no keys it accepts nothing.
func BearerKeys(keys []string) func(*http.Request) bool {
	return apikey.New(keys).Valid
}

func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}
