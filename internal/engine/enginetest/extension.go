package enginetest

import (
	"strings"

	"github.com/trellis-authz/trellis/policies"
)

// Extended returns the core's policy modules with one extension, package
// trellis.ext.<name> holding the rules src, and the extension set
// policies.Extensions would make for it.
func Extended(name, src string) map[string]string {
	mods := policies.Modules()
	mods["ext/"+name+".rego"] = "package trellis.ext." + name + "\n\n" + src + "\n"
	set := "package trellis.extension_set\n\nnames := {\"" + name + "\"}\n"
	if strings.Contains(src, "deny_grant") {
		set += "\nconditions := {\"" + name + "\"}\n"
	}
	mods[policies.ExtensionSetModule] = set
	return mods
}
