// Package validate checks user input against the spec's rules (email, hostname, colour, group
// name) and what PostgreSQL and JSON can hold (text without NUL, dates before year 10000).
package validate

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors name the rule that failed; their text is safe to show to clients.
var (
	ErrEmail     = errors.New("must be an email address like name@example.com")
	ErrHostname  = errors.New("must be a hostname (RFC 1123: labels of letters, digits and hyphens, 1–63 characters, 253 in all)")
	ErrHexColor  = errors.New("must be a colour in the form #RRGGBB")
	ErrGroupName = errors.New("must be 1 to 50 characters after trimming spaces, without control characters")
)

// MaxEmailLen is RFC 5321's limit on a forward path (254 characters).
const MaxEmailLen = 254

// Email accepts a simplified RFC 5322 address: a dot-atom local part (letters, digits and
// !#$%&'*+/=?^_`{|}~- separated by single dots, at most 64 characters), "@", and a domain
// that is a hostname with at least two labels. Quoted local parts, comments and IP-literal
// domains are refused: no dashboard user needs them and they complicate every consumer.
func Email(s string) error {
	if len(s) > MaxEmailLen {
		return ErrEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > 64 || at == len(s)-1 {
		return ErrEmail
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return ErrEmail
	}
	for i := 0; i < len(local); i++ {
		if !atext(local[i]) && local[i] != '.' {
			return ErrEmail
		}
	}
	if Hostname(domain) != nil || !strings.Contains(strings.TrimSuffix(domain, "."), ".") || strings.HasSuffix(domain, ".") {
		return ErrEmail
	}
	return nil
}

func atext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

// Hostname accepts an RFC 1123 host name: dot-separated labels of ASCII letters, digits and
// hyphens, each 1–63 characters and neither starting nor ending with a hyphen (RFC 1123
// allows a leading digit), at most 253 characters in all; one trailing dot (the root) is
// allowed.
func Hostname(s string) error {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return ErrHostname
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ErrHostname
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return ErrHostname
			}
		}
	}
	return nil
}

// HexColor accepts exactly "#" followed by six hexadecimal digits, either case.
func HexColor(s string) error {
	if len(s) != 7 || s[0] != '#' {
		return ErrHexColor
	}
	for i := 1; i < 7; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return ErrHexColor
		}
	}
	return nil
}

// MaxGroupNameLen is the spec's limit, counted in characters (runes), after trimming.
const MaxGroupNameLen = 50

// GroupName trims surrounding white space and returns the name if it is valid UTF-8 of 1–50
// characters with no control characters.
func GroupName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", ErrGroupName
	}
	n := utf8.RuneCountInString(s)
	if n < 1 || n > MaxGroupNameLen {
		return "", ErrGroupName
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "", ErrGroupName
		}
	}
	return s, nil
}

// Text reports whether s is valid UTF-8 without control characters (NUL included): what a
// one-line text field may hold before it reaches PostgreSQL, which refuses NUL and invalid
// UTF-8 with an error instead of storing them.
func Text(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// MaxYear is the last year a date in the API may fall in: JSON (RFC 3339) cannot write a
// later one, and none is meaningful here.
const MaxYear = 9999

// Date reports whether t can be written back as RFC 3339 (years 1 to 9999, in UTC).
func Date(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= MaxYear
}
