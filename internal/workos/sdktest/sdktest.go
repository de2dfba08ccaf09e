// Package sdktest holds the scripts that drive Trellis with the official
// WorkOS Node SDK (installed from the committed package-lock.json), and Dir,
// which installs it for a Go test.
package sdktest

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Dir installs the SDK (npm ci from the committed lockfile, within 3
// minutes) and returns the directory of the scripts. A missing Node.js or
// npm fails the test with how to install them or skip it.
func Dir(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the WorkOS SDK tests need Node.js (≥ 20) and npm; install them, or set TRELLIS_SKIP_SDK_TEST=1 to skip this test", tool)
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("sdktest: no source path for the SDK scripts")
	}
	dir := filepath.Dir(file)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}
