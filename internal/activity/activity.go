// Package activity serves a client's audit log (activity_logs) to its users, newest first.
package activity

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Entry is one audited action.
type Entry struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Action    string          `json:"action"`
	User      *User           `json:"user"` // null for an action of no user (a job, an agent)
	MachineID *string         `json:"machine_id"`
	Details   json.RawMessage `json:"details"`
	IPAddress *string         `json:"ip_address"`
}

// User is who acted. Email is empty when the account is gone or is not the client's (a
// platform admin's actions show their id only).
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Page is one page of the log.
type Page struct {
	Entries    []Entry `json:"entries"`
	NextCursor *string `json:"next_cursor"` // null on the last page
}

// Query is a validated GET /api/activity query.
type Query struct {
	Action    string
	MachineID string
	Limit     int
	After     *cursor
}

// cursor is the last entry of a page. Pages follow the index (client_id, created_at DESC,
// id): newest first, ties by id.
type cursor = httpx.TimeCursor

var actionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,99}$`)

// ParseQuery validates the query string, naming each bad parameter.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Limit: DefaultLimit}
	bad := map[string]string{}
	for name, vs := range v {
		if len(vs) > 1 {
			bad[name] = "given more than once"
			continue
		}
		s := vs[0]
		switch name {
		case "action":
			if !actionName.MatchString(s) {
				bad[name] = "must be an action name such as machine_deleted"
			}
			q.Action = s
		case "machine_id":
			id, ok := httpx.ParseID(s)
			if !ok {
				bad[name] = "must be a machine id (uuid)"
			}
			q.MachineID = id
		case "limit":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxLimit {
				bad[name] = fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)
			}
			q.Limit = n
		case "cursor":
			c, ok := httpx.ParseTimeCursor(s)
			if !ok {
				bad[name] = "not a cursor of this log: start again without a cursor"
				continue
			}
			q.After = &c
		default:
			bad[name] = "unknown parameter"
		}
	}
	if len(bad) > 0 {
		return Query{}, apperr.InvalidFields(bad)
	}
	return q, nil
}

// List returns a page of the client's log. Only entries of that client: never another
// client's, never platform-level ones (client_id NULL).
func List(ctx context.Context, pool *pgxpool.Pool, clientID string, q Query) (Page, error) {
	a := []any{clientID}
	add := func(v any) string { a = append(a, v); return "$" + strconv.Itoa(len(a)) }
	where := []string{"l.client_id = $1"}
	if q.Action != "" {
		where = append(where, "l.action = "+add(q.Action))
	}
	if q.MachineID != "" {
		where = append(where, "l.machine_id = "+add(q.MachineID))
	}
	if q.After != nil {
		t, id := add(q.After.At), add(q.After.ID)
		where = append(where, fmt.Sprintf("(l.created_at < %[1]s OR (l.created_at = %[1]s AND l.id > %[2]s::uuid))", t, id))
	}
	rows, err := pool.Query(ctx, `
		SELECT l.id, l.created_at, l.action, l.user_id, u.email, l.machine_id, l.details, l.ip_address
		FROM activity_logs l LEFT JOIN users u ON u.id = l.user_id AND u.client_id = l.client_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY l.created_at DESC, l.id LIMIT `+add(q.Limit+1), a...)
	if err != nil {
		return Page{}, db.Error(err, "activity: list")
	}
	defer rows.Close()
	page := Page{Entries: make([]Entry, 0, q.Limit)}
	for rows.Next() {
		if len(page.Entries) == q.Limit {
			last := page.Entries[q.Limit-1]
			s := cursor{At: last.At, ID: last.ID}.Encode()
			page.NextCursor = &s
			break
		}
		var e Entry
		var userID, email *string
		if err := rows.Scan(&e.ID, &e.At, &e.Action, &userID, &email, &e.MachineID, &e.Details, &e.IPAddress); err != nil {
			return Page{}, db.Error(err, "activity: list")
		}
		if userID != nil {
			e.User = &User{ID: *userID}
			if email != nil {
				e.User.Email = *email
			}
		}
		page.Entries = append(page.Entries, e)
	}
	return page, db.Error(rows.Err(), "activity: list")
}

// Deps are what the handler needs.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
}

// HandleList is GET /api/activity?action=&machine_id=&limit=&cursor=.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal.From(r.Context())
		if !ok || p.ClientID == "" {
			httpx.WriteError(w, r, d.Logger, apperr.ErrUnauthenticated)
			return
		}
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		page, err := List(r.Context(), d.Pool, p.ClientID, q)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}
