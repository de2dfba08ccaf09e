package engine

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// contextFree reports whether the answers of the extension modules mods
// depend on the data and the check alone, so that an answer holds for any
// other request with the same check, subject and token: no module reads
// the request's context (input.context, or input itself whole or by a
// variable key), calls a nondeterministic builtin (the clock, random
// numbers, the network: OPA marks them Nondeterministic), or reads data
// other than its own and core_allows (see readsContext).
// It is deliberately conservative: what it cannot tell is context.
func contextFree(mods map[string]*ast.Module) bool {
	free := true
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Ref:
				if readsContext(v) {
					free = false
				}
			case ast.Call:
				if nondeterministic(v[0].Value) {
					free = false
				}
			}
			return !free
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() && nondeterministic(e.Operator()) {
				free = false
			}
			return !free
		})
		if !free {
			return false
		}
	}
	return true
}

// Of the data, an extension reads its own (data.trellis.ext) and the
// core's core_allows, whose answer depends on what a check's does; any
// other data (other organizations' included) or core rule (which reads the
// raw input) makes it depend on more than the cache tracks.
var (
	extRoot    = ast.MustParseRef("data.trellis.ext")
	coreAllows = ast.MustParseRef("data.trellis.core_allows")
)

// readsContext reports whether reading r may make an answer depend on
// more than the check, its subject and token, and the data of both.
func readsContext(r ast.Ref) bool {
	switch {
	case r[0].Equal(ast.InputRootDocument):
		if len(r) == 1 {
			return true
		}
		key, ok := r[1].Value.(ast.String)
		return !ok || key == "context"
	case r[0].Equal(ast.DefaultRootDocument):
		return !r.HasPrefix(extRoot) && !r.HasPrefix(coreAllows)
	}
	return false
}

func nondeterministic(op ast.Value) bool {
	r, ok := op.(ast.Ref)
	if !ok {
		return false
	}
	b, ok := ast.BuiltinMap[r.String()]
	return ok && b.Nondeterministic
}
