package authz

import (
	"encoding/json"
	"errors"
	"fmt"
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
