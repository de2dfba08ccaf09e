// Package workosdb keeps the data of the WorkOS-compatible API in
// PostgreSQL: it implements workos.Store on a postgres.Store. Reads are
// SQL over the schema of package postgres, which already has the WorkOS
// shapes (ids, external ids, metadata, timestamps); every change to
// relationship data goes through postgres.Tx.Apply, the validated write
// path, so the data model's rules, the change-log triggers and revisions
// stay in one place. Only the columns the data model does not carry
// (organization external ids and metadata, updated_at) are written here
// directly, in the same transaction.
//
// It is the one package that knows both adapters (workos, postgres), which
// do not import each other; cmd/trellis wires it.
//
// Every Store method is one transaction: reads are read-only REPEATABLE
// READ transactions (one snapshot), writes are one postgres.Store.WriteTx
// that checks, writes and reads the result back, so a failed call changes
// nothing. Write transactions are SERIALIZABLE (package postgres retries
// them when concurrent writes conflict), so what a write checks still holds
// when it commits: of two concurrent creates of one natural key (a slug, an
// external id, a user in an organization) one answers 201 and the other,
// run again, finds the key taken and answers 409 — never two 201s. When the
// database is unavailable, a call fails with workos.ErrUnavailable.
package workosdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// Store is a workos.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pg *postgres.Store
}

// New returns a Store on pg, whose schema must be migrated. The caller
// keeps ownership of pg (and closes it).
func New(pg *postgres.Store) *Store {
	return &Store{pg: pg}
}

var _ workos.Store = (*Store)(nil)

// read runs fn in a read-only transaction that sees one snapshot
// (postgres.Store.ReadTx).
func (s *Store) read(ctx context.Context, fn func(q *sqlx.Tx) error) error {
	return translate(s.pg.ReadTx(ctx, fn))
}

// readAll runs one query of many rows in a read transaction (see read) and
// converts each row with conv (see selectRows).
func readAll[R, T any](ctx context.Context, s *Store, conv func(R) T, query string, args ...any) (out []T, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		out, err = selectRows(ctx, q, conv, query, args...)
		return err
	})
	return out, err
}

// write runs fn in one write transaction (postgres.Store.WriteTx) and
// returns the revision it produced.
func (s *Store) write(ctx context.Context, fn func(tx *postgres.Tx) error) (int64, error) {
	rev, err := s.pg.WriteTx(ctx, fn)
	if err != nil {
		return 0, translate(err)
	}
	return rev, nil
}

// apply applies one change.
func apply(tx *postgres.Tx, c model.Change, opts ...postgres.WriteOption) error {
	return tx.Apply([]model.Change{c}, opts...)
}

// claim fails with conflict when query, an existence test of a natural
// key, finds a row. The write transaction is SERIALIZABLE, so two writers
// cannot both find the key free and commit (see the package doc).
func claim(ctx context.Context, tx *postgres.Tx, conflict error, query string, args ...any) error {
	used, err := exists(ctx, tx.SQL(), query, args...)
	if err == nil && used {
		err = conflict
	}
	return err
}

// orgReferenced fails with an unknown reference when organization orgID,
// named in a request body, does not exist.
func orgReferenced(ctx context.Context, q sqlx.QueryerContext, orgID string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM organizations WHERE id = $1", orgID)
	if err == nil && !ok {
		err = unknown("organization_id", "organization %q does not exist", orgID)
	}
	return err
}

// touch sets updated_at of the row of table whose column col is key.
func touch(ctx context.Context, tx *postgres.Tx, table, col, key string) error {
	_, err := tx.SQL().ExecContext(ctx, "UPDATE "+table+" SET updated_at = now() WHERE "+col+" = $1", key)
	return err
}

// update applies c, an upsert of an existing row, and sets the row's
// updated_at (see touch).
func update(ctx context.Context, tx *postgres.Tx, c model.Change, table, col, key string) error {
	if err := apply(tx, c); err != nil {
		return err
	}
	return touch(ctx, tx, table, col, key)
}

// exists runs a query that selects one boolean.
func exists(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, q, &ok, "SELECT EXISTS ("+query+")", args...)
	return ok, err
}

// selectRows runs query on q and converts each row it returns with conv.
// The result is never nil when err is nil.
func selectRows[R, T any](ctx context.Context, q sqlx.QueryerContext, conv func(R) T, query string, args ...any) ([]T, error) {
	var rows []R
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return nil, err
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out, nil
}

// readOne looks key up with get in a read transaction (see Store.read).
func readOne[K, T any](ctx context.Context, s *Store, get func(context.Context, sqlx.QueryerContext, K) (T, error), key K) (T, error) {
	var v T
	err := s.read(ctx, func(q *sqlx.Tx) error {
		var err error
		v, err = get(ctx, q, key)
		return err
	})
	return v, err
}

// getOne runs a one-row query into dest; found is false on no rows.
func getOne(ctx context.Context, q sqlx.QueryerContext, dest any, query string, args ...any) (found bool, err error) {
	err = sqlx.GetContext(ctx, q, dest, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// wireFields maps the data model's field names in write-path problems to
// the request fields of the WorkOS API.
var wireFields = map[string]string{
	"type":          "resource_type_slug",
	"resource_type": "resource_type_slug",
	"parent_id":     "parent_resource_id",
	"parent_types":  "parent_type_slugs",
	"role":          "role_slug",
	"membership_id": "organization_membership_id",
}

// translate turns the write path's errors into the workos.Store contract:
// a missing entity wraps workos.ErrNotFound, a duplicate or an entity still
// in use wraps workos.ErrConflict, any other broken rule is a
// *workos.ValidationError with the model's code. A unique violation the
// checks here did not foresee (a concurrent writer outside Trellis) is a
// conflict too. A database that is unavailable (postgres.ErrUnavailable)
// wraps workos.ErrUnavailable, one that is read-only (postgres.ErrReadOnly)
// workos.ErrReadOnly. Other errors are returned as they are:
// internal failures.
func translate(err error) error {
	if errors.Is(err, postgres.ErrReadOnly) {
		return fmt.Errorf("%w: %w", workos.ErrReadOnly, err)
	}
	if errors.Is(err, postgres.ErrUnavailable) {
		return fmt.Errorf("%w: %w", workos.ErrUnavailable, err)
	}
	var ve *postgres.ValidationError
	if errors.As(err, &ve) {
		switch ve.Code {
		case postgres.CodeNotFound:
			return fmt.Errorf("%w: %s", workos.ErrNotFound, ve.Message)
		case postgres.CodeHasDependents, model.CodeDuplicate:
			return workos.Conflict("%s", ve.Message)
		}
		field := ve.Field
		if f, ok := wireFields[field]; ok {
			field = f
		}
		return &workos.ValidationError{Problems: []workos.Problem{{Field: field, Code: ve.Code, Message: ve.Message}}}
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" { // unique_violation
		return workos.Conflict("the request conflicts with data written concurrently; retry it")
	}
	return err
}

// unknown is a reference in the request that does not resolve.
func unknown(field, format string, args ...any) error {
	return workos.Invalid(field, model.CodeUnknownReference, format, args...)
}

// listQuery builds a keyset-paginated SELECT (workos.ListOptions).
type listQuery struct {
	where []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// and adds a condition.
func (q *listQuery) and(cond string) { q.where = append(q.where, cond) }

// sql returns base with the conditions, the cursor condition on key
// (compared bytewise, COLLATE "C") and the order and limit of o.
func (q *listQuery) sql(base, key string, o workos.ListOptions) string {
	dir, op := "ASC", ">"
	if o.Descending {
		dir, op = "DESC", "<"
	}
	if o.After != "" {
		q.and(fmt.Sprintf(`%s COLLATE "C" %s %s`, key, op, q.arg(o.After)))
	}
	var b strings.Builder
	b.WriteString(base)
	if len(q.where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(q.where, " AND "))
	}
	fmt.Fprintf(&b, ` ORDER BY %s COLLATE "C" %s`, key, dir)
	if o.Limit > 0 {
		fmt.Fprintf(&b, " LIMIT %s", q.arg(o.Limit))
	}
	return b.String()
}

// readInOrder runs query, which takes keys as an array in $1, in a read
// transaction and returns the rows it finds converted with conv, in the
// order of keys; keys that match no row are left out.
func readInOrder[R, T any](ctx context.Context, s *Store, conv func(R) T, query string, keys []string, key func(T) string) ([]T, error) {
	items, err := readAll(ctx, s, conv, query, pq.Array(keys))
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]T, len(items))
	for _, it := range items {
		byKey[key(it)] = it
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		if it, ok := byKey[k]; ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// metadata decodes an organization's jsonb metadata; values that are not
// strings (written by another program) are kept as their JSON text.
func metadata(raw []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode organization metadata: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			s = string(v)
		}
		out[k] = s
	}
	return out, nil
}
