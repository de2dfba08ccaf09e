package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/console"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

// TestHandlerHeaders: every answer of the console, files and errors alike,
// carries the strict Content-Security-Policy and nosniff.
func TestHandlerHeaders(t *testing.T) {
	h := console.Handler()
	for _, tc := range []struct {
		name, method, path string
		status             int
		ctype              string
	}{
		{"page", "GET", "/console/", http.StatusOK, "text/html"},
		{"bare path redirects", "GET", "/console", http.StatusMovedPermanently, ""},
		{"module", "GET", "/console/js/main.js", http.StatusOK, "text/javascript"},
		{"style sheet", "GET", "/console/console.css", http.StatusOK, "text/css"},
		{"head", "HEAD", "/console/js/api.js", http.StatusOK, "text/javascript"},
		{"unknown file", "GET", "/console/js/nope.js", http.StatusNotFound, ""},
		{"no directory listing", "GET", "/console/js/", http.StatusNotFound, ""},
		{"no writes", "POST", "/console/", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, h, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q", got)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if got := resp.Header.Get("Content-Type"); tc.ctype != "" && !strings.HasPrefix(got, tc.ctype) {
				t.Errorf("Content-Type = %q, want %s", got, tc.ctype)
			}
		})
	}
}

// TestPolicyIsStrict: the policy names no other origin and allows no
// inline code or eval.
func TestPolicyIsStrict(t *testing.T) {
	p := console.ContentSecurityPolicy
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(p, bad) {
			t.Errorf("the policy contains %q: %s", bad, p)
		}
	}
	for _, d := range strings.Split(p, ";") { // data: URLs for images only
		if d = strings.TrimSpace(d); strings.Contains(d, "data:") && !strings.HasPrefix(d, "img-src ") {
			t.Errorf("the policy allows data: in %q", d)
		}
	}
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(p, want) {
			t.Errorf("the policy lacks %q: %s", want, p)
		}
	}
}

// TestAssetsHaveNoInlineCode reads the committed assets: the page has no
// inline script, style or handler (the policy would block them, and the
// page would break silently), every module it imports is served, and no
// asset names another origin.
func TestAssetsHaveNoInlineCode(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("index.html has inline code: %q", m)
		}
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, `src="`) {
			t.Errorf("a script without src: %s", m)
		}
	}
	h := console.Handler()
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	err = fs.WalkDir(os.DirFS("static"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(filepath.Join("static", path))
		if err != nil {
			return err
		}
		text := string(body)
		if m := regexp.MustCompile(`https?://`).FindString(text); m != "" {
			t.Errorf("%s names another origin (%s): the console must need no network", path, m)
		}
		if strings.Contains(text, "eval(") || strings.Contains(text, "new Function") || strings.Contains(text, "innerHTML =") {
			t.Errorf("%s evaluates or parses strings as code or markup", path)
		}
		for _, m := range imports.FindAllStringSubmatch(text, -1) {
			if resp := get(t, h, "GET", "/console/"+filepath.Dir(path)+"/"+m[1]); resp.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s, which is not served (%d)", path, m[1], resp.StatusCode)
			}
		}
		// Every file is served under Path as it is committed.
		resp := get(t, h, "GET", "/console/"+path)
		served, _ := io.ReadAll(resp.Body)
		if path != "index.html" && string(served) != text {
			t.Errorf("/console/%s is not the committed file", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMount: the console is served under Path, everything else by next.
func TestMount(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "next", http.StatusTeapot) })
	h := console.Mount(next)
	if resp := get(t, h, "GET", "/console/"); resp.StatusCode != http.StatusOK {
		t.Errorf("/console/: %d", resp.StatusCode)
	}
	for _, path := range []string{"/v1/check", "/consoles", "/"} {
		if resp := get(t, h, "GET", path); resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s: %d, want next's answer", path, resp.StatusCode)
		}
	}
}
