// Package console serves the Trellis console: a browser page for operators
// and support staff that browses an organization's resource tree and shows
// why a decision came out as it did.
//
// The package serves static files only, embedded in the binary: an HTML
// page, a style sheet and plain ES modules. Everything the page shows it
// reads from the public API (the native /v1 routes and the
// WorkOS-compatible routes) with the API key the user signs in with, kept
// in the tab's sessionStorage; the console has no route of its own that
// reads or decides anything, and it decides nothing itself: allowed or
// denied, decided_by and the reason are the API's answer.
//
// Every response carries a strict Content-Security-Policy (no inline
// script or style, no eval, no other origin), so the page runs only the
// modules served here and talks only to the server that served it.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Path is the URL path the console is served under.
const Path = "/console"

// ContentSecurityPolicy is the policy every console response carries:
// scripts, styles and connections only from the serving origin, no inline
// code, no eval, no framing, no forms posted anywhere.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// Handler returns the handler of the console's page and assets, for
// requests under Path (GET and HEAD only; anything else is a 405, an
// unknown file a 404). It is safe for concurrent use.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("console: the embedded assets have no static directory: " + err.Error())
	}
	assets := http.StripPrefix(Path+"/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The assets change with the binary; a browser revalidates them.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the console serves GET and HEAD only", http.StatusMethodNotAllowed)
		case r.URL.Path == Path:
			http.Redirect(w, r, Path+"/", http.StatusMovedPermanently)
		case strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != Path+"/":
			// No directory listings.
			http.NotFound(w, r)
		default:
			assets.ServeHTTP(w, r)
		}
	})
}

// Mount returns a handler that serves the console under Path and every
// other request with next. A server without the console never calls it,
// so that /console is then whatever next answers (a 404).
func Mount(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	c := Handler()
	mux.Handle(Path, c)
	mux.Handle(Path+"/", c)
	return mux
}
