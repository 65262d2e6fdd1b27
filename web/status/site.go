// Package statuspage is the public status page: static files (HTML, CSS, vanilla JS)
// that read GET /status. The CDN serves them from the dashboard bucket under
// /status-page/ (infra/stack/cdn.go); the local stack serves the same embedded files.
package statuspage

import (
	"embed"
	"io/fs"
	"net/http"
)

// Prefix is where the page is served, locally and on the CDN. It is not GET /status,
// the JSON route the page reads.
const Prefix = "/status-page/"

//go:embed index.html status.css status.js config.js
var files embed.FS

// Files are the page's files (for tests and tools).
func Files() fs.FS { return files }

// Handler serves the page under Prefix (and redirects Prefix without its slash).
func Handler() http.Handler {
	fileServer := http.StripPrefix(Prefix, http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
