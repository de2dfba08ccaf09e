package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/events"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// receiver is a loopback webhook endpoint: it verifies each delivery's
// signature itself (HMAC-SHA256 of "<t>.<body>"), fails the first
// failFirst requests with 500, and records the event ids it accepted.
type receiver struct {
	t         testing.TB
	secret    string
	failFirst int
	// hold, when set, is called before answering request n (1-based); it
	// may block.
	hold func(n int)

	mu       sync.Mutex
	requests int
	accepted []string
	badSig   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.mu.Unlock()
	if rc.hold != nil {
		rc.hold(n)
	}
	t, v1, ok := parseSig(r.Header.Get(events.SignatureHeader))
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(t + "." + string(body)))
	ms, _ := strconv.ParseInt(t, 10, 64)
	if !ok || !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(v1)) || time.Since(time.UnixMilli(ms)) > time.Minute {
		rc.mu.Lock()
		rc.badSig++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if n <= rc.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.accepted = append(rc.accepted, e.ID)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func parseSig(h string) (t, v1 string, ok bool) {
	a, b, found := strings.Cut(h, ", ")
	t, okT := strings.CutPrefix(a, "t=")
	v1, okV := strings.CutPrefix(b, "v1=")
	return t, v1, found && okT && okV
}

// distinct returns the accepted ids, each once, in first-accepted order,
// and how many were accepted again (at-least-once redeliveries).
func (rc *receiver) distinct() ([]string, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, id := range rc.accepted {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, len(rc.accepted) - len(out)
}

// checkReceived: the receiver got every event of the log, in order
// (deduplicated by id: a redelivery repeats the last one, never an older).
func checkReceived(t testing.TB, l *events.Log, rc *receiver) {
	t.Helper()
	all, err := l.List(context.Background(), events.Query{})
	if err != nil {
		t.Fatal(err)
	}
	got, dups := rc.distinct()
	if len(got) != len(all) {
		t.Fatalf("received %d distinct events, the log has %d", len(got), len(all))
	}
	for i, e := range all {
		if got[i] != e.ID() {
			t.Fatalf("delivery %d is %s, want %s (in position order)", i, got[i], e.ID())
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := 1; i < len(rc.accepted); i++ {
		a, _ := events.ParseID(rc.accepted[i-1])
		b, _ := events.ParseID(rc.accepted[i])
		if b < a {
			t.Errorf("delivery of %s after %s: out of order", rc.accepted[i], rc.accepted[i-1])
		}
	}
	if rc.badSig > 0 {
		t.Errorf("%d deliveries with a bad signature", rc.badSig)
	}
	t.Logf("%d events delivered, %d redelivered, %d requests", len(got), dups, rc.requests)
}

// TestWebhooksUnderFaults: a receiver that fails 3 times, two deliverers on
// two connections pools (two instances), PostgreSQL restarted in the
// middle: every event arrives, in order, none lost.
func TestWebhooksUnderFaults(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	s, dsn := demoDBAt(t, cluster.NewDatabase(t))
	rc := &receiver{t: t, secret: "whsec_test", failFirst: 3}
	recv := httptest.NewServer(rc)
	defer recv.Close()
	l := events.NewLog(s.DB())
	ctx := context.Background()
	if _, err := l.CreateEndpoint(ctx, events.NewEndpoint{URL: recv.URL + "/hook", Secret: rc.secret}); err != nil {
		t.Fatal(err)
	}
	// Another endpoint that only wants deletions: filtered events pass it by.
	other := &receiver{t: t, secret: "whsec_other"}
	recvOther := httptest.NewServer(other)
	defer recvOther.Close()
	if _, err := l.CreateEndpoint(ctx, events.NewEndpoint{URL: recvOther.URL, Secret: other.secret, Events: []string{"organization.deleted"}}); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 2 {
		st := s
		if i == 1 {
			var err error
			if st, err = postgres.Open(ctx, dsn, postgres.Config{}); err != nil {
				t.Fatal(err)
			}
			defer st.Close()
		}
		w := &events.Waker{}
		wg.Go(func() { w.Listen(runCtx, dsn, nil) })
		d := events.NewDeliverer(events.NewLog(st.DB()), events.DelivererConfig{Workers: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		wg.Go(func() { d.Run(runCtx, w) })
	}
	defer func() { cancel(); wg.Wait() }()

	for i := range 15 {
		writeOrg(t, s, i, false)
	}
	cluster.Stop(t)
	time.Sleep(300 * time.Millisecond)
	cluster.Start(t)
	for i := 15; i < 30; i++ {
		writeWithRetry(t, s, i)
	}
	writeOrg(t, s, 3, true)
	all, err := l.List(ctx, events.Query{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every event delivered", func() bool { got, _ := rc.distinct(); return len(got) >= len(all) })
	checkReceived(t, l, rc)
	waitFor(t, 30*time.Second, "the filtered endpoint's one event", func() bool { got, _ := other.distinct(); return len(got) == 1 })
	if got, _ := other.distinct(); got[0] != all[len(all)-1].ID() {
		t.Errorf("filtered endpoint got %v, want only %s", got, all[len(all)-1].ID())
	}
	if rc.requests < len(all)+3 {
		t.Errorf("%d requests: the 3 failures were not retried", rc.requests)
	}
}

// TestDeliveryInParallel: three endpoints due at once are delivered to at
// once, by a deliverer of three workers that one wake starts: each
// receiver holds its first request until all three have arrived.
func TestDeliveryInParallel(t *testing.T) {
	s, dsn := demoDB(t)
	l := events.NewLog(s.DB())
	ctx, cancel := context.WithCancel(context.Background())
	var arrived sync.WaitGroup
	arrived.Add(3)
	together := make(chan bool, 3)
	var rcs []*receiver
	for i := range 3 {
		rc := &receiver{t: t, secret: "whsec_" + strconv.Itoa(i), hold: func(n int) {
			if n != 1 {
				return
			}
			arrived.Done()
			done := make(chan struct{})
			go func() { arrived.Wait(); close(done) }()
			select {
			case <-done:
				together <- true
			case <-time.After(10 * time.Second):
				together <- false
			}
		}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		if _, err := l.CreateEndpoint(ctx, events.NewEndpoint{URL: srv.URL, Secret: rc.secret}); err != nil {
			t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	w := &events.Waker{}
	wg.Go(func() { w.Listen(ctx, dsn, nil) })
	wg.Go(func() { events.NewDeliverer(l, events.DelivererConfig{Workers: 3}).Run(ctx, w) })
	writeOrg(t, s, 1, false)
	for range 3 {
		if !<-together {
			t.Fatal("an endpoint's first delivery waited 10 s for the others': the endpoints were not delivered to at once")
		}
	}
	for _, rc := range rcs {
		waitFor(t, 10*time.Second, "the event at every endpoint", func() bool { got, _ := rc.distinct(); return len(got) > 0 })
	}
}

// writeWithRetry writes orgID(i), retrying while the restarted database
// refuses connections.
func writeWithRetry(t testing.TB, s *postgres.Store, i int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := s.Write(context.Background(), orgChange(i))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("write %s after the restart: %v", orgID(i), err)
		}
	}
}

// helperEnv names the database of TestHelperDeliverer.
const helperEnv = "TRELLIS_EVENTS_HELPER_DSN"

// TestHelperDeliverer is not a test: TestWebhookSurvivesKill runs it as a
// separate process that delivers until it is killed.
func TestHelperDeliverer(t *testing.T) {
	dsn := os.Getenv(helperEnv)
	if dsn == "" {
		t.Skip("a helper process of TestWebhookSurvivesKill")
	}
	s, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := &events.Waker{}
	ctx := context.Background()
	go w.Listen(ctx, dsn, nil)
	events.NewDeliverer(events.NewLog(s.DB()), events.DelivererConfig{Workers: 1, MinBackoff: 10 * time.Millisecond}).Run(ctx, w)
}

// TestWebhookSurvivesKill kills the delivering process (SIGKILL, by PID)
// while the receiver holds a delivery, then starts another: the receiver
// gets every event, in order; at most the one in flight twice.
func TestWebhookSurvivesKill(t *testing.T) {
	s, dsn := demoDB(t)
	killed := make(chan struct{})
	inFlight := make(chan struct{})
	var once sync.Once
	rc := &receiver{t: t, secret: "whsec_kill"}
	rc.hold = func(n int) {
		if n == 4 {
			once.Do(func() { close(inFlight) })
			<-killed
		}
	}
	recv := httptest.NewServer(rc)
	defer recv.Close()
	l := events.NewLog(s.DB())
	if _, err := l.CreateEndpoint(context.Background(), events.NewEndpoint{URL: recv.URL, Secret: rc.secret}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		writeOrg(t, s, i, false)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeliverer$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dsn)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("no fourth delivery within 30s")
	}
	if err := syscall.Kill(first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(killed)
	second := start()
	defer func() { _ = syscall.Kill(second.Process.Pid, syscall.SIGKILL); _ = second.Wait() }()
	waitFor(t, 60*time.Second, "every event delivered after the restart", func() bool { got, _ := rc.distinct(); return len(got) >= 10 })
	checkReceived(t, l, rc)
}
