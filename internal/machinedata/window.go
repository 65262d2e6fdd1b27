package machinedata

import (
	"net/url"
	"strconv"
	"time"
)

// Periods are the history shortcuts the dashboard offers.
var periods = map[string]time.Duration{
	"1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour,
}

// DefaultPeriod is the window when the request names none.
const DefaultPeriod = "24h"

// Window is the time range an answer covers, after the licence's retention.
type Window struct {
	// Period is the shortcut asked for; empty for an explicit from/to.
	Period string    `json:"period,omitempty"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// ClippedFrom is the start asked for when it lay before the retention: the answer
	// then starts at From, the oldest instant the licence keeps.
	ClippedFrom   *time.Time `json:"clipped_from,omitempty"`
	RetentionDays int        `json:"retention_days"`
}

// timeParam parses an optional RFC 3339 query parameter.
func (p problems) timeParam(q url.Values, name string) (time.Time, bool) {
	if !q.Has(name) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, q.Get(name))
	if err != nil {
		p[name] = "must be an RFC 3339 timestamp, e.g. 2026-05-04T08:00:00Z"
		return time.Time{}, false
	}
	return t.UTC(), true
}

// window reads period=1h|6h|24h|7d|30d (default 24h) or from&to (together, from before
// to, spanning at most the retention), and moves a start older than the retention up to
// its limit.
func (p problems) window(q url.Values, now time.Time, retentionDays int) Window {
	w := Window{RetentionDays: retentionDays}
	from, hasFrom := p.timeParam(q, "from")
	to, hasTo := p.timeParam(q, "to")
	switch {
	case q.Has("period") && (q.Has("from") || q.Has("to")):
		p["period"] = "give either period or from and to, not both"
	case q.Has("from") && !q.Has("to"):
		p["to"] = "is required with from"
	case q.Has("to") && !q.Has("from"):
		p["from"] = "is required with to"
	case hasFrom && hasTo:
		if !from.Before(to) {
			p["to"] = "must be after from"
		} else if to.Sub(from) > time.Duration(retentionDays)*24*time.Hour {
			p["from"] = "the range must not exceed the licence's retention of " + strconv.Itoa(retentionDays) + " days"
		}
		w.From, w.To = from, to
	case !q.Has("from") && !q.Has("to"):
		w.Period = DefaultPeriod
		if q.Has("period") {
			w.Period = q.Get("period")
		}
		d, ok := periods[w.Period]
		if !ok {
			p["period"] = "must be one of 1h, 6h, 24h, 7d, 30d"
		}
		w.From, w.To = now.Add(-d), now
	}
	if oldest := now.AddDate(0, 0, -retentionDays); w.From.Before(oldest) {
		asked := w.From
		w.From, w.ClippedFrom = oldest, &asked
	}
	return w
}
