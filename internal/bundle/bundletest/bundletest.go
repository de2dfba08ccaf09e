// Package bundletest rewrites bundle tarballs for tests: it removes, edits
// and adds files while leaving signatures as they were, the way an attacker
// would tamper with a bundle.
package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// File returns one file of a gzipped tarball (nil if it has none).
func File(t testing.TB, raw []byte, name string) []byte {
	t.Helper()
	var out []byte
	rewrite(t, raw, func(n string, b []byte) ([]byte, bool) {
		if n == name {
			out = b
		}
		return b, true
	})
	return out
}

// Tamper returns raw with file name edited by f (nil removes it); any
// signature is left as it was. It fails t if there is no such file.
func Tamper(t testing.TB, raw []byte, name string, f func([]byte) []byte) []byte {
	t.Helper()
	found := false
	out := rewrite(t, raw, func(n string, b []byte) ([]byte, bool) {
		if n != name {
			return b, true
		}
		found = true
		if f == nil {
			return nil, false
		}
		return f(b), true
	})
	if !found {
		t.Fatalf("no %s in the bundle", name)
	}
	return out
}

// Add returns raw with one more file.
func Add(t testing.TB, raw []byte, name, body string) []byte {
	t.Helper()
	return rewrite(t, raw, nil, struct{ name, body string }{name, body})
}

func rewrite(t testing.TB, raw []byte, f func(string, []byte) ([]byte, bool), extra ...struct{ name, body string }) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		keep := true
		if f != nil {
			b, keep = f(hdr.Name, b)
		}
		if keep {
			put(hdr.Name, b)
		}
	}
	for _, e := range extra {
		put(e.name, []byte(e.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
