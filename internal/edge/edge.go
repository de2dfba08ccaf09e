// Package edge runs a Trellis edge instance: it pulls a signed bundle from a
// bundle server (ETag and OPA-style long polling), verifies it, activates it
// atomically in a fresh embedded engine, persists the last good bundle so it
// can start without the server, and keeps answering from the last good
// bundle whenever a download, verification or activation fails. A *Node is
// the authz.Evaluator of an ordinary decision service, so the edge serves
// the same API as the server.
package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/engine"
)

// Config configures a Node. Zero fields get defaults.
type Config struct {
	// URL is the bundle's URL, e.g. https://trellis/bundles/trellis.tar.gz
	// (required unless the node only serves a persisted bundle).
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Verification checks each bundle's signature. Nil accepts unsigned
	// bundles; only tests and trusted networks should do that.
	Verification *bundle.Verification
	// PersistDir, when set, keeps the last activated bundle there
	// (bundle.tar.gz + bundle.json) and activates it at start.
	PersistDir string
	// LongPoll is the wait asked of the server (default 30s; keep it under
	// the server's maximum). Negative disables long polling.
	LongPoll time.Duration
	// PollInterval is the delay between polls when the server does not
	// long-poll (default 10s).
	PollInterval time.Duration
	// MaxRetryDelay caps the backoff after failures (default 30s).
	MaxRetryDelay time.Duration
	// MaxBundleBytes bounds a download (default 1 GiB).
	MaxBundleBytes int64
	// HTTPClient fetches bundles (default: a client without overall
	// timeout, since long polls are long; connections time out after 10s).
	HTTPClient *http.Client
	// Logger receives activations and failures (default slog.Default()).
	Logger *slog.Logger
}

// Status describes the node's bundle state, for /ready and logs.
type Status struct {
	// Active says a bundle is active: the node can decide.
	Active bool `json:"active"`
	// BundleRevision is the active bundle's manifest revision.
	BundleRevision string `json:"bundle_revision,omitempty"`
	// Revision is the active bundle's data revision.
	Revision int64 `json:"revision"`
	// ActivatedAt is when the active bundle was activated.
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	// LastError is the last download, verification or activation failure,
	// cleared by the next success. The node keeps its active bundle.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Activations and Failures count successes and failures since start.
	Activations int64 `json:"activations"`
	Failures    int64 `json:"failures"`
}

// ErrNoBundle is returned by decisions before any bundle is active.
var ErrNoBundle = fmt.Errorf("%w: no bundle is active yet", authz.ErrUnavailable)

type active struct {
	eng      *engine.Engine
	contents bundle.Contents
	etag     string
	at       time.Time
}

// Node is an edge instance. It is safe for concurrent use: decisions read
// the active engine through an atomic pointer, and activation swaps it.
type Node struct {
	cfg     Config
	log     *slog.Logger
	current atomic.Pointer[active]
	changed atomic.Pointer[chan struct{}] // closed and replaced on activation

	mu          sync.Mutex // guards the fields below
	lastErr     error
	lastErrAt   time.Time
	activations int64
	failures    int64
	seenETag    string // last ETag downloaded, good or bad
}

// New returns a Node. It does not fetch anything: call Start or Run.
func New(cfg Config) (*Node, error) {
	if cfg.URL == "" && cfg.PersistDir == "" {
		return nil, errors.New("edge: give a bundle URL or a persist directory")
	}
	if cfg.LongPoll == 0 {
		cfg.LongPoll = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = 30 * time.Second
	}
	if cfg.MaxBundleBytes <= 0 {
		cfg.MaxBundleBytes = 1 << 30
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	ch := make(chan struct{})
	n.changed.Store(&ch)
	return n, nil
}

// Start activates the persisted bundle, if any. A persisted bundle that
// fails verification is reported and ignored.
func (n *Node) Start(ctx context.Context) {
	if n.cfg.PersistDir == "" {
		return
	}
	raw, err := os.ReadFile(filepath.Join(n.cfg.PersistDir, persistFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		var meta persistMeta
		if b, e := os.ReadFile(filepath.Join(n.cfg.PersistDir, metaFile)); e == nil {
			_ = json.Unmarshal(b, &meta)
		}
		err = n.activate(ctx, raw, meta.ETag, false)
	}
	if err != nil {
		_ = n.fail(ctx, fmt.Errorf("persisted bundle: %w", err)) // logged and reported by Status
		return
	}
	n.log.InfoContext(ctx, "activated the persisted bundle", "bundle_revision", n.Status().BundleRevision)
}

// Run polls the bundle URL until ctx ends. It returns nil when ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.URL == "" {
		<-ctx.Done()
		return nil
	}
	retry := time.Duration(0)
	for ctx.Err() == nil {
		longPolled, err := n.PollOnce(ctx)
		var delay time.Duration
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			retry = min(max(2*retry, 250*time.Millisecond), n.cfg.MaxRetryDelay)
			delay = retry
		case !longPolled:
			retry = 0
			delay = n.cfg.PollInterval
		default:
			retry = 0
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
	return nil
}

// PollOnce makes one bundle request and activates what it gets. longPolled
// says the server supports long polling, so the next request may follow at
// once. A failure is also recorded in Status and logged.
func (n *Node) PollOnce(ctx context.Context) (longPolled bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.cfg.URL, nil)
	if err != nil {
		return false, n.fail(ctx, fmt.Errorf("bundle request: %w", err))
	}
	n.mu.Lock()
	if n.seenETag != "" {
		req.Header.Set("If-None-Match", n.seenETag)
	}
	n.mu.Unlock()
	prefer := "modes=snapshot"
	if n.cfg.LongPoll > 0 {
		prefer += ";wait=" + strconv.Itoa(int(n.cfg.LongPoll/time.Second))
	}
	req.Header.Set("Prefer", prefer)
	if n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	}
	resp, err := n.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, n.fail(ctx, fmt.Errorf("bundle download: %w", err))
	}
	defer resp.Body.Close()
	longPolled = n.cfg.LongPoll > 0 && resp.Header.Get("Content-Type") == bundle.ContentType
	switch resp.StatusCode {
	case http.StatusNotModified:
		return longPolled, nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, n.fail(ctx, fmt.Errorf("bundle download: %s", resp.Status))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, n.cfg.MaxBundleBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, n.fail(ctx, fmt.Errorf("bundle download: %w", err))
	}
	if int64(len(raw)) > n.cfg.MaxBundleBytes {
		return false, n.fail(ctx, fmt.Errorf("bundle download: larger than %d bytes", n.cfg.MaxBundleBytes))
	}
	etag := resp.Header.Get("ETag")
	// Remember the ETag even when the bundle is rejected, so the server
	// long-polls until it has a different one instead of resending it.
	n.mu.Lock()
	n.seenETag = etag
	n.mu.Unlock()
	if err := n.activate(ctx, raw, etag, true); err != nil {
		return longPolled, n.fail(ctx, err)
	}
	return longPolled, nil
}

// Activate verifies raw (a gzipped bundle) and, if it is good, makes it the
// active bundle and persists it. On failure the active bundle is kept.
func (n *Node) Activate(ctx context.Context, raw []byte, etag string) error {
	if err := n.activate(ctx, raw, etag, true); err != nil {
		return n.fail(ctx, err)
	}
	return nil
}

func (n *Node) activate(ctx context.Context, raw []byte, etag string, persist bool) error {
	start := time.Now()
	c, err := bundle.Read(raw, n.cfg.Verification)
	if err != nil {
		return fmt.Errorf("bundle rejected: %w", err)
	}
	eng, err := engine.New(ctx, engine.Options{Modules: c.Modules, Documents: true})
	if err != nil {
		return fmt.Errorf("bundle activation: %w", err)
	}
	if err := eng.Load(ctx, c.Data); err != nil {
		return fmt.Errorf("bundle activation: %w", err)
	}
	if persist && n.cfg.PersistDir != "" {
		if err := n.persist(raw, etag, c.Revision); err != nil {
			// The bundle is good; only a restart without the server suffers.
			n.log.WarnContext(ctx, "could not persist the bundle", "err", err)
		}
	}
	now := time.Now()
	n.current.Store(&active{eng: eng, contents: bundle.Contents{Revision: c.Revision, DataRevision: c.DataRevision}, etag: etag, at: now})
	n.mu.Lock()
	n.lastErr, n.lastErrAt = nil, time.Time{}
	n.activations++
	if etag != "" {
		n.seenETag = etag
	}
	n.mu.Unlock()
	ch := make(chan struct{})
	close(*n.changed.Swap(&ch))
	n.log.InfoContext(ctx, "bundle activated", "bundle_revision", c.Revision, "revision", c.DataRevision,
		"bytes", len(raw), "duration_ms", time.Since(start).Milliseconds())
	return nil
}

const (
	persistFile = "bundle.tar.gz"
	metaFile    = "bundle.json"
)

type persistMeta struct {
	ETag     string `json:"etag"`
	Revision string `json:"revision"`
}

// persist writes the bundle atomically: to a temporary file, then renamed.
func (n *Node) persist(raw []byte, etag, revision string) error {
	if err := os.MkdirAll(n.cfg.PersistDir, 0o700); err != nil {
		return err
	}
	meta, _ := json.Marshal(persistMeta{ETag: etag, Revision: revision})
	for _, f := range []struct {
		name string
		body []byte
	}{{persistFile, raw}, {metaFile, meta}} {
		tmp, err := os.CreateTemp(n.cfg.PersistDir, f.name+".tmp-*")
		if err != nil {
			return err
		}
		_, err = io.Copy(tmp, bytes.NewReader(f.body))
		if err == nil {
			err = tmp.Sync()
		}
		if e := tmp.Close(); err == nil {
			err = e
		}
		if err == nil {
			err = os.Rename(tmp.Name(), filepath.Join(n.cfg.PersistDir, f.name))
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}

func (n *Node) fail(ctx context.Context, err error) error {
	n.mu.Lock()
	n.lastErr, n.lastErrAt = err, time.Now()
	n.failures++
	n.mu.Unlock()
	cur := n.current.Load()
	kept := ""
	if cur != nil {
		kept = cur.contents.Revision
	}
	n.log.WarnContext(ctx, "bundle update failed; keeping the last good bundle", "err", err, "bundle_revision", kept)
	return err
}

// Status returns the node's bundle state.
func (n *Node) Status() Status {
	var s Status
	if cur := n.current.Load(); cur != nil {
		s.Active, s.BundleRevision, s.Revision, s.ActivatedAt = true, cur.contents.Revision, cur.contents.DataRevision, cur.at
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lastErr != nil {
		s.LastError, s.LastErrorAt = n.lastErr.Error(), n.lastErrAt
	}
	s.Activations, s.Failures = n.activations, n.failures
	return s
}

// Ready reports readiness for the HTTP API's /ready: ready once a bundle is
// active. The details say which bundle, and whether the last update failed
// (stale: true) while the node keeps answering from it.
func (n *Node) Ready() (bool, map[string]any) {
	s := n.Status()
	d := map[string]any{
		"revision":        s.Revision,
		"bundle_revision": s.BundleRevision,
		"stale":           s.LastError != "",
		"activations":     s.Activations,
		"failures":        s.Failures,
	}
	if s.LastError != "" {
		d["last_error"] = s.LastError
		d["last_error_at"] = s.LastErrorAt
	}
	return s.Active, d
}

// Decide evaluates ep on the active bundle.
func (n *Node) Decide(ctx context.Context, ep engine.Entrypoint, input ast.Value) (engine.Result, error) {
	cur := n.current.Load()
	if cur == nil {
		return engine.Result{}, ErrNoBundle
	}
	return cur.eng.Decide(ctx, ep, input)
}

// Session evaluates several decisions on the active bundle, on one state
// of its data (engine.Engine.Session).
func (n *Node) Session(ctx context.Context, fn func(decide func(engine.Entrypoint, ast.Value) (engine.Result, error)) error) error {
	cur := n.current.Load()
	if cur == nil {
		return ErrNoBundle
	}
	return cur.eng.Session(ctx, fn)
}

// Data evaluates data.<path> on the active bundle.
func (n *Node) Data(ctx context.Context, path string, input ast.Value) (engine.Result, error) {
	cur := n.current.Load()
	if cur == nil {
		return engine.Result{}, ErrNoBundle
	}
	return cur.eng.Data(ctx, path, input)
}

// Loaded reports whether a bundle is active: before, the service answers
// every decision 503 not_ready.
func (n *Node) Loaded() bool { return n.current.Load() != nil }

// Revision returns the data revision of the active bundle (0 before one).
func (n *Node) Revision() int64 {
	if cur := n.current.Load(); cur != nil {
		return cur.contents.DataRevision
	}
	return 0
}

// WaitFor blocks until a bundle of data revision rev or later is active,
// ctx ends, or timeout passes (engine.ErrStale).
func (n *Node) WaitFor(ctx context.Context, rev int64, timeout time.Duration) error {
	if n.Revision() >= rev {
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ch := *n.changed.Load()
		if n.Revision() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return engine.ErrStale
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
