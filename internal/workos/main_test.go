package workos_test

import (
	"testing"

	"github.com/trellis-authz/trellis/internal/pgtest"
)

// TestMain runs the tests with pgtest, which starts (and always removes) the
// throwaway PostgreSQL of the conformance suite's postgres backend.
func TestMain(m *testing.M) { pgtest.Main(m) }
