package machinedata

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/db"
)

// Event is one event_logs row.
type Event struct {
	RecordedAt time.Time `json:"recorded_at"`
	Seq        int32     `json:"seq"`
	EventTime  time.Time `json:"event_time"`
	LogName    string    `json:"log_name"`
	Source     string    `json:"source"`
	EventID    *int32    `json:"event_id"`
	Level      string    `json:"level"`
	Message    string    `json:"message"`
}

// Events is a page of GET /api/machines/{id}/events.
type Events struct {
	MachineID     string  `json:"machine_id"`
	RetentionDays int     `json:"retention_days"`
	Events        []Event `json:"events"`
	// NextCursor fetches the next (older) page; absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Paging and filter bounds.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 500
	MaxSourceLen      = 255 // event_logs.source
	MaxSearchLen      = 200
)

var eventLevels = map[string]bool{"critical": true, "error": true, "warning": true, "information": true, "verbose": true}

// eventQuery is a validated events request.
type eventQuery struct {
	levels         []string
	source, search string
	from, to       *time.Time
	limit          int
	after          *eventKey
}

// eventKey is where a page ended: events are ordered by arrival, newest first.
type eventKey struct {
	recordedAt time.Time
	seq        int32
}

// encode makes the key an opaque cursor.
func (k eventKey) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(k.recordedAt.UnixMicro(), 10) + "." + strconv.Itoa(int(k.seq))))
}

func decodeEventKey(s string) (eventKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return eventKey{}, false
	}
	at, seq, ok := strings.Cut(string(b), ".")
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 32)
	if !ok || err1 != nil || err2 != nil || n < 0 {
		return eventKey{}, false
	}
	return eventKey{recordedAt: time.UnixMicro(us).UTC(), seq: int32(n)}, true
}

func (p problems) events(q url.Values) eventQuery {
	eq := eventQuery{limit: DefaultEventLimit}
	if q.Has("level") {
		for _, l := range strings.Split(q.Get("level"), ",") {
			l = strings.ToLower(strings.TrimSpace(l))
			if !eventLevels[l] {
				p["level"] = "must be critical, error, warning, information or verbose (several separated by commas)"
				break
			}
			eq.levels = append(eq.levels, l)
		}
	}
	eq.source = p.text(q, "source", MaxSourceLen)
	eq.search = p.text(q, "search", MaxSearchLen)
	if t, ok := p.timeParam(q, "from"); ok {
		eq.from = &t
	}
	if t, ok := p.timeParam(q, "to"); ok {
		eq.to = &t
	}
	if eq.from != nil && eq.to != nil && !eq.from.Before(*eq.to) {
		p["to"] = "must be after from"
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > MaxEventLimit {
			p["limit"] = "must be a whole number from 1 to " + strconv.Itoa(MaxEventLimit)
		}
		eq.limit = n
	}
	if q.Has("cursor") {
		k, ok := decodeEventKey(q.Get("cursor"))
		if !ok {
			p["cursor"] = "is not a cursor this API returned"
		}
		eq.after = &k
	}
	return eq
}

// HandleEvents is GET /api/machines/{id}/events: the machine's event log entries within
// the licence's events retention, newest first, filtered by level (one or a comma list),
// source (exact), event time (from inclusive, to exclusive) and a case-insensitive text
// search in the message, paged with an opaque cursor (keyset on arrival time and position:
// stable while new events arrive).
func HandleEvents(d Deps) http.Handler {
	return d.serve(func(ctx context.Context, q url.Values, m machine) (any, error) {
		bad := problems{}
		eq := bad.events(q)
		if err := bad.err(); err != nil {
			return nil, err
		}
		sql := `SELECT recorded_at, seq, event_time, log_name, source, event_id, level, message
			FROM event_logs WHERE machine_id = $1 AND recorded_at >= $2`
		args := []any{m.id, d.Clock.Now().AddDate(0, 0, -m.eventsDays)}
		where := func(cond string, v ...any) {
			for _, a := range v {
				args = append(args, a)
				cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
			}
			sql += " AND " + cond
		}
		if eq.levels != nil {
			where("level = ANY(?)", eq.levels)
		}
		if eq.source != "" {
			where("source = ?", eq.source)
		}
		if eq.search != "" {
			// position() rather than LIKE: the user's % and _ are plain characters.
			where("position(lower(?) in lower(message)) > 0", eq.search)
		}
		if eq.from != nil {
			where("event_time >= ?", *eq.from)
		}
		if eq.to != nil {
			where("event_time < ?", *eq.to)
		}
		if eq.after != nil {
			where("(recorded_at, seq) < (?, ?)", eq.after.recordedAt, eq.after.seq)
		}
		args = append(args, eq.limit+1)
		sql += " ORDER BY recorded_at DESC, seq DESC LIMIT $" + strconv.Itoa(len(args))
		rows, err := d.Pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, db.Error(err, "machinedata: events")
		}
		evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
			var e Event
			err := row.Scan(&e.RecordedAt, &e.Seq, &e.EventTime, &e.LogName, &e.Source, &e.EventID, &e.Level, &e.Message)
			e.RecordedAt, e.EventTime = e.RecordedAt.UTC(), e.EventTime.UTC()
			return e, err
		})
		if err != nil {
			return nil, db.Error(err, "machinedata: events")
		}
		out := Events{MachineID: m.id, RetentionDays: m.eventsDays, Events: nonNil(evs)}
		if len(evs) > eq.limit {
			last := evs[eq.limit-1]
			out.Events, out.NextCursor = evs[:eq.limit], eventKey{last.RecordedAt, last.Seq}.encode()
		}
		return out, nil
	})
}
