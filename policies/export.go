package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// FixtureModule is the path, relative to an export's directory, of the
// core's test fixture (policies/trellis/fixture_test.rego): package
// trellis_test, whose fixture is a data document in the shape
// internal/index builds, for a team's tests of its extensions.
const FixtureModule = "trellis/fixture_test.rego"

// ErrNotEmpty is returned by Export for a directory that already holds
// files, unless asked to write over them.
var ErrNotEmpty = errors.New("the directory is not empty")

// Export writes into dir what a team needs to run stock `opa test` on its
// extensions against the core: every module of Modules, byte for byte as
// the server compiles them, and the core's test fixture, FixtureModule.
// It creates dir if need be. A dir holding anything is refused with
// ErrNotEmpty unless force is set; then the files Export writes replace
// theirs and other files are left as they are (so export into a fresh
// directory to upgrade: a module the core no longer has would stay). It
// returns the paths written, relative to dir and slash-separated, sorted.
func Export(dir string, force bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("export: %w", err)
	case len(entries) > 0 && !force:
		return nil, fmt.Errorf("export to %s: %w", dir, ErrNotEmpty)
	}
	mods := Modules()
	fixture, err := files.ReadFile(FixtureModule)
	if err != nil {
		panic("policies: read embedded fixture: " + err.Error()) // the embed is fixed at build time
	}
	mods[FixtureModule] = string(fixture)
	written := make([]string, 0, len(mods))
	for rel := range mods {
		written = append(written, rel)
	}
	slices.Sort(written)
	for _, rel := range written {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if err := os.WriteFile(path, []byte(mods[rel]), 0o644); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	return written, nil
}
