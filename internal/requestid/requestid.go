// Package requestid names every HTTP request with an id that its response
// carries in X-Request-ID (the header the WorkOS SDKs read into their
// exceptions' requestID) and that every log record written with the
// request's context carries as request_id, so a client's report can be
// found in the logs.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Header is the request and response header of the id.
const Header = "X-Request-ID"

// maxLen bounds an id a client sends.
const maxLen = 128

type ctxKey struct{}

// FromContext returns the id of the request ctx belongs to ("" outside a
// request served by Handler).
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Handler serves next with an id for every request: the client's
// X-Request-ID when it is 1–128 printable ASCII characters (so a caller
// can follow one id through several services), else a new random one. The
// id is set on the response before next runs, and is in the request's
// context (FromContext).
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !valid(id) {
			id = newID()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

func valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newID returns "req_" and 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return "req_" + hex.EncodeToString(b[:])
}

// LogHandler returns a slog.Handler that adds request_id to every record
// logged with a request's context (the *Context logging methods).
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := FromContext(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler {
	return logHandler{l.Handler.WithGroup(name)}
}
