package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// versionCommand prints the module version, the VCS revision it was built
// from (with "+dirty" for uncommitted changes) and the Go version; so does
// trellis --version.
func versionCommand() *cobra.Command {
	return newCommand("version", "print the version, the VCS revision and the Go version",
		"Print the version, the VCS revision built from and the Go version.",
		func(*pflag.FlagSet) runFunc {
			return func(_ context.Context, _ []string, stdout, _ io.Writer) error {
				_, err := fmt.Fprintln(stdout, versionLine())
				return err
			}
		})
}

func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "trellis (no build information)"
	}
	version, rev, dirty := info.Main.Version, "", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("trellis %s (revision %s%s, %s)", version, rev, dirty, info.GoVersion)
}
