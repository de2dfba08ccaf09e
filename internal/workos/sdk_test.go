package workos_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/workos/sdktest"
)

// TestNodeSDK drives the handler with the unmodified official WorkOS Node
// SDK (sdktest/compat.mjs), installed with `npm ci` from the committed
// lockfile. The server is wired as `trellis serve --database-url` wires it:
// the handler over the PostgreSQL store (workosdb), whose change feed a
// follower applies to the real engine, so checks and discovery are the real
// policies' answers after a real round trip through the database. Node and npm are required: the test fails, naming
// what to install, unless -short or TRELLIS_SKIP_SDK_TEST=1 skips it
// explicitly.
func TestNodeSDK(t *testing.T) {
	if testing.Short() || os.Getenv("TRELLIS_SKIP_SDK_TEST") == "1" {
		t.Skip("skipped on request (-short or TRELLIS_SKIP_SDK_TEST=1)")
	}
	dir := sdktest.Dir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	e := newEnvOn(t, postgresBackend)
	run := exec.CommandContext(ctx, "node", "compat.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(), "TRELLIS_URL="+e.srv.URL, "TRELLIS_API_KEY="+testKey, "NODE_NO_WARNINGS=1")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("node compat.mjs against %s: %v\n%s", e.srv.URL, err, out)
	}
	t.Logf("%s", out)
}
