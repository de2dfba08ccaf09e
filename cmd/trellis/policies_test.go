package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/policies"
)

func TestPoliciesExportCommand(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "core")
	var out bytes.Buffer
	if err := run(ctx, []string{"policies", "export", dir}, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if want := len(policies.Modules()) + 1; len(lines) != want {
		t.Errorf("%d lines, want %d (the modules and the fixture):\n%s", len(lines), want, out.String())
	}
	for _, rel := range []string{"trellis/authz.rego", "edge/edge.rego", policies.FixtureModule} {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if !strings.Contains(out.String(), path+"\n") {
			t.Errorf("output does not name %s:\n%s", path, out.String())
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("not written: %v", err)
		}
	}

	out.Reset()
	err := run(ctx, []string{"policies", "export", dir}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("a non-empty DIR: %v, want a refusal naming --force", err)
	}
	if out.Len() > 0 {
		t.Errorf("a refusal printed:\n%s", out.String())
	}
	if err := run(ctx, []string{"policies", "export", "--force", dir}, &out, &out); err != nil {
		t.Errorf("--force: %v", err)
	}
	if err := run(ctx, []string{"policies", "export"}, &out, &out); err == nil || !strings.Contains(err.Error(), "DIR") {
		t.Errorf("no DIR: %v", err)
	}
	if err := run(ctx, []string{"policies", "exp", dir}, &out, &out); err == nil || !strings.Contains(err.Error(), "did you mean export") {
		t.Errorf("a part of the subcommand: %v", err)
	}
}
