package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// API speaks one server's HTTP API: where each kind of request goes, how
// it is encoded and how its answer reads. Its methods must be safe for
// concurrent use.
type API interface {
	// Encode returns the path (from the server's root) and the JSON body
	// of a POST for r.
	Encode(r Request) (path string, body []byte, err error)
	// Decode reads the body of a 200 answer to r. It fails when the body
	// does not have the shape of an answer; it does not compare the answer
	// with the Oracle's (that is Request.Verify).
	Decode(r Request, body []byte) (Answer, error)
}

// Answer is a decoded answer: one decision per check of a check or batch
// request, or a page of ids for a list.
type Answer struct {
	Allowed []bool
	IDs     []string
	// More says the server has a next page.
	More bool
}

// Verify compares a with the Oracle's answers to r; the error says what
// differs first.
func (r Request) Verify(a Answer) error {
	if r.List != nil {
		if !slices.Equal(a.IDs, r.List.Want) {
			return fmt.Errorf("list %s: got %d ids %.200q, want %d %.200q", r.List.Permission, len(a.IDs), a.IDs, len(r.List.Want), r.List.Want)
		}
		if a.More != r.List.WantMore {
			return fmt.Errorf("list %s: got more=%t, want %t", r.List.Permission, a.More, r.List.WantMore)
		}
		return nil
	}
	if len(a.Allowed) != len(r.Checks) {
		return fmt.Errorf("got %d decisions for %d checks", len(a.Allowed), len(r.Checks))
	}
	for i, q := range r.Checks {
		if a.Allowed[i] != q.Want {
			return fmt.Errorf("check %d of %d, %s on %s: got allowed=%t, want %t", i+1, len(r.Checks), q.Permission, q.ResourceID, a.Allowed[i], q.Want)
		}
	}
	return nil
}

// TrellisAPI is Trellis's native API: POST /v1/check, /v1/check/batch and
// /v1/list-resources with the raw token in the body.
type TrellisAPI struct{}

// Encode implements API.
func (TrellisAPI) Encode(r Request) (string, []byte, error) {
	path, in := trellisInput(r)
	if in == nil {
		return "", nil, fmt.Errorf("a %s request with %d checks and no list question", r.Kind, len(r.Checks))
	}
	b, err := json.Marshal(in)
	return path, b, err
}

// trellisInput returns the native route and request body of r; nil when r
// asks nothing (a check with no or several checks).
func trellisInput(r Request) (path string, input any) {
	switch {
	case r.List != nil:
		return "/v1/list-resources", listInput{Token: r.Token, Permission: r.List.Permission, Limit: r.List.Limit}
	case r.Kind == KindBatch:
		in := batchInput{Token: r.Token, Checks: make([]checkItem, len(r.Checks))}
		for i, q := range r.Checks {
			in.Checks[i] = checkItem{Permission: q.Permission, Resource: resourceRef{ID: q.ResourceID}}
		}
		return "/v1/check/batch", in
	case len(r.Checks) == 1:
		q := r.Checks[0]
		return "/v1/check", checkInput{Token: r.Token, checkItem: checkItem{Permission: q.Permission, Resource: resourceRef{ID: q.ResourceID}}}
	}
	return "", nil
}

// Decode implements API.
func (TrellisAPI) Decode(r Request, body []byte) (Answer, error) {
	switch {
	case r.List != nil:
		var d struct {
			IDs        []string        `json:"resource_ids"`
			NextCursor string          `json:"next_cursor"`
			Reason     json.RawMessage `json:"reason"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return Answer{}, err
		}
		// A page the policy could not list carries a reason; an empty
		// page does not.
		if len(d.Reason) > 0 && string(d.Reason) != "null" {
			return Answer{}, fmt.Errorf("the list failed: %s", d.Reason)
		}
		return Answer{IDs: d.IDs, More: d.NextCursor != ""}, nil
	case r.Kind == KindBatch:
		var d struct {
			Results []decision `json:"results"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return Answer{}, err
		}
		if d.Results == nil {
			return Answer{}, errors.New(`no "results" in the answer`)
		}
		return decisions(d.Results)
	}
	var d decision
	if err := json.Unmarshal(body, &d); err != nil {
		return Answer{}, err
	}
	return decisions([]decision{d})
}

// OPAAPI is a stock OPA's Data API on the Trellis bundle: POST
// /v1/data/trellis/edge/{check,batch,list_resources} with the same fields
// as Trellis's native API under "input", the raw token verified in Rego.
type OPAAPI struct{}

// Encode implements API.
func (OPAAPI) Encode(r Request) (string, []byte, error) {
	path := "/v1/data/trellis/edge/check"
	switch {
	case r.List != nil:
		path = "/v1/data/trellis/edge/list_resources"
	case r.Kind == KindBatch:
		path = "/v1/data/trellis/edge/batch"
	}
	_, in := trellisInput(r)
	if in == nil {
		return "", nil, fmt.Errorf("a %s request with %d checks and no list question", r.Kind, len(r.Checks))
	}
	b, err := json.Marshal(struct {
		Input any `json:"input"`
	}{in})
	return path, b, err
}

// Decode implements API. An undefined result is an error.
func (OPAAPI) Decode(r Request, body []byte) (Answer, error) {
	var d struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return Answer{}, err
	}
	if len(d.Result) == 0 || string(d.Result) == "null" {
		return Answer{}, errors.New(`no "result" in the answer (undefined)`)
	}
	switch {
	case r.List != nil:
		var p struct {
			IDs     []string        `json:"ids"`
			HasMore bool            `json:"has_more"`
			Reason  json.RawMessage `json:"reason"`
		}
		if err := json.Unmarshal(d.Result, &p); err != nil {
			return Answer{}, err
		}
		if len(p.Reason) > 0 && string(p.Reason) != "null" {
			return Answer{}, fmt.Errorf("the list failed: %s", p.Reason)
		}
		return Answer{IDs: p.IDs, More: p.HasMore}, nil
	case r.Kind == KindBatch:
		var ds []decision
		if err := json.Unmarshal(d.Result, &ds); err != nil {
			return Answer{}, err
		}
		return decisions(ds)
	}
	var one decision
	if err := json.Unmarshal(d.Result, &one); err != nil {
		return Answer{}, err
	}
	return decisions([]decision{one})
}

type checkItem struct {
	Permission string      `json:"permission"`
	Resource   resourceRef `json:"resource"`
}

type checkInput struct {
	Token string `json:"token"`
	checkItem
}

type batchInput struct {
	Token  string      `json:"token"`
	Checks []checkItem `json:"checks"`
}

type listInput struct {
	Token      string `json:"token"`
	Permission string `json:"permission"`
	Limit      int    `json:"limit"`
}

type resourceRef struct {
	ID string `json:"id"`
}

// decision is the part of a decision the load test reads.
type decision struct {
	Allowed *bool `json:"allowed"`
}

// decisions returns the allowed values of ds; a decision without one is
// an error.
func decisions(ds []decision) (Answer, error) {
	a := Answer{Allowed: make([]bool, len(ds))}
	for i, d := range ds {
		if d.Allowed == nil {
			return Answer{}, fmt.Errorf(`decision %d has no "allowed"`, i+1)
		}
		a.Allowed[i] = *d.Allowed
	}
	return a, nil
}
