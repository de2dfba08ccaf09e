// Package policies embeds Trellis's Rego policies so the binary carries the
// exact policies that `opa test policies/` tests: the core package trellis
// (policies/trellis) and the stock-OPA edge entrypoints, package trellis.edge
// (policies/edge), which bundles ship alongside it.
package policies

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed trellis edge
var files embed.FS

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
