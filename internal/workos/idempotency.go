package workos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// HeaderIdempotencyKey names a POST request so that a retry of it is
// answered with the first response instead of being performed again. The
// WorkOS SDKs send one (a random UUID) on every POST and reuse it on their
// retries.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderReplayed is set to "true" on a response replayed for a repeated
// Idempotency-Key.
const HeaderReplayed = "Idempotent-Replayed"

// Idempotency bounds.
const (
	// KeyLifetime is how long a key's response is kept (WorkOS's 24 h).
	KeyLifetime = 24 * time.Hour
	// ClaimTimeout is how long a key stays claimed by a request that
	// never recorded its response (its server died between the write and
	// the record) before another request with the key may run it again.
	ClaimTimeout = 5 * time.Minute
	// maxKeyBytes bounds an Idempotency-Key.
	maxKeyBytes = 255
	// busyWait bounds how long a request waits for another in flight
	// with its key before answering 409.
	busyWait = 10 * time.Second
)

// Replay is the response recorded for an Idempotency-Key: what is sent
// again for a repeat of the request.
type Replay struct {
	Status   int
	Revision int64  // X-Trellis-Revision; 0 for none
	Body     []byte // JSON, or empty (204)
}

// Digest identifies a request for its Idempotency-Key: the SHA-256 of its
// method, path, query and body.
type Digest [sha256.Size]byte

// Errors of Replays.Claim.
var (
	// ErrKeyReused: the key was used for a different request.
	ErrKeyReused = errors.New("idempotency key used for another request")
	// ErrKeyBusy: a request with the key is still in progress.
	ErrKeyBusy = errors.New("a request with this idempotency key is in progress")
)

// Replays keeps the responses of POST requests by Idempotency-Key for
// KeyLifetime (in PostgreSQL: package workosdb, so replays work across
// restarts and instances; NewMemoryReplays keeps them in the process).
// Implementations are safe for concurrent use.
type Replays interface {
	// Claim reserves key for the request digest. It returns (nil, nil)
	// when the caller now holds the key and must run the request, then
	// Finish or Release it; the recorded response when the key's request
	// finished; ErrKeyReused when the key belongs to another digest, and
	// ErrKeyBusy while its request runs. A key older than KeyLifetime, or
	// claimed longer than ClaimTimeout ago and never finished, is free.
	Claim(ctx context.Context, key string, digest Digest) (*Replay, error)
	// Finish records the response of the request holding key.
	Finish(ctx context.Context, key string, digest Digest, r Replay) error
	// Release frees key without a response (the request failed in a way
	// a retry may fix).
	Release(ctx context.Context, key string, digest Digest) error
}

// idempotent runs next for a POST once per Idempotency-Key: a repeat of
// the request is answered with the recorded response and writes nothing,
// the key reused for another request is a 400, and a repeat that arrives
// while the first runs waits for it (up to busyWait, then 409). Responses
// of 5xx and 429 are not recorded, so the retry the SDK makes of them runs
// afresh. A request without the header runs as is.
func (h *Handler) idempotent(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) error {
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		next(w, r)
		return nil
	}
	if err := model.CheckText(key); err != nil {
		return badRequest(HeaderIdempotencyKey, "%v", err)
	}
	if len(key) > maxKeyBytes {
		return badRequest(HeaderIdempotencyKey, "is %d bytes long; at most %d", len(key), maxKeyBytes)
	}
	// Read the body once to digest it; the route reads it again (and
	// refuses it when it is over the limit).
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBodyBytes+1))
	if err != nil {
		return badRequest("", "read the request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	d := requestDigest(r, body)

	ctx := r.Context()
	deadline := time.Now().Add(busyWait)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		prev, err := h.replays.Claim(ctx, key, d)
		switch {
		case errors.Is(err, ErrKeyReused):
			return badRequest(HeaderIdempotencyKey, "was already used for a different request (method, path, query or body) in the last 24 hours; send a new key")
		case errors.Is(err, ErrKeyBusy) && time.Now().Before(deadline):
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		case errors.Is(err, ErrKeyBusy):
			return fmt.Errorf("%w: a request with this Idempotency-Key is still in progress; retry later", ErrConflict)
		case err != nil:
			return err
		case prev != nil:
			h.replay(r, w, *prev)
			return nil
		}
		break
	}

	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	next(rec, r)
	rev, _ := strconv.ParseInt(rec.header.Get(HeaderRevision), 10, 64)
	res := Replay{Status: rec.status, Revision: rev, Body: rec.body.Bytes()}
	// Record with a context of its own: a client that went away after the
	// write must still find its response when it retries.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if res.Status >= 500 || res.Status == http.StatusTooManyRequests {
		if err := h.replays.Release(recCtx, key, d); err != nil {
			h.log.WarnContext(ctx, "release idempotency key", "err", err, "path", r.URL.Path)
		}
	} else if err := h.replays.Finish(recCtx, key, d, res); err != nil {
		// The write is done and cannot be taken back; a retry within
		// ClaimTimeout gets 409, later it runs again.
		h.log.ErrorContext(ctx, "record idempotent response", "err", err, "path", r.URL.Path)
	}
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes()) // the client went away; nothing to do
	return nil
}

// replay answers with a recorded response, and makes this instance's
// decisions reflect its write, as the first answer did on its instance.
func (h *Handler) replay(r *http.Request, w http.ResponseWriter, p Replay) {
	w.Header().Set(HeaderReplayed, "true")
	if p.Revision > 0 {
		h.wrote(r, w, p.Revision)
	}
	if len(p.Body) > 0 {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(p.Body)
}

// requestDigest digests what makes two requests the same request.
func requestDigest(r *http.Request, body []byte) Digest {
	hash := sha256.New()
	for _, part := range []string{r.Method, r.URL.EscapedPath(), r.URL.RawQuery} {
		hash.Write([]byte(part))
		hash.Write([]byte{0})
	}
	hash.Write(body)
	var d Digest
	copy(d[:], hash.Sum(nil))
	return d
}

// recorder is an http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

// MemoryReplays keeps idempotent responses in the process (data-file mode
// and tests). It is safe for concurrent use.
type MemoryReplays struct {
	mu     sync.Mutex
	now    func() time.Time
	keys   map[string]*memoryReplay
	pruned time.Time // when expired keys were last dropped
}

type memoryReplay struct {
	digest  Digest
	claimed time.Time
	done    *Replay
}

// NewMemoryReplays returns an empty MemoryReplays.
func NewMemoryReplays() *MemoryReplays {
	return &MemoryReplays{now: time.Now, keys: map[string]*memoryReplay{}}
}

var _ Replays = (*MemoryReplays)(nil)

// Claim implements Replays.
func (m *MemoryReplays) Claim(_ context.Context, key string, d Digest) (*Replay, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.pruned) > time.Minute {
		for k, e := range m.keys {
			if now.Sub(e.claimed) > KeyLifetime {
				delete(m.keys, k)
			}
		}
		m.pruned = now
	}
	e, ok := m.keys[key]
	switch {
	case !ok || now.Sub(e.claimed) > KeyLifetime || (e.done == nil && now.Sub(e.claimed) > ClaimTimeout):
		m.keys[key] = &memoryReplay{digest: d, claimed: now}
		return nil, nil
	case e.digest != d:
		return nil, ErrKeyReused
	case e.done == nil:
		return nil, ErrKeyBusy
	}
	out := *e.done
	out.Body = bytes.Clone(out.Body)
	return &out, nil
}

// Finish implements Replays.
func (m *MemoryReplays) Finish(_ context.Context, key string, d Digest, r Replay) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.keys[key]; ok && e.digest == d {
		r.Body = bytes.Clone(r.Body)
		e.done = &r
	}
	return nil
}

// Release implements Replays.
func (m *MemoryReplays) Release(_ context.Context, key string, d Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.keys[key]; ok && e.digest == d && e.done == nil {
		delete(m.keys, key)
	}
	return nil
}
