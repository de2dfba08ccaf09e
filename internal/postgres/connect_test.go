package postgres_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectHints: a failed first connection says what to try.
func TestConnectHints(t *testing.T) {
	ctx := context.Background()
	addr := closedPort(t)
	_, err := postgres.Open(ctx, "postgres://trellis@"+addr+"/db?sslmode=disable", postgres.Config{})
	if !errors.Is(err, postgres.ErrUnreachable) || !strings.Contains(err.Error(), "is PostgreSQL running on "+addr+"?") {
		t.Errorf("nothing listening: %v", err)
	}
	if _, err := postgres.Open(ctx, "host=127.0.0.1 port="+strings.Split(addr, ":")[1]+" sslmode=disable", postgres.Config{}); err == nil || !strings.Contains(err.Error(), "running on "+addr) {
		t.Errorf("key=value DSN: %v", err)
	}

	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database"
	if _, err := postgres.Open(ctx, u.String(), postgres.Config{}); errors.Is(err, postgres.ErrUnreachable) || !strings.Contains(err.Error(), "createdb") {
		t.Errorf("an unknown database: %v", err)
	}
	q := u.Query()
	q.Del("sslmode")
	q.Set("sslmode", "require")
	u.RawQuery = q.Encode()
	if _, err := postgres.Open(ctx, u.String(), postgres.Config{}); err == nil || !strings.Contains(err.Error(), "sslmode=disable") {
		t.Errorf("TLS required of a server without it: %v", err)
	}
}

// TestOpenWaiting: an unreachable server is tried again until the wait
// is over; a reachable one connects at once.
func TestOpenWaiting(t *testing.T) {
	ctx := context.Background()
	retries := 0
	_, err := postgres.OpenWaiting(ctx, "postgres://trellis@"+closedPort(t)+"/db?sslmode=disable", postgres.Config{}, 900*time.Millisecond,
		func(error, time.Duration) { retries++ })
	if !errors.Is(err, postgres.ErrUnreachable) || retries == 0 {
		t.Errorf("OpenWaiting on a closed port: %v after %d retries", err, retries)
	}
	s, err := postgres.OpenWaiting(ctx, pgtest.URL(t), postgres.Config{}, time.Minute, func(err error, _ time.Duration) { t.Errorf("retried: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
