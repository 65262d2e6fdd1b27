// Package jsonfield reads a request body member by member, so that a PATCH tells an absent
// member from a null one and every bad member is reported by name (a 400 naming the field).
package jsonfield

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Member is one member of a JSON object, kept raw until its owner checks it. Declare body
// structs with Member fields and decode them with httpx.DecodeJSON (unknown members are
// still refused).
type Member struct {
	Set bool // present in the body, possibly null
	raw []byte
}

// UnmarshalJSON keeps the member's raw value; it never fails, so a wrong type is reported
// by the owner under the member's name rather than as malformed JSON.
func (m *Member) UnmarshalJSON(b []byte) error {
	m.Set, m.raw = true, append([]byte(nil), b...)
	return nil
}

// Null reports whether the member is present and null.
func (m Member) Null() bool { return m.Set && bytes.Equal(bytes.TrimSpace(m.raw), []byte("null")) }

// String decodes a present, non-null string member.
func (m Member) String() (string, bool) {
	var s string
	return s, !m.Null() && json.Unmarshal(m.raw, &s) == nil
}

// Bool decodes a present, non-null boolean member.
func (m Member) Bool() (bool, bool) {
	var b bool
	return b, !m.Null() && json.Unmarshal(m.raw, &b) == nil
}

// Int decodes a present, non-null integer member (no fraction, no exponent overflow).
func (m Member) Int() (int, bool) {
	var n int
	return n, !m.Null() && json.Unmarshal(m.raw, &n) == nil
}

// Decode decodes a present, non-null member into v.
func (m Member) Decode(v any) bool { return !m.Null() && json.Unmarshal(m.raw, v) == nil }

// Text trims s and checks it is valid UTF-8 of min to max characters without control
// characters; the error text is safe to show.
func Text(s string, min, max int) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < min || n > max || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		if min > 0 {
			return s, fmt.Errorf("must be %d to %d characters of text after trimming spaces", min, max)
		}
		return s, fmt.Errorf("must be at most %d characters of text", max)
	}
	return s, nil
}
