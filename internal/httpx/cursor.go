package httpx

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// TimeCursor is the last row of a page in a list ordered by a time and then an id (newest
// first, ties by id): the keyset the next page starts after. Clients treat it as opaque.
type TimeCursor struct {
	At time.Time `json:"t"`
	ID string    `json:"id"`
}

// Encode is the cursor as a URL-safe string.
func (c TimeCursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseTimeCursor reads a cursor Encode wrote; ok is false for anything else (a cursor
// carries a time and a canonical id, or it is not one of ours).
func ParseTimeCursor(s string) (c TimeCursor, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.At.IsZero() {
		return TimeCursor{}, false
	}
	if c.ID, ok = ParseID(c.ID); !ok {
		return TimeCursor{}, false
	}
	return c, true
}
