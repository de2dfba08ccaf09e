package engine

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// plainer converts AST values to the plain Go values the store holds (as
// ast.JSON does), boxing each distinct string value once. The data document
// repeats organization ids, type names, role keys and ancestor ids millions
// of times; a shared box is one heap object instead of one per use, which
// is less memory and, above all, less for the garbage collector to mark on
// every cycle while decisions allocate.
type plainer struct {
	strs map[string]any
}

// newPlainer returns a plainer for about n distinct strings: sizing the
// table up front spares it rehashing millions of entries as it grows.
func newPlainer(n int) *plainer { return &plainer{strs: make(map[string]any, n)} }

func (p *plainer) value(v ast.Value) (any, error) {
	switch v := v.(type) {
	case ast.String:
		s := string(v)
		if boxed, ok := p.strs[s]; ok {
			return boxed, nil
		}
		var boxed any = s
		p.strs[s] = boxed
		return boxed, nil
	case *ast.Array:
		out := make([]any, v.Len())
		for i := range out {
			x, err := p.value(v.Elem(i).Value)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case ast.Object:
		out := make(map[string]any, v.Len())
		err := v.Iter(func(k, x *ast.Term) error {
			key, isString := k.Value.(ast.String)
			if !isString {
				return fmt.Errorf("engine: object key %v is not a string", k)
			}
			val, err := p.value(x.Value)
			out[string(key)] = val
			return err
		})
		return out, err
	case ast.Number:
		return json.Number(v), nil
	case ast.Boolean:
		return bool(v), nil
	case ast.Null:
		return nil, nil
	}
	return ast.JSON(v)
}
