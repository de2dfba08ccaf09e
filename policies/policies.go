// Package policies embeds Trellis's Rego policies so the binary carries the
// exact policies that `opa test policies/` tests: the core package trellis
// (policies/trellis) and the stock-OPA edge entrypoints, package trellis.edge
// (policies/edge), which bundles ship alongside it. It also embeds
// policies/baseline, the hand-written RBAC rule that `trellis bench http`
// measures Trellis against on stock OPA, which is no part of Trellis. Export
// writes the core's modules and its test fixture to a directory, so a team
// can run stock `opa test` on its extensions against them.
package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
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

// ExtensionPrefix is the package path under which teams write their own
// Rego (README "Extensions"): package trellis.ext.<name>.
const ExtensionPrefix = "trellis.ext."

// Extensions reads the extension modules in dir and its subdirectories
// (*.rego, tests excluded), keyed "ext/<path>", for adding to Modules. Each
// must parse and be of a package trellis.ext.<name> (or below it), so it
// cannot define, override or shadow a rule of the core. With them comes the
// module of package trellis.extension_set, whose set names holds each
// <name>, and its set conditions those with grant conditions (deny_grant):
// it is how the core finds the extensions (policies/trellis/
// extensions.rego). An empty dir is an error, not a silent no-op.
func Extensions(dir string) (map[string]string, error) {
	mods := map[string]string{}
	names, conditions := map[string]bool{}, map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		name, _, _ := strings.Cut(strings.TrimPrefix(pkg, ExtensionPrefix), ".")
		if !strings.HasPrefix(pkg, ExtensionPrefix) || name == "" {
			return fmt.Errorf("%s: package %s: an extension's package is %s<name>, so it cannot touch the core's rules", path, pkg, ExtensionPrefix)
		}
		for _, r := range m.Rules {
			if len(r.Head.Reference) == 0 {
				continue
			}
			rule := r.Head.Reference[0].String()
			if rule != "deny" && rule != "deny_grant" {
				continue
			}
			switch {
			case pkg != ExtensionPrefix+name:
				return fmt.Errorf("%s:%d: a %s rule belongs in package %s%s itself, where the core reads it", path, r.Location.Row, rule, ExtensionPrefix, name)
			case r.Head.RuleKind() != ast.MultiValue || len(r.Head.Reference) > 1:
				return fmt.Errorf("%s:%d: %s must be a set of denials (%s contains {\"code\": …, \"message\": …} if …)", path, r.Location.Row, rule, rule)
			}
			if rule == "deny_grant" {
				conditions[name] = true
			}
		}
		rel, _ := filepath.Rel(dir, path)
		mods["ext/"+filepath.ToSlash(rel)] = string(src)
		names[name] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--policy-dir: %w", err)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("--policy-dir %s: no Rego modules (*.rego, tests aside)", dir)
	}
	set := "package trellis.extension_set\n\nnames := " + regoSet(names) + "\n"
	if len(conditions) > 0 {
		set += "\nconditions := " + regoSet(conditions) + "\n"
	}
	mods[ExtensionSetModule] = set
	return mods, nil
}

// regoSet is the Rego set of the names in set, sorted.
func regoSet(set map[string]bool) string {
	quoted := make([]string, 0, len(set))
	for n := range set {
		quoted = append(quoted, strconv.Quote(n))
	}
	slices.Sort(quoted)
	return "{" + strings.Join(quoted, ", ") + "}"
}

// ExtensionSetModule is the name of the module Extensions generates.
const ExtensionSetModule = "ext/.extension_set.rego"
