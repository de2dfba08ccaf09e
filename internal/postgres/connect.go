package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrUnreachable marks a connection failure that waiting may cure: nothing
// answers at the address (yet), as while PostgreSQL is starting.
var ErrUnreachable = errors.New("the database server is unreachable")

// connectError explains a failed first connection to dsn and says what to
// try; an unreachable server also wraps ErrUnreachable.
func connectError(err error, dsn string) error {
	msg := err.Error()
	var hint string
	unreachable := false
	var netErr net.Error
	switch {
	case strings.Contains(msg, "SSL is not enabled on the server"):
		hint = "the server does not speak TLS: add sslmode=disable to the URL (for a server on a trusted network only)"
	case strings.Contains(msg, "password authentication failed"), strings.Contains(msg, "no pg_hba.conf entry"):
		hint = "check the user and password in the URL, and that pg_hba.conf lets this host in"
	case strings.Contains(msg, "does not exist") && strings.Contains(msg, "database"):
		hint = "create the database (createdb NAME) or fix the database name in the URL"
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &netErr), strings.Contains(msg, "no such host"), strings.Contains(msg, "the database system is starting up"):
		hint, unreachable = fmt.Sprintf("is PostgreSQL running on %s?", hostPort(dsn)), true
	}
	if hint == "" {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	if unreachable {
		return fmt.Errorf("postgres: connect: %w (%w: %s)", err, ErrUnreachable, hint)
	}
	return fmt.Errorf("postgres: connect: %w (%s)", err, hint)
}

// hostPort returns the host and port a dsn (URL or key=value) names, with
// libpq's defaults.
func hostPort(dsn string) string {
	host, port := "localhost", "5432"
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if h := u.Hostname(); h != "" {
			host = h
		}
		if p := u.Port(); p != "" {
			port = p
		}
		return net.JoinHostPort(host, port)
	}
	for _, kv := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		}
	}
	return net.JoinHostPort(host, port)
}

// OpenWaiting is Open that, while the server is unreachable
// (ErrUnreachable), tries again with backoff for up to wait, logging each
// failure through onRetry; other errors fail at once.
func OpenWaiting(ctx context.Context, dsn string, cfg Config, wait time.Duration, onRetry func(err error, next time.Duration)) (*Store, error) {
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for {
		s, err := Open(ctx, dsn, cfg)
		if err == nil || !errors.Is(err, ErrUnreachable) || time.Now().Add(backoff).After(deadline) {
			return s, err
		}
		if onRetry != nil {
			onRetry(err, backoff)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
