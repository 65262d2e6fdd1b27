package enrol

import (
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
)

//go:embed install.sh
var installTemplate string

// shellSafe tells whether s can sit inside single quotes in the script: URLs validated by
// the configuration always can; anything else is refused rather than escaped.
func shellSafe(s string) bool { return !strings.ContainsAny(s, "'\\\n\r\x00`$") }

// InstallScript is the installer with the API and download URLs filled in.
func InstallScript(publicAPIURL, downloadURL string) (string, bool) {
	api, dl := strings.TrimSuffix(publicAPIURL, "/"), strings.TrimSuffix(downloadURL, "/")
	if api == "" || !shellSafe(api) || !shellSafe(dl) {
		return "", false
	}
	return strings.NewReplacer("@@API_URL@@", api, "@@DOWNLOAD_URL@@", dl).Replace(installTemplate), true
}

// HandleInstallScript is GET /install.sh: the POSIX shell installer for Linux.
func HandleInstallScript(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		script, ok := InstallScript(d.PublicAPIURL, d.AgentDownloadURL)
		if !ok {
			d.Logger.ErrorContext(r.Context(), "install.sh unavailable: PUBLIC_API_URL is not configured")
			httpx.WriteError(w, r, d.Logger, apperr.New(apperr.Unavailable, "the installer is not configured on this server"))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/x-shellscript; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(script)))
		h.Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write([]byte(script))
	})
}
