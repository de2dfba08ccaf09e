package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/events"
)

func request(t testing.TB, method, url, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, url, raw)
		}
	}
	return resp.StatusCode, out
}

// TestBadInput: every malformed request is a 4xx naming what is wrong.
func TestBadInput(t *testing.T) {
	s, dsn := demoDB(t)
	srv, _ := serve(t, s, dsn, events.WatchConfig{})
	tests := []struct {
		name, method, path, body string
		status                   int
		mention                  string
	}{
		{"unknown event type", "GET", "/events?events=organization.created,organization.exploded", "", 400, "organization.exploded"},
		{"malformed cursor", "GET", "/events?after=evt_12", "", 400, "after"},
		{"cursor with junk", "GET", "/events?after=event_12x", "", 400, "after"},
		{"range_start after range_end", "GET", "/events?range_start=2026-02-01T00:00:00Z&range_end=2026-01-01T00:00:00Z", "", 400, "range_start"},
		{"bad range timestamp", "GET", "/events?range_start=yesterday", "", 400, "range_start"},
		{"limit too large", "GET", "/events?limit=101", "", 400, "limit"},
		{"bad order", "GET", "/events?order=up", "", 400, "order"},
		{"unknown parameter", "GET", "/events?organisation_id=org_acme", "", 400, "organisation_id"},
		{"webhook URL not HTTP", "POST", "/webhook_endpoints", `{"endpoint_url": "file:///etc/passwd", "events": []}`, 422, "http or https"},
		{"webhook URL gopher", "POST", "/webhook_endpoints", `{"endpoint_url": "gopher://127.0.0.1/", "events": []}`, 422, "http or https"},
		{"webhook URL missing", "POST", "/webhook_endpoints", `{"events": []}`, 422, "endpoint_url"},
		{"webhook unknown event type", "POST", "/webhook_endpoints", `{"endpoint_url": "http://127.0.0.1:9/", "events": ["user.created"]}`, 422, "user.created"},
		{"webhook unknown field", "POST", "/webhook_endpoints", `{"endpoint_url": "http://127.0.0.1:9/", "url": "x"}`, 400, "url"},
		{"webhook bad status", "PATCH", "/webhook_endpoints/we_none", `{"status": "paused"}`, 422, "status"},
		{"webhook not found", "GET", "/webhook_endpoints/we_none", "", 404, "we_none"},
		{"watch malformed position", "GET", "/v1/watch?after=abc", "", 400, "after"},
		{"watch unknown kind", "GET", "/v1/watch?kind=team", "", 400, "team"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := request(t, tc.method, srv.URL+tc.path, tc.body)
			if status != tc.status || !strings.Contains(body["message"].(string), tc.mention) {
				t.Errorf("%d %v, want %d mentioning %q", status, body, tc.status, tc.mention)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no API key: %d, want 401", resp.StatusCode)
	}
}

// TestListEventsPages pages through GET /events with after, both orders,
// and filters by type and organization.
func TestListEventsPages(t *testing.T) {
	s, dsn := demoDB(t)
	srv, _ := serve(t, s, dsn, events.WatchConfig{})
	for i := range 5 {
		writeOrg(t, s, i, false)
	}
	writeOrg(t, s, 2, true)
	ids := func(body map[string]any) []string {
		var out []string
		for _, e := range body["data"].([]any) {
			ev := e.(map[string]any)
			out = append(out, ev["event"].(string)+" "+ev["data"].(map[string]any)["id"].(string))
		}
		return out
	}
	var got []string
	after := ""
	for page := 0; page < 10; page++ {
		status, body := request(t, "GET", srv.URL+"/events?limit=2&after="+after, "")
		if status != 200 {
			t.Fatalf("%d %v", status, body)
		}
		if len(body["data"].([]any)) == 0 {
			break
		}
		got = append(got, ids(body)...)
		after = body["list_metadata"].(map[string]any)["after"].(string)
	}
	want := "organization.created org_t00000,organization.created org_t00001,organization.created org_t00002,organization.created org_t00003,organization.created org_t00004,organization.deleted org_t00002"
	if strings.Join(got, ",") != want {
		t.Errorf("pages: %v\nwant %s", got, want)
	}
	_, body := request(t, "GET", srv.URL+"/events?order=desc&limit=2&events[]=organization.deleted&organization_id=org_t00002", "")
	if g := ids(body); strings.Join(g, ",") != "organization.deleted org_t00002" {
		t.Errorf("filtered desc: %v", g)
	}
}

// sseEvent is one event read from a watch stream.
type sseEvent struct {
	id, event string
	data      map[string]any
}

// readSSE reads n events (skipping comments) from a watch stream.
func readSSE(t testing.TB, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream after %d events: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func openWatch(t testing.TB, ctx context.Context, url string, headers ...string) *bufio.Reader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return bufio.NewReader(resp.Body)
}

// TestWatchResumes: a watch sees events as they commit; dropped and
// resumed with Last-Event-ID, it continues with no gap and no duplicate.
func TestWatchResumes(t *testing.T) {
	s, dsn := demoDB(t)
	srv, _ := serve(t, s, dsn, events.WatchConfig{Batch: 3})
	for i := range 4 {
		writeOrg(t, s, i, false)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := readSSE(t, openWatch(t, ctx, srv.URL+"/v1/watch?kind=organization"), 4)
	cancel() // the consumer goes away
	for i := 4; i < 8; i++ {
		writeOrg(t, s, i, false)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	r := openWatch(t, ctx2, srv.URL+"/v1/watch?after=0", "Last-Event-ID", first[len(first)-1].id)
	second := readSSE(t, r, 4)
	writeOrg(t, s, 8, false) // committed while watching: pushed
	live := readSSE(t, r, 1)
	all := append(append(first, second...), live...)
	for i, e := range all {
		want := orgID(i)
		if e.event != "organization.created" || e.data["data"].(map[string]any)["id"] != want {
			t.Errorf("event %d: %s %v, want organization.created of %s", i, e.event, e.data["data"], want)
		}
		if p := e.data["context"].(map[string]any)["position"].(float64); strconv.FormatInt(int64(p), 10) != e.id {
			t.Errorf("event %d: SSE id %s, context.position %v", i, e.id, p)
		}
		if i > 0 {
			a, _ := strconv.ParseInt(all[i-1].id, 10, 64)
			b, _ := strconv.ParseInt(e.id, 10, 64)
			if b <= a {
				t.Errorf("event %d: position %d after %d", i, b, a)
			}
		}
	}
	// An organization filter sees only its own.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel3()
	one := readSSE(t, openWatch(t, ctx3, srv.URL+"/v1/watch?organization_id="+orgID(5)), 1)
	if one[0].data["data"].(map[string]any)["id"] != orgID(5) {
		t.Errorf("organization filter: %v", one[0].data)
	}
}
