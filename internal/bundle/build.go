// Package bundle builds, signs, reads and serves Trellis's OPA bundles: the
// policies, the data document at one revision (data.trellis_data), the token
// verification data for the stock-OPA edge (data.trellis_keys) and a
// .manifest, optionally signed in OPA's .signatures.json format. The tarball
// is a standard OPA bundle: stock `opa run` loads and verifies it with its
// ordinary keys + signing configuration.
//
// Bundles never carry data.trellis_host: the manifest claims that root, so a
// stock OPA refuses writes to it, but leaves it empty, so the core rules
// never trust a claims object there (see policies/edge).
package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/trellis-authz/trellis/internal/index"
)

// The data documents and roots a Trellis bundle owns.
const (
	// DataRoot holds the relationship data (package index's document).
	DataRoot = "trellis_data"
	// KeysRoot holds the token verification data of the stock-OPA edge.
	KeysRoot = "trellis_keys"
	// PolicyRoot holds the policies: packages trellis and trellis.edge.
	PolicyRoot = "trellis"
	// HostRoot is claimed but never filled: only an embedding host that
	// verifies tokens writes data.trellis_host.
	HostRoot = "trellis_host"
)

// Roots are the manifest roots of every Trellis bundle. They do not overlap.
var Roots = []string{PolicyRoot, DataRoot, HostRoot, KeysRoot}

// ContentType is the media type of a bundle response that tells OPA the
// server supports long polling.
const ContentType = "application/vnd.openpolicyagent.bundles"

// ErrUnknownOrganization is returned when an organization bundle is asked
// for an organization the data does not hold.
var ErrUnknownOrganization = errors.New("bundle: unknown organization")

// ErrOrganizationUnavailable is returned when an organization bundle is
// asked for an organization the data holds as quarantined (its data breaks
// a rule of the data model): there is no data of it to ship.
var ErrOrganizationUnavailable = errors.New("bundle: organization is quarantined")

// Keys is the token verification data a bundle ships as data.trellis_keys,
// with which package trellis.edge verifies raw session JWTs on a stock OPA.
// The fields mirror the token flags of `trellis serve`.
type Keys struct {
	Issuer          string          `json:"issuer"`
	Audience        string          `json:"audience"`
	Algorithms      []string        `json:"algorithms"`
	MembershipClaim string          `json:"membership_claim"`
	SkewSeconds     int64           `json:"skew_seconds"`
	JWKS            json.RawMessage `json:"jwks"` // the issuer's {"keys": [...]}
}

func (k *Keys) value() (any, error) {
	if k == nil {
		return map[string]any{}, nil
	}
	var jwks any
	if err := json.Unmarshal(k.JWKS, &jwks); err != nil {
		return nil, fmt.Errorf("bundle: keys: JWKS is not JSON: %w", err)
	}
	if m, ok := jwks.(map[string]any); !ok || m["keys"] == nil {
		return nil, errors.New(`bundle: keys: JWKS must be an object with "keys"`)
	}
	algs := make([]any, len(k.Algorithms))
	for i, a := range k.Algorithms {
		algs[i] = a
	}
	return map[string]any{
		"issuer":           k.Issuer,
		"audience":         k.Audience,
		"algorithms":       algs,
		"membership_claim": k.MembershipClaim,
		"skew_seconds":     k.SkewSeconds,
		"jwks":             jwks,
	}, nil
}

// Document is the data document at one revision.
type Document struct {
	// Revision is the data revision the document reflects.
	Revision int64
	// Data is the document: an ast.Object as package index builds it, or
	// the same shape as JSON Go values (map[string]any, []any, string,
	// json.Number, bool), as an OPA evaluation returns it. Build only reads
	// it.
	Data any
}

// Options configures Build. Zero fields get defaults.
type Options struct {
	// Modules are the Rego modules by path (required): policies.Modules().
	Modules map[string]string
	// Keys is shipped as data.trellis_keys; nil ships an empty object, and a
	// stock-OPA edge then denies every token (token_keys_unavailable).
	Keys *Keys
	// Signer signs the bundle; nil writes an unsigned bundle.
	Signer *Signer
	// Organization, when set, limits the data to that organization: its
	// resources, memberships, grants and roles, plus every environment role
	// and permission. A quarantined organization has no bundle
	// (ErrOrganizationUnavailable). The full bundle records the quarantined
	// organizations, so that edges answer organization_unavailable too.
	Organization string
	// Progress, when set, is called as the build advances, done of total
	// units of stage: "encoding" (object entries of data.json encoded; the
	// total is unknown, 0), then "compressing" (bytes of the bundle's files
	// archived and compressed, of all of them; the last call has done ==
	// total). It is called on the building goroutine.
	Progress func(stage string, done, total int64)
}

// Info describes a built bundle.
type Info struct {
	// Revision is the manifest revision: "<data revision>-<digest>", where
	// the digest covers the policies, the keys, the signing key id and
	// scope, and the organization, so it changes whenever any of them does.
	Revision string
	// DataRevision is the data revision of the document.
	DataRevision int64
	// Size is the size of the gzipped tarball in bytes.
	Size int64
	// DataBytes is the size of data.json before compression.
	DataBytes int64
	// Signed says whether the bundle has .signatures.json.
	Signed bool
}

// ETag returns the HTTP entity tag of the bundle: its revision, quoted.
func (i Info) ETag() string { return strconv.Quote(i.Revision) }

// Digest returns the part of a bundle revision that does not depend on the
// data: a digest of the modules, keys, signing identity and organization.
func Digest(opts Options) (string, error) {
	h := sha256.New()
	names := make([]string, 0, len(opts.Modules))
	for name := range opts.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(h, "module %q %d\n%s\n", name, len(opts.Modules[name]), opts.Modules[name])
	}
	keys, err := opts.Keys.value()
	if err != nil {
		return "", err
	}
	kb, _ := json.Marshal(keys) // JSON-shaped: cannot fail
	fmt.Fprintf(h, "keys %s\n", kb)
	if opts.Signer != nil {
		fmt.Fprintf(h, "signer %q %q %q\n", opts.Signer.alg, opts.Signer.keyID, opts.Signer.scope)
	}
	fmt.Fprintf(h, "org %q\n", opts.Organization)
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Build writes the bundle for doc to w as a gzipped tarball and describes
// it. It reads doc.Data without modifying it, so a document held by a store
// may be passed while decisions read it. data.json is encoded once, in
// memory, and hashed as it is written.
func Build(ctx context.Context, w io.Writer, doc Document, opts Options) (Info, error) {
	if len(opts.Modules) == 0 {
		return Info{}, errors.New("bundle: no policy modules")
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	digest, err := Digest(opts)
	if err != nil {
		return Info{}, err
	}
	data := doc.Data
	if opts.Organization != "" {
		if data, err = organizationSubset(data, opts.Organization); err != nil {
			return Info{}, err
		}
	}
	keys, err := opts.Keys.value()
	if err != nil {
		return Info{}, err
	}
	info := Info{Revision: fmt.Sprintf("%d-%s", doc.Revision, digest), DataRevision: doc.Revision}

	// data.json: {"trellis_data": …, "trellis_keys": …}, canonical.
	var dataJSON chunks
	enc := newEncoder(&dataJSON, func(n int64) { progress("encoding", n, 0) })
	_, _ = enc.w.WriteString(`{"` + DataRoot + `":`)
	enc.goValue(data)
	_, _ = enc.w.WriteString(`,"` + KeysRoot + `":`)
	enc.goValue(keys)
	_ = enc.w.WriteByte('}')
	if err := enc.flush(); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	info.DataBytes = int64(dataJSON.Len())

	manifest, err := canonical(map[string]any{
		"revision":     info.Revision,
		"roots":        stringsAny(Roots),
		"rego_version": 1,
		"metadata": map[string]any{
			"data_revision": doc.Revision,
			"organization":  opts.Organization,
		},
	})
	if err != nil {
		return Info{}, err
	}

	type file struct {
		name string // without the leading slash, as signatures name it
		body io.WriterTo
		size int
	}
	files := []file{{".manifest", bytes.NewBuffer(manifest), len(manifest)}, {"data.json", &dataJSON, dataJSON.Len()}}
	names := make([]string, 0, len(opts.Modules))
	for name := range opts.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".rego") || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
			return Info{}, fmt.Errorf("bundle: module path %q: want a relative path ending in .rego", name)
		}
		files = append(files, file{name, bytes.NewBufferString(opts.Modules[name]), len(opts.Modules[name])})
	}

	var signatures []byte
	if opts.Signer != nil {
		infos := make([]opabundle.FileInfo, len(files))
		for i, f := range files {
			// Structured files are written canonically, so hashing their
			// bytes equals OPA's hash of the parsed, key-sorted document.
			h := sha256.New()
			if _, err := writeTo(h, f.body); err != nil {
				return Info{}, err
			}
			infos[i] = opabundle.NewFile(f.name, hex.EncodeToString(h.Sum(nil)), string(opabundle.SHA256))
		}
		if signatures, err = opts.Signer.sign(infos); err != nil {
			return Info{}, err
		}
		info.Signed = true
	}

	archived := &progressWriter{total: int64(len(signatures)), report: func(done, total int64) { progress("compressing", done, total) }}
	for _, f := range files {
		archived.total += int64(f.size)
	}
	archived.report(0, archived.total)
	cw := &countingWriter{w: w}
	gz, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return Info{}, err
	}
	tw := tar.NewWriter(gz)
	archived.w = tw
	put := func(name string, body io.WriterTo, size int) error {
		hdr := &tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := writeTo(archived, body)
		return err
	}
	if signatures != nil {
		if err := put(".signatures.json", bytes.NewBuffer(signatures), len(signatures)); err != nil {
			return Info{}, fmt.Errorf("bundle: write: %w", err)
		}
	}
	for _, f := range files {
		if err := put(f.name, f.body, f.size); err != nil {
			return Info{}, fmt.Errorf("bundle: write: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return Info{}, fmt.Errorf("bundle: write: %w", err)
	}
	if err := gz.Close(); err != nil {
		return Info{}, fmt.Errorf("bundle: write: %w", err)
	}
	info.Size = cw.n
	return info, nil
}

// writeTo writes body to w without consuming it: files are read twice,
// to hash and to archive.
func writeTo(w io.Writer, body io.WriterTo) (int64, error) {
	if b, ok := body.(*bytes.Buffer); ok {
		n, err := w.Write(b.Bytes())
		return int64(n), err
	}
	return body.WriteTo(w)
}

func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf, nil)
	enc.goValue(v)
	if err := enc.flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

type countingWriter struct {
	w io.Writer
	n int64
}

// progressWriter writes to w, reporting the bytes written so far of total
// every progressBytes and when the last byte is written.
type progressWriter struct {
	w         io.Writer
	n, total  int64
	reportedN int64
	report    func(done, total int64)
}

// progressBytes is how many bytes a progressWriter writes between two
// reports.
const progressBytes = 4 << 20

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n-p.reportedN >= progressBytes || p.n == p.total {
		p.reportedN = p.n
		p.report(p.n, p.total)
	}
	return n, err
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// organizationSubset returns the part of doc one organization's decisions
// read. doc is not modified; the result shares its leaves.
func organizationSubset(doc any, org string) (map[string]any, error) {
	if obj, ok := doc.(ast.Object); ok {
		v, err := ast.JSON(obj)
		if err != nil {
			return nil, fmt.Errorf("bundle: convert document: %w", err)
		}
		doc = v
	}
	d, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bundle: document is %T, not an object", doc)
	}
	if index.Quarantined(d, org) {
		return nil, fmt.Errorf("%w: %s", ErrOrganizationUnavailable, org)
	}
	sub, ok := index.Organization(d, org)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownOrganization, org)
	}
	return sub, nil
}
