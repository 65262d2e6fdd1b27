package agentrelease

import (
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Cache  cache.Store // holds heartbeat's agent:version:<channel>
	Clock  clock.Clock
	Logger *slog.Logger
}

// HandleList is GET /api/admin/agent-versions: every channel's latest release.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := List(r.Context(), d.Pool)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"releases": list})
	})
}

type publishBody struct {
	Version   string              `json:"version"`
	Downloads map[string]Download `json:"downloads"`
	Notes     string              `json:"notes"`
}

// HandlePublish is PUT /api/admin/agent-versions/{channel} {version, downloads, notes?}.
func HandlePublish(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		channel := r.PathValue("channel")
		if err := CheckChannel(channel); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b publishBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		p, _ := principal.From(r.Context())
		rel, err := Publish(r.Context(), d.Pool, d.Cache, Release{Channel: channel, Version: b.Version, Downloads: b.Downloads, Notes: b.Notes},
			p.UserID, httpx.ClientIP(r), d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rel)
	})
}
