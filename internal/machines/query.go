package machines

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/validate"
)

// List paging bounds.
const (
	DefaultLimit   = 50
	MaxLimit       = 200
	MaxSearchRunes = 100
)

// ListQuery is a validated GET /api/machines query.
type ListQuery struct {
	Search     string // substring of hostname or display name, any case; "" = all
	GroupID    string
	Status     Status
	OS         string // lower case
	CertStatus certs.Status
	Alerts     string // "firing": with a firing alert; "none": without
	Sort       string // a key of sorts, "-" prefixed for descending
	Limit      int
	After      *Cursor
}

// sortKey is one sort order: the SQL expression rows are ordered by (then by id), of a
// kind that says how a cursor carries its value. NULLs sort as the lowest value (a machine
// never seen is the oldest, a missing CPU reading below 0 %), so keyset paging compares
// plain values.
type sortKey struct {
	expr string
	kind byte // 's' text, 't' timestamp, 'f' number
}

var sorts = map[string]sortKey{
	"hostname":   {"LOWER(m.hostname)", 's'},
	"last_seen":  {"COALESCE(m.last_seen, '0001-01-01T00:00:00Z'::timestamptz)", 't'},
	"cpu":        {"COALESCE(m.last_cpu_percent, -1)", 'f'},
	"ram":        {"COALESCE(m.last_ram_percent, -1)", 'f'},
	"created_at": {"m.created_at", 't'},
}

// Cursor is the last row of a page: its sort key and id. The dashboard receives it opaque
// (base64url of this JSON) and sends it back for the next page; rows inserted meanwhile do
// not shift the pages, unlike an offset.
type Cursor struct {
	Sort string `json:"s"`
	Key  string `json:"k"`
	ID   string `json:"id"`
}

func (c Cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// value is the cursor's key as the type its sort compares.
func (c Cursor) value() (any, error) {
	switch sorts[strings.TrimPrefix(c.Sort, "-")].kind {
	case 't':
		return time.Parse(time.RFC3339Nano, c.Key)
	case 'f':
		return strconv.ParseFloat(c.Key, 64)
	}
	return c.Key, nil
}

// keyString renders a scanned sort value the way value parses it back.
func keyString(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func decodeCursor(s, sort string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c Cursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.Sort != sort {
		return nil, fmt.Errorf("not a cursor of this list and sort")
	}
	if _, ok := httpx.ParseID(c.ID); !ok {
		return nil, fmt.Errorf("not a cursor of this list")
	}
	if _, err := c.value(); err != nil || !validate.Text(c.Key) || len(c.Key) > 1024 {
		return nil, fmt.Errorf("not a cursor of this list")
	}
	return &c, nil
}

var osName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,50}$`)

// ParseListQuery validates the query string. Every bad parameter is named in the 400,
// unknown and repeated parameters included.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Sort: "hostname", Limit: DefaultLimit}
	bad := map[string]string{}
	one := func(name string) (string, bool) {
		vs, ok := v[name]
		if !ok {
			return "", false
		}
		if len(vs) > 1 {
			bad[name] = "given more than once"
			return "", false
		}
		return vs[0], true
	}
	for name := range v {
		switch name {
		case "search", "group", "status", "os", "cert_status", "alerts", "sort", "limit", "cursor":
		default:
			bad[name] = "unknown parameter"
		}
	}
	if s, ok := one("search"); ok {
		s = strings.TrimSpace(s)
		switch {
		case utf8.RuneCountInString(s) > MaxSearchRunes:
			bad["search"] = fmt.Sprintf("at most %d characters", MaxSearchRunes)
		case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
			bad["search"] = "must be text without control characters"
		default:
			q.Search = s
		}
	}
	if s, ok := one("group"); ok {
		if id, ok := httpx.ParseID(s); ok {
			q.GroupID = id
		} else {
			bad["group"] = "must be a group id (uuid)"
		}
	}
	if s, ok := one("status"); ok {
		if q.Status = Status(s); !oneOf(q.Status, statuses) {
			bad["status"] = "must be online, offline or alert"
		}
	}
	if s, ok := one("os"); ok {
		if osName.MatchString(s) {
			q.OS = strings.ToLower(s)
		} else {
			bad["os"] = "must be an OS name such as windows or linux"
		}
	}
	if s, ok := one("cert_status"); ok {
		if q.CertStatus = certs.Status(s); !oneOf(q.CertStatus, certStatuses) {
			bad["cert_status"] = "must be unknown, revoked, expired, expiring or valid"
		}
	}
	if s, ok := one("alerts"); ok {
		if s == "firing" || s == "none" {
			q.Alerts = s
		} else {
			bad["alerts"] = "must be firing (machines with a firing alert) or none"
		}
	}
	if s, ok := one("sort"); ok {
		if _, known := sorts[strings.TrimPrefix(s, "-")]; known && s != "" {
			q.Sort = s
		} else {
			bad["sort"] = "must be hostname, last_seen, cpu, ram or created_at, optionally prefixed by - (descending)"
		}
	}
	if s, ok := one("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			bad["limit"] = fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if s, ok := one("cursor"); ok && bad["sort"] == "" {
		c, err := decodeCursor(s, q.Sort)
		if err != nil {
			bad["cursor"] = err.Error() + ": start again without a cursor"
		}
		q.After = c
	}
	if len(bad) > 0 {
		return ListQuery{}, apperr.InvalidFields(bad)
	}
	return q, nil
}

func oneOf[T comparable](v T, set []T) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// filtered reports whether the query narrows the fleet (its total is not the client's
// machine count).
func (q ListQuery) filtered() bool {
	return q.Search != "" || q.GroupID != "" || q.Status != "" || q.OS != "" || q.CertStatus != "" || q.Alerts != ""
}

// cacheField names the query in the client's cached pages: the normalised parameters.
func (q ListQuery) cacheField() string {
	v := url.Values{}
	v.Set("search", strings.ToLower(q.Search))
	v.Set("group", q.GroupID)
	v.Set("status", string(q.Status))
	v.Set("os", q.OS)
	v.Set("cert_status", string(q.CertStatus))
	v.Set("alerts", q.Alerts)
	v.Set("sort", q.Sort)
	v.Set("limit", strconv.Itoa(q.Limit))
	if q.After != nil {
		v.Set("cursor", q.After.encode())
	}
	return v.Encode()
}
