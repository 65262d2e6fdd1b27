package httpx_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/httpx"
)

func TestTimeCursor(t *testing.T) {
	c := httpx.TimeCursor{At: time.Date(2026, 5, 4, 8, 0, 0, 123, time.UTC), ID: "7f9c1e4a-5a55-4a53-9d8e-111111111111"}
	got, ok := httpx.ParseTimeCursor(c.Encode())
	if !ok || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Fatalf("round trip: %+v, %v; want %+v", got, ok, c)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for name, s := range map[string]string{
		"not base64":   "%%%",
		"not json":     enc([]byte("nope")),
		"no time":      enc([]byte(`{"id":"7f9c1e4a-5a55-4a53-9d8e-111111111111"}`)),
		"bad id":       enc([]byte(`{"t":"2026-05-04T08:00:00Z","id":"1; DROP TABLE x"}`)),
		"nul in id":    enc([]byte(`{"t":"2026-05-04T08:00:00Z","id":"7f9c1e4a-5a55-4a53-9d8e-11111111111\u0000"}`)),
		"empty string": "",
	} {
		if c, ok := httpx.ParseTimeCursor(s); ok {
			t.Errorf("%s: accepted as %+v", name, c)
		}
	}
}
