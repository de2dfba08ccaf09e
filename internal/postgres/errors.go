package postgres

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

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

// ErrUnavailable is wrapped by the errors of Store calls that the database
// could not serve now but may serve later: it is unreachable (connection
// refused, reset or lost), out of connection slots or other resources
// (SQLSTATE class 53, e.g. 53300 too_many_connections), starting up or
// shutting down (57P01, 57P02, 57P03), or a write could not be serialized
// with concurrent writes within its retries (see the package doc). Nothing
// of a failed write is committed — unless the connection broke during
// COMMIT itself, which no client can tell from a failure before it. APIs
// answer it 503 with Retry-After.
var ErrUnavailable = errors.New("postgres: database unavailable")

// ErrReadOnly is wrapped by the errors of writes to a database that is
// read-only: a hot standby in recovery (or a server with
// default_transaction_read_only). Nothing was written; the write must go to
// the primary. APIs answer it 421 read_only.
var ErrReadOnly = errors.New("postgres: the database is a read-only standby")

// RetryAfter is the Retry-After (in seconds) that APIs send with a 503 for
// ErrUnavailable.
const RetryAfter = "1"

// unavailable reports whether err, from the driver, says the database
// cannot serve now (see ErrUnavailable). lib/pq reports a connection that
// broke (a FATAL error such as 57P01 on a live session, EOF, a reset) as
// driver.ErrBadConn, and one it could not open as a *net.OpError or, when
// the server refused the session, a *pq.Error.
func unavailable(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case pqerror.AdminShutdown, pqerror.CrashShutdown, pqerror.CannotConnectNow:
			return true
		}
		switch pqErr.Code.Class() {
		case "08", "53": // connection exception, insufficient resources
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &netErr)
}

// translateUnavailable wraps err with ErrUnavailable when it says the
// database cannot serve now; other errors (and nil) are returned as they
// are.
func translateUnavailable(err error) error {
	if err != nil && unavailable(err) && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// readOnlyFailure reports whether err may say that the server takes no
// writes: SQLSTATE 25006 (read_only_sql_transaction), or class 0A
// (feature_not_supported), which a hot standby answers to BEGIN ISOLATION
// LEVEL SERIALIZABLE. The caller confirms it with InRecovery.
func readOnlyFailure(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "25006" || pqErr.Code.Class() == "0A")
}

// serializationFailure reports whether PostgreSQL aborted a transaction so
// that concurrent transactions stay serializable (40001) or to break a
// deadlock (40P01): the transaction may be run again.
func serializationFailure(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == pqerror.TRSerializationFailure || pqErr.Code == pqerror.TRDeadlockDetected)
}

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
