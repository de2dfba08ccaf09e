package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
)

// Verification is how a bundle's signature is checked, as a stock OPA's
// keys + bundles.<name>.signing configuration does.
type Verification struct {
	// PublicKey is the PEM public key (or certificate) of the signer.
	PublicKey []byte
	// KeyID is the key's id; a bundle signed under another kid fails.
	KeyID string
	// Algorithm is RS256 or ES256 (default RS256).
	Algorithm string
	// Scope must equal the scope the bundle was signed with ("" for none).
	Scope string
}

// Contents is a verified bundle, ready to activate.
type Contents struct {
	// Revision is the manifest revision.
	Revision string
	// DataRevision is data.trellis_data.revision.
	DataRevision int64
	// Modules are the policies by path. The caller owns the map.
	Modules map[string]string
	// Data is data.trellis_data. The caller owns it.
	Data ast.Object
}

// ErrUnsigned is returned by Read when verification is required and the
// bundle carries no signature.
var ErrUnsigned = errors.New("bundle: missing .signatures.json")

// Read reads a gzipped bundle tarball with OPA's bundle reader. With v
// non-nil the signature is required and checked exactly as a stock OPA
// checks it: the JWT must verify with the key, the scope must match and the
// signed file list must equal the files present, each with its digest — so
// a modified, missing or extra file, a wrong key or no signature fails. It
// also checks what a Trellis edge needs: the manifest roots and a data
// document with an integer revision.
func Read(raw []byte, v *Verification) (Contents, error) {
	r := opabundle.NewReader(bytes.NewReader(raw)).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true)
	if v != nil {
		alg := v.Algorithm
		if alg == "" {
			alg = RS256
		}
		vc := opabundle.NewVerificationConfig(
			map[string]*keys.Config{v.KeyID: {Key: string(v.PublicKey), Algorithm: alg}},
			v.KeyID, v.Scope, nil)
		r = r.WithBundleVerificationConfig(vc)
	} else {
		r = r.WithSkipBundleVerification(true)
	}
	b, err := r.Read()
	if err != nil {
		if strings.Contains(err.Error(), "missing .signatures.json") {
			return Contents{}, fmt.Errorf("%w: %w", ErrUnsigned, err)
		}
		return Contents{}, fmt.Errorf("bundle: read: %w", err)
	}
	if b.Manifest.Roots == nil || !sameRoots(*b.Manifest.Roots, Roots) {
		return Contents{}, fmt.Errorf("bundle: manifest roots are %v, want %v", b.Manifest.Roots, Roots)
	}
	if _, ok := b.Data[HostRoot]; ok {
		return Contents{}, fmt.Errorf("bundle: carries data.%s, which only a host may write", HostRoot)
	}
	if len(b.Modules) == 0 {
		return Contents{}, errors.New("bundle: no policy modules")
	}
	c := Contents{Revision: b.Manifest.Revision, Modules: make(map[string]string, len(b.Modules))}
	for _, m := range b.Modules {
		c.Modules[strings.TrimPrefix(m.Path, "/")] = string(m.Raw)
	}
	doc, ok := b.Data[DataRoot]
	if !ok {
		return Contents{}, fmt.Errorf("bundle: no data.%s", DataRoot)
	}
	val, err := ast.InterfaceToValue(doc)
	if err != nil {
		return Contents{}, fmt.Errorf("bundle: data.%s: %w", DataRoot, err)
	}
	obj, ok := val.(ast.Object)
	if !ok {
		return Contents{}, fmt.Errorf("bundle: data.%s is not an object", DataRoot)
	}
	c.Data = obj
	t := obj.Get(ast.InternedTerm("revision"))
	if t == nil {
		return Contents{}, fmt.Errorf("bundle: data.%s has no revision", DataRoot)
	}
	rev, ok := t.Value.(ast.Number)
	if !ok {
		return Contents{}, fmt.Errorf("bundle: data.%s.revision is not a number", DataRoot)
	}
	if c.DataRevision, ok = rev.Int64(); !ok {
		return Contents{}, fmt.Errorf("bundle: data.%s.revision is not an integer", DataRoot)
	}
	return c, nil
}

func sameRoots(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	set := map[string]bool{}
	for _, r := range got {
		set[r] = true
	}
	for _, r := range want {
		if !set[r] {
			return false
		}
	}
	return true
}
