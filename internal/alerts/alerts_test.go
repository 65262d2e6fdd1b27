package alerts

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/apperr"
)

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery(url.Values{})
	if err != nil || q.State != "firing" || q.Limit != DefaultLimit {
		t.Fatalf("defaults: %+v %v", q, err)
	}
	c := cursor{At: mustTime(t, "2026-05-04T08:00:00Z"), ID: "7f9c1e4a-5a55-4a53-9d8e-111111111111"}.Encode()
	q, err = ParseQuery(url.Values{"state": {"open"}, "acknowledged": {"false"}, "cursor": {c}, "limit": {"200"}})
	if err != nil || q.State != "open" || q.Acknowledged == nil || *q.Acknowledged || q.After == nil || q.Limit != 200 {
		t.Fatalf("%+v %v", q, err)
	}
	for raw, field := range map[string]string{
		"state=closed": "state", "acknowledged=1": "acknowledged", "limit=x": "limit", "rule_id=1": "rule_id",
		"to=2026-13-01T00:00:00Z": "to", "cursor=e30": "cursor", "machine_id=a&machine_id=b": "machine_id", "x=1": "x",
		"from=2026-05-04T00:00:00Z&to=2026-05-04T00:00:00Z": "to",
	} {
		v, _ := url.ParseQuery(raw)
		_, err := ParseQuery(v)
		if e, ok := apperr.As(err); !ok || e.Fields[field] == "" {
			t.Errorf("%s: %v, want a 400 naming %s", raw, err, field)
		}
	}
}

func TestComment(t *testing.T) {
	if s, err := Comment("  line one\r\n\tline two  "); err != nil || s != "line one\r\n\tline two" {
		t.Errorf("%q %v", s, err)
	}
	for _, bad := range []string{strings.Repeat("ü", MaxComment+1), "a\x00b", "bell\a", string([]byte{0xff})} {
		if _, err := Comment(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Comment(strings.Repeat("ü", MaxComment)); err != nil {
		t.Error(err)
	}
}

func mustTime(t *testing.T, s string) (out time.Time) {
	t.Helper()
	out, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
