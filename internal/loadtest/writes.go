package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
)

// AdminPath is the native admin write route a write stream posts to.
const AdminPath = "/v1/admin/changes"

// WritePlan is what a write stream writes: in every organization,
// assignments on the organization's root, to memberships the mix asks
// about, of a role that grants nothing, which the stream grants and
// revokes in turn. So every write is a real change of a membership's
// grants — the server applies it and invalidates what such a change
// invalidates — while no answer the Oracle expects changes.
type WritePlan struct {
	// Role is the environment role the assignments give, of the
	// organization type and without permissions: the server's data must
	// hold it before the stream starts (give it to the data source with
	// the dataset, after the mix is built from it).
	Role model.Role
	orgs [][]model.Assignment // per organization, the assignments it toggles
}

// writerPrefix names the plan's role and assignments.
const writerPrefix = "loadwriter"

// NewWritePlan plans assignments to up to perOrg memberships of every
// organization of ds. It returns an error when ds has no membership.
func NewWritePlan(ds *model.Dataset, perOrg int, seed uint64) (*WritePlan, error) {
	rng := rand.New(rand.NewPCG(seed, 0x77))
	p := &WritePlan{Role: model.Role{Slug: writerPrefix + "-nothing", Name: "Load test writes (grants nothing)", ResourceType: model.OrganizationType}}
	byOrg := map[string][]string{}
	for _, m := range ds.Memberships {
		byOrg[m.OrganizationID] = append(byOrg[m.OrganizationID], m.ID)
	}
	for k, o := range ds.Organizations {
		oms := byOrg[o.ID]
		if len(oms) == 0 {
			continue
		}
		var as []model.Assignment
		for i, j := range rng.Perm(len(oms))[:min(perOrg, len(oms))] {
			as = append(as, model.Assignment{ID: fmt.Sprintf("role_assignment_%s_%d_%d", writerPrefix, k, i),
				MembershipID: oms[j], RoleSlug: p.Role.Slug, ResourceID: o.RootID()})
		}
		p.orgs = append(p.orgs, as)
	}
	if len(p.orgs) == 0 {
		return nil, fmt.Errorf("loadtest: no organization has a membership to write to")
	}
	return p, nil
}

// Organizations is the number of organizations the plan writes in.
func (p *WritePlan) Organizations() int { return len(p.orgs) }

// Assignments returns every assignment the plan grants and revokes; the
// caller owns the slice.
func (p *WritePlan) Assignments() []model.Assignment {
	var out []model.Assignment
	for _, as := range p.orgs {
		out = append(out, as...)
	}
	return out
}

// Writes configures a write stream during a load run's measured window.
type Writes struct {
	// Plan is what to write (required).
	Plan *WritePlan
	// Rate is the writes per second, each one change in one request,
	// spread over the organizations in turn (open loop).
	Rate float64
	// APIKey authorizes the admin route.
	APIKey string
}

// WriteResult is what a write stream did.
type WriteResult struct {
	Rate       float64 // asked for
	Sent       int64
	Failed     int64
	Latency    Percentiles // of the successful writes
	FirstError string
}

// Achieved is the successful writes per second over elapsed.
func (w WriteResult) Achieved(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(w.Sent-w.Failed) / elapsed.Seconds()
}

// postAssignment posts one assignment change to the admin route of base.
func postAssignment(ctx context.Context, client *http.Client, base, apiKey string, op model.Op, a model.Assignment) error {
	type change struct {
		Op         model.Op          `json:"op"`
		Assignment *model.Assignment `json:"assignment"`
	}
	b, err := json.Marshal(struct {
		Changes []change `json:"changes"`
	}{[]change{{op, &a}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+AdminPath, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %.200s", AdminPath, resp.Status, answer)
	}
	return nil
}

// writesInFlight bounds the writes a stream has in flight at once.
const writesInFlight = 8

// writer runs a write stream.
type writer struct {
	w      Writes
	client *http.Client
	base   string
	slots  [][]writeSlot // per organization, per planned assignment

	mu  sync.Mutex // guards res and lat
	res WriteResult
	lat []time.Duration
}

// writeSlot is one planned assignment: whether it is granted now, and a
// lock that keeps its writes in order.
type writeSlot struct {
	sync.Mutex
	held bool
}

// newWriter returns a writer for w against base.
func newWriter(w Writes, base string) *writer {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: writesInFlight, MaxConnsPerHost: writesInFlight, DisableCompression: true}
	wr := &writer{w: w, base: base, res: WriteResult{Rate: w.Rate},
		client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	for _, as := range w.Plan.orgs {
		wr.slots = append(wr.slots, make([]writeSlot, len(as)))
	}
	return wr
}

// run writes at w.Rate until ctx ends, with up to writesInFlight writes in
// flight (when all are, the next ones wait: the stream keeps its rate
// only while the server keeps up), and returns what it did.
func (wr *writer) run(ctx context.Context) WriteResult {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range writesInFlight {
		wg.Go(func() {
			for n := range jobs {
				wr.one(ctx, n)
			}
		})
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / wr.w.Rate))
	defer tick.Stop()
schedule:
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			break schedule
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			break schedule
		case jobs <- n:
		}
	}
	close(jobs)
	wg.Wait()
	wr.res.Latency = Summarize(wr.lat)
	return wr.res
}

// one makes write n: the next assignment of organization n mod the
// organizations, granted if it is not, revoked if it is.
func (wr *writer) one(ctx context.Context, n int) {
	org := n % len(wr.slots)
	k := n / len(wr.slots) % len(wr.slots[org])
	slot := &wr.slots[org][k]
	slot.Lock()
	defer slot.Unlock()
	op := model.OpUpsert
	if slot.held {
		op = model.OpDelete
	}
	start := time.Now()
	err := postAssignment(ctx, wr.client, wr.base, wr.w.APIKey, op, wr.w.Plan.orgs[org][k])
	if ctx.Err() != nil {
		return // cut off by the end of the window: counts as nothing
	}
	if err == nil {
		slot.held = !slot.held
	}
	wr.mu.Lock()
	defer wr.mu.Unlock()
	wr.res.Sent++
	if err != nil {
		wr.res.Failed++
		if wr.res.FirstError == "" {
			wr.res.FirstError = err.Error()
		}
		return
	}
	wr.lat = append(wr.lat, time.Since(start))
}
