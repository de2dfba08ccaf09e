package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TailConfig configures Tail.
type TailConfig struct {
	// URL is the Trellis server (http://127.0.0.1:8080); APIKey one of its
	// keys.
	URL, APIKey string
	// After is the position to start after; OrganizationID and Kinds
	// filter (see GET /v1/watch).
	After          int64
	OrganizationID string
	Kinds          []string
	// Client sends the requests (default: a client without timeout, as a
	// stream is long-lived).
	Client *http.Client
}

// Tail prints the watch stream to out, one line an event:
//
//	<position> <created_at> <type> <organization_id or -> <entity id>
//
// until ctx ends. A dropped connection (or a cut-off for reading slowly)
// is resumed from the last position printed, after a short wait, so no
// event is printed twice or skipped. A refused request (4xx) ends it with
// the server's message.
func Tail(ctx context.Context, cfg TailConfig, out io.Writer) error {
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	last := cfg.After
	wait := 100 * time.Millisecond
	for {
		n, err := tailOnce(ctx, cfg, last, out)
		last = n
		if ctx.Err() != nil {
			return nil
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// tailOnce reads one connection's stream; it returns the last position
// printed.
func tailOnce(ctx context.Context, cfg TailConfig, after int64, out io.Writer) (int64, error) {
	q := url.Values{}
	if cfg.OrganizationID != "" {
		q.Set("organization_id", cfg.OrganizationID)
	}
	if len(cfg.Kinds) > 0 {
		q.Set("kind", strings.Join(cfg.Kinds, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.URL, "/")+WatchPath+"?"+q.Encode(), nil)
	if err != nil {
		return after, &refusedError{err.Error()}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return after, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b errorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&b)
		err := fmt.Errorf("%s: %s %s", WatchPath, resp.Status, b.Message)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return after, &refusedError{err.Error()}
		}
		return after, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event != "" && event != CutOffEvent && !strings.HasPrefix(event, "trellis.error") {
				var e struct {
					ID        string `json:"id"`
					Event     string `json:"event"`
					CreatedAt string `json:"created_at"`
					Data      struct {
						ID   string `json:"id"`
						Slug string `json:"slug"`
					} `json:"data"`
					Context struct {
						Position       int64   `json:"position"`
						OrganizationID *string `json:"organization_id"`
					} `json:"context"`
				}
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					return after, fmt.Errorf("%s: event %q: %w", WatchPath, data, err)
				}
				org, id := "-", e.Data.ID
				if e.Context.OrganizationID != nil {
					org = *e.Context.OrganizationID
				}
				if id == "" {
					id = e.Data.Slug
				}
				if _, err := fmt.Fprintf(out, "%d %s %s %s %s\n", e.Context.Position, e.CreatedAt, e.Event, org, id); err != nil {
					return after, &refusedError{err.Error()}
				}
				after = e.Context.Position
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	return after, sc.Err()
}
