package datafile

import (
	_ "embed"

	"github.com/trellis-authz/trellis/internal/model"
)

//go:embed demo.yaml
var demoYAML []byte

// Demo returns the embedded demo dataset (demo.yaml): organizations org_acme
// and org_globex, workspaces, projects and an app below them, and
// memberships om_alice … om_frank with organization and resource roles. Its
// resource and assignment ids are fixed so documentation can cite them.
//
// Each call parses the embedded file anew; the caller owns the result. Demo
// panics only if the embedded file is invalid, which a test rules out.
func Demo() *model.Dataset {
	d, err := Parse(demoYAML, FormatYAML)
	if err != nil {
		panic("datafile: embedded demo.yaml is invalid: " + err.Error())
	}
	return d
}
