// Package machinedata serves what a machine reported, read-only, to the users of its
// client: history, SMART, events, inventory, drift baselines, and its collector
// configuration (the one thing here a user writes).
package machinedata

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
	Cache  cache.Store // the client's cached row is dropped when its default configuration changes
}

// machine is a live machine of the caller's client and the retention its licence gives.
type machine struct {
	id, clientID            string
	metricsDays, eventsDays int
}

// target is the caller and the machine id of the path. A malformed id is a machine that
// does not exist.
func target(r *http.Request) (principal.Principal, string, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return p, "", apperr.ErrUnauthenticated
	}
	id, ok := httpx.ParseID(r.PathValue("id"))
	if !ok {
		return p, "", certs.ErrMachineNotFound
	}
	return p, id, nil
}

// lookup finds the {id} of the path among the caller's client's live machines. Another
// client's machine, a deleted one and a malformed id are all the same 404.
func (d Deps) lookup(r *http.Request) (machine, error) {
	p, id, err := target(r)
	if err != nil {
		return machine{}, err
	}
	m := machine{id: id, clientID: p.ClientID}
	err = d.Pool.QueryRow(r.Context(), `
		SELECT lr.metrics_retention_days, lr.events_retention_days
		FROM machines m JOIN clients c ON c.id = m.client_id
		JOIN license_retention lr ON lr.license_tier = c.license_tier
		WHERE m.id = $1 AND m.client_id = $2 AND m.deleted_at IS NULL`, id, p.ClientID).Scan(&m.metricsDays, &m.eventsDays)
	if err != nil {
		return machine{}, db.Error(err, "machinedata: machine", db.On(db.NoRows, certs.ErrMachineNotFound))
	}
	return m, nil
}

// serve answers fn's value for the looked-up machine, or the error. Query parameters
// other than params, or repeated ones, are a 400 naming them.
func (d Deps) serve(params []string, fn func(ctx context.Context, q url.Values, m machine) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := d.lookup(r)
		if bad := httpx.QueryProblems(r.URL.Query(), params...); err == nil && len(bad) > 0 {
			err = apperr.InvalidFields(bad)
		}
		var v any
		if err == nil {
			v, err = fn(r.Context(), r.URL.Query(), m)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

// problems collects bad query parameters by name.
type problems map[string]string

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return apperr.InvalidFields(p)
}

// text returns the query parameter name, which must be valid UTF-8 without NUL or control
// characters (PostgreSQL refuses NUL in text, and nothing here legitimately has them) and
// at most max characters. Absent and empty are the same: "".
func (p problems) text(q url.Values, name string, max int) string {
	s := q.Get(name)
	switch {
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		p[name] = "must be text without control characters"
	case utf8.RuneCountInString(s) > max:
		p[name] = "must be at most " + strconv.Itoa(max) + " characters"
	default:
		return s
	}
	return ""
}
