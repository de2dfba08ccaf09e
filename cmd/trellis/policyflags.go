package main

import (
	"maps"
	"time"

	"github.com/spf13/pflag"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/policies"
)

// policyFlags choose the policies a command evaluates or ships: Trellis's
// own, and a team's extensions (README "Extensions").
type policyFlags struct {
	PolicyDir string
	Budget    time.Duration
}

func (p *policyFlags) register(fs *pflag.FlagSet, budget bool) {
	fs.StringVar(&p.PolicyDir, "policy-dir", "", "directory of your own Rego modules, packages trellis.ext.<name>: extensions that may deny what Trellis allows (README \"Extensions\")")
	if budget {
		fs.DurationVar(&p.Budget, "policy-budget", engine.DefaultBudget, "with --policy-dir: the longest one evaluation may take; past it the decision fails, and so denies")
	}
}

// modules returns Trellis's policy modules with the extensions.
func (p policyFlags) modules() (map[string]string, error) {
	mods := policies.Modules()
	if p.PolicyDir == "" {
		return mods, nil
	}
	ext, err := policies.Extensions(p.PolicyDir)
	if err != nil {
		return nil, err
	}
	maps.Copy(mods, ext)
	return mods, nil
}

// engineOptions are the options of the engine of a server.
func (p policyFlags) engineOptions() (engine.Options, error) {
	mods, err := p.modules()
	return engine.Options{Modules: mods, Budget: p.Budget}, err
}
