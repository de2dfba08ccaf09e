package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// InvalidError is a request the service cannot answer as given. Field names
// the offending request field.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, msg string) error { return &InvalidError{Field: field, Message: msg} }

// StaleError means the requested revision was not applied within the wait
// bound; the service does not decide on older data.
type StaleError struct {
	Wanted, Applied int64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("revision %d is not applied yet (applied: %d)", e.Wanted, e.Applied)
}

// ErrUnavailable wraps failures of the data source the service depends on.
var ErrUnavailable = errors.New("data source unavailable")

// ErrNotReady means no data has been loaded yet: until the first load, the
// service cannot tell an allow from a deny, so it answers neither.
var ErrNotReady = errors.New("no data is loaded yet")

// ReasonOrganizationUnavailable is the policy's reason code for a decision
// about a quarantined organization (its data breaks a rule of the data
// model). The service answers it with *OrganizationUnavailableError, never
// as a deny.
const ReasonOrganizationUnavailable = "organization_unavailable"

// OrganizationUnavailableError means the policy answered a request about a
// quarantined organization: it is out of service until a valid change to
// its data lifts the quarantine; every other organization is served.
type OrganizationUnavailableError struct {
	OrganizationID string
}

func (e *OrganizationUnavailableError) Error() string {
	return "organization " + e.OrganizationID + " is unavailable: its data breaks a rule of the data model"
}

// Retry-After hints for the errors that ask a client to come back: data is
// being loaded, or an organization waits for a fix of its data.
const (
	RetryNotReady                = time.Second
	RetryOrganizationUnavailable = 30 * time.Second
)

// unavailableIn returns an *OrganizationUnavailableError when a policy value
// answers organization_unavailable: an object (a decision, a page,
// effective permissions) with that reason, or an array (a batch) holding
// one. A batch is answered as a whole or not at all.
func unavailableIn(v any) error {
	switch v := v.(type) {
	case map[string]any:
		reason, _ := v["reason"].(map[string]any)
		if code, _ := reason["code"].(string); code == ReasonOrganizationUnavailable {
			org, _ := reason["organization_id"].(string)
			return &OrganizationUnavailableError{OrganizationID: org}
		}
	case []any:
		for _, x := range v {
			if err := unavailableIn(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeDecision reads one decision from a policy value. Anything but an
// object whose "allowed" is a boolean is an error, so a malformed policy
// result can never read as an allow.
func decodeDecision(v any, d *Decision) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("decision is %T, not an object", v)
	}
	allowed, ok := obj["allowed"].(bool)
	if !ok {
		return errors.New(`decision has no boolean "allowed"`)
	}
	by, _ := obj["decided_by"].(string)
	reason, _ := obj["reason"].(map[string]any)
	*d = Decision{Allowed: allowed, DecidedBy: by, Reason: reason}
	return nil
}

// decodeJSON copies a JSON-shaped policy value into a typed result.
func decodeJSON(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
