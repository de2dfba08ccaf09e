// Package policies embeds Trellis's Rego policies so the binary carries the
// exact policies that `opa test policies/` tests: the core package trellis
// (policies/trellis) and the stock-OPA edge entrypoints, package trellis.edge
// (policies/edge), which bundles ship alongside it. It also embeds
// policies/baseline, the hand-written RBAC rule that `trellis bench http`
// measures Trellis against on stock OPA, which is no part of Trellis.
package policies

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed trellis edge
var files embed.FS

//go:embed baseline/rbac.rego
var baseline string

// Baseline returns the module of package baseline: a minimal hierarchical
// RBAC rule as a team would write it by hand for stock OPA (boolean
// data.baseline.allow, no explanation), the comparison system opa-minimal
// of `trellis bench http`. Modules leaves it out.
func Baseline() string { return baseline }

// Modules returns the policy modules (tests excluded), keyed by their path
// relative to this directory. The caller owns the returned map.
func Modules() map[string]string {
	mods := map[string]string{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := files.ReadFile(path)
		mods[path] = string(src)
		return err
	})
	if err != nil {
		panic("policies: read embedded files: " + err.Error()) // the embed is fixed at build time
	}
	return mods
}
