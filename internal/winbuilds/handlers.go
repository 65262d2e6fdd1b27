package winbuilds

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Source Source
	Logger *slog.Logger
	// Clock stamps the rows a refresh writes.
	Clock clock.Clock
}

// Refreshed is the answer to a refresh.
type Refreshed struct {
	Change
	Builds Grouped `json:"builds"`
}

// Refresh fetches both endoflife.date files, parses them and upserts the builds. Nothing
// is written unless both files were fetched and parsed: an upstream failure changes no row.
// now stamps the rows written and the audit entry.
func Refresh(ctx context.Context, pool *pgxpool.Pool, src Source, userID, ip string, now time.Time) (Refreshed, error) {
	client, server, err := src.Fetch(ctx)
	if err != nil {
		return Refreshed{}, err
	}
	builds, err := Parse(append(client, server...))
	if err != nil {
		return Refreshed{}, err
	}
	var nClient, nServer int
	for _, b := range builds {
		if b.OSType == "client" {
			nClient++
		} else {
			nServer++
		}
	}
	if nClient == 0 {
		return Refreshed{}, apperr.New(apperr.Upstream, "endoflife.date: windows.json lists no supported Windows client build")
	}
	if nServer == 0 {
		return Refreshed{}, apperr.New(apperr.Upstream, "endoflife.date: windows-server.json lists no supported Windows Server build")
	}
	ch, err := Upsert(ctx, pool, builds, now)
	if err != nil {
		return Refreshed{}, err
	}
	if err := audit.Log(ctx, pool, now, audit.Entry{UserID: userID, IP: ip, Action: "windows_builds_refreshed",
		Details: map[string]any{"inserted": ch.Inserted, "updated": ch.Updated, "unchanged": ch.Unchanged}}); err != nil {
		return Refreshed{}, err
	}
	g, err := List(ctx, pool)
	if err != nil {
		return Refreshed{}, err
	}
	return Refreshed{Change: ch, Builds: g}, nil
}

// HandleList is GET /api/admin/windows-builds: the builds grouped by type.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, err := List(r.Context(), d.Pool)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, g)
	})
}

// HandleRefresh is POST /api/admin/windows-builds/refresh.
func HandleRefresh(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principal.From(r.Context())
		out, err := Refresh(r.Context(), d.Pool, d.Source, p.UserID, httpx.ClientIP(r), d.Clock.Now())
		if err != nil {
			if ae, ok := apperr.As(err); ok && ae.Code == apperr.Upstream {
				d.Logger.WarnContext(r.Context(), "windows builds refresh failed", "error", ae.Message)
			}
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
