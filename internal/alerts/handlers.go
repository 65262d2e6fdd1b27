package alerts

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/jsonfield"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
}

// maxAckBody fits a 1000-character comment written with escapes.
const maxAckBody = 16 << 10

// HandleList is GET /api/alerts?state=&severity=&machine_id=&rule_id=&acknowledged=&from=&to=&limit=&cursor=.
// Without state it lists the firing alerts; state=resolved with from/to is the history.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		page, err := List(r.Context(), d.Pool, a.ClientID, q)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}

// HandleGet is GET /api/alerts/{id}.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if bad := httpx.QueryProblems(r.URL.Query()); len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		alert, err := Get(r.Context(), d.Pool, a.ClientID, id)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, alert)
	})
}

// decodeOptional reads a JSON body that may be left out (no body: no members).
func decodeOptional(r *http.Request, dst any) error {
	body, err := httpx.ReadBody(r.Body, maxAckBody)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apperr.New(apperr.UnsupportedMedia, "Content-Type must be application/json")
	}
	return httpx.DecodeJSONBytes(body, dst)
}

type ackBody struct {
	Comment jsonfield.Member `json:"comment"`
}

// HandleAcknowledge is POST /api/alerts/{id}/acknowledge {comment?} (the body may be left
// out): any user of the client; 409 once the alert is resolved.
func HandleAcknowledge(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b ackBody
		if err := decodeOptional(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var comment string
		if b.Comment.Set && !b.Comment.Null() {
			s, ok := b.Comment.String()
			if ok {
				s, err = Comment(s)
			}
			if !ok || err != nil {
				httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(map[string]string{"comment": "must be a string of at most 1000 characters"}))
				return
			}
			comment = s
		}
		alert, err := Acknowledge(r.Context(), d.Pool, a, id, comment, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, alert)
	})
}
