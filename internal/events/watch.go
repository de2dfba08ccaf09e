package events

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WatchConfig tunes GET /v1/watch. Zero fields get defaults.
type WatchConfig struct {
	// Batch is the most events read and written at a time (default 500).
	Batch int
	// SlowWrite: a consumer that takes longer than this to accept one
	// batch is cut off (default 5 s). Events are read from the log, never
	// queued per consumer, so nothing buffers without bound; a consumer
	// that cannot keep up is told so and resumes with Last-Event-ID.
	SlowWrite time.Duration
	// Heartbeat is the longest silence: a comment line keeps idle
	// connections open through proxies (default 15 s).
	Heartbeat time.Duration
}

func (c WatchConfig) withDefaults() WatchConfig {
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.SlowWrite <= 0 {
		c.SlowWrite = 5 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	return c
}

// CutOffEvent is the SSE event name that ends a stream whose consumer
// reads too slowly; its data is {"code": "consumer_too_slow", "message",
// "position"}, the last position sent.
const CutOffEvent = "trellis.cut_off"

// watch serves GET /v1/watch?after=<position>[&organization_id=…][&kind=…]:
// the events after the position (or after the Last-Event-ID header, which
// wins, as EventSource sends it on reconnect), then every new one as it
// commits, as Server-Sent Events:
//
//	id: <position>
//	event: <type>
//	data: <the WorkOS event object, one line>
//
// kind filters by entity kind (organization, membership, permission, role,
// resource, assignment, resource_type; comma-separated or repeated), and
// organization_id by organization. after=0 (the default) starts at the
// oldest event kept.
func (h *handler) watch(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r, "after", "organization_id", "kind")
	if !ok {
		return
	}
	var q Query
	after := p.one("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after = id
	}
	if after != "" {
		pos, err := strconv.ParseInt(after, 10, 64)
		if err != nil || pos < 0 {
			p.err("after", "must be a position (a whole number ≥ 0, the id of an event of this stream)")
		}
		q.After = pos
	}
	q.OrganizationID = p.one("organization_id")
	q.Entities = p.list("kind")
	for _, k := range q.Entities {
		if !KnownEntity(k) {
			names := make([]string, len(Kinds))
			for i, k := range Kinds {
				names[i] = k.Entity
			}
			p.err("kind", fmt.Sprintf("%q is not an entity kind; known: %s", k, strings.Join(names, ", ")))
		}
	}
	if p.bad {
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	cfg := h.cfg.Watch
	q.Limit = cfg.Batch
	ctx := r.Context()
	lastWrite := time.Now()
	for {
		wake := h.cfg.Waker.Wait() // before reading: a commit after the read wakes us
		evs, err := h.cfg.Log.List(ctx, q)
		if err != nil {
			if ctx.Err() == nil {
				h.cfg.Logger.Error("events: watch", "error", err)
				fmt.Fprintf(w, "event: trellis.error\ndata: {\"code\":\"server_error\",\"message\":\"reading the event log failed; reconnect with Last-Event-ID\"}\n\n")
				_ = rc.Flush()
			}
			return
		}
		if len(evs) > 0 {
			start := time.Now()
			// A consumer that stops reading makes the write block: the
			// deadline ends it.
			_ = rc.SetWriteDeadline(start.Add(2 * cfg.SlowWrite))
			for _, e := range evs {
				data, err := json.Marshal(e)
				if err != nil {
					h.cfg.Logger.Error("events: watch encode", "error", err)
					return
				}
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Position, e.Type, data); err != nil {
					return
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
			q.After = evs[len(evs)-1].Position
			lastWrite = time.Now()
			if lastWrite.Sub(start) > cfg.SlowWrite {
				fmt.Fprintf(w, "event: %s\ndata: {\"code\":\"consumer_too_slow\",\"message\":\"the consumer reads more slowly than events commit; resume with Last-Event-ID\",\"position\":%d}\n\n",
					CutOffEvent, q.After)
				_ = rc.Flush()
				return
			}
			_ = rc.SetWriteDeadline(time.Time{})
			if len(evs) == q.Limit {
				continue // catching up
			}
		}
		heartbeat := time.NewTimer(max(0, cfg.Heartbeat-time.Since(lastWrite)))
		select {
		case <-ctx.Done():
			heartbeat.Stop()
			return
		case <-wake:
			heartbeat.Stop()
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			lastWrite = time.Now()
		}
	}
}
