package postgres

import (
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// Write-path codes beyond model's Code constants.
const (
	// CodeNotFound: a delete names an entity that does not exist.
	CodeNotFound = "not_found"
	// CodeHasDependents: a delete would orphan other entities (a resource
	// with children or assignments without cascade_delete, a resource type
	// or permission still in use).
	CodeHasDependents = "has_dependents"
)

// ValidationError is a write the data model forbids. The whole batch was
// rolled back: the database is unchanged. Use errors.As to get it.
type ValidationError struct {
	// Index is the position of the offending change in the batch.
	Index int
	// Problem says what is wrong; Problem.Code is one of model's Code
	// constants or CodeNotFound, CodeHasDependents.
	model.Problem
}

// Error formats the problem with the change's position.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("change %d: %s", e.Index, e.Problem.String())
}

// problem returns a *ValidationError for change i.
func problem(i int, kind, id, field, code, format string, args ...any) *ValidationError {
	entity := kind
	if id != "" {
		entity += " " + id
	}
	return &ValidationError{Index: i, Problem: model.Problem{
		Entity: entity, Field: field, Code: code, Message: fmt.Sprintf(format, args...), Index: i,
	}}
}

// translate turns a constraint violation of change i into a
// *ValidationError; other errors are returned wrapped.
func translate(i int, kind, id string, op model.Op, err error) error {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return fmt.Errorf("change %d (%s %s): %w", i, kind, id, err)
	}
	switch pqErr.Code {
	case "23505": // unique_violation
		return problem(i, kind, id, "", model.CodeDuplicate, "conflicts with an existing %s (%s)", kind, pqErr.Detail)
	case "23503": // foreign_key_violation
		if op == model.OpDelete {
			return problem(i, kind, id, "", CodeHasDependents, "%s is still in use (%s)", kind, pqErr.Detail)
		}
		return problem(i, kind, id, "", model.CodeUnknownReference, "refers to something that does not exist (%s)", pqErr.Detail)
	case "23514", "23502", "22001", "23P01": // check, not null, too long, exclusion
		return problem(i, kind, id, "", model.CodeInvalid, "%s", pqErr.Message)
	}
	return fmt.Errorf("change %d (%s %s): %w", i, kind, id, err)
}
