package postgres

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/lib/pq"
)

// TestUnavailable: the driver errors that mean "the database cannot serve
// now" are told apart from every other failure.
func TestUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("begin: %w", refused), true},
		{"broken connection", fmt.Errorf("commit: %w", driver.ErrBadConn), true},
		{"too many connections", &pq.Error{Code: "53300"}, true},
		{"out of memory", &pq.Error{Code: "53200"}, true},
		{"cannot connect now", &pq.Error{Code: "57P03"}, true},
		{"admin shutdown", &pq.Error{Code: "57P01"}, true},
		{"connection failure", &pq.Error{Code: "08006"}, true},
		{"serialization failure", &pq.Error{Code: "40001"}, false},
		{"unique violation", &pq.Error{Code: "23505"}, false},
		{"syntax error", &pq.Error{Code: "42601"}, false},
		{"other", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := unavailable(tc.err); got != tc.want {
				t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			err := translateUnavailable(tc.err)
			if got := errors.Is(err, ErrUnavailable); got != tc.want {
				t.Errorf("translateUnavailable(%v) is ErrUnavailable: %v, want %v", tc.err, got, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("translateUnavailable(%v) = %v, which no longer wraps it", tc.err, err)
			}
		})
	}
}
