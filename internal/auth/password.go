package auth

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password policy (spec "Politique des Mots de Passe").
const (
	MinPasswordChars = 12
	// MaxPasswordBytes is bcrypt's limit: it ignores what follows, so longer passwords are
	// refused rather than silently truncated.
	MaxPasswordBytes = 72
)

// PasswordProblem says what is wrong with a new password under the policy — at least 12
// characters with an upper-case letter, a lower-case letter, a digit and a special
// character (punctuation or symbol), at most 72 bytes, no control characters — or "" when
// it is acceptable.
func PasswordProblem(p string) string {
	if !utf8.ValidString(p) {
		return "must be valid UTF-8 text"
	}
	if utf8.RuneCountInString(p) < MinPasswordChars {
		return "must be at least 12 characters long"
	}
	if len(p) > MaxPasswordBytes {
		return "must be at most 72 bytes long"
	}
	var upper, lower, digit, special bool
	for _, r := range p {
		switch {
		case unicode.IsControl(r):
			return "must not contain control characters"
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r):
			special = true
		}
	}
	var missing []string
	if !upper {
		missing = append(missing, "an upper-case letter")
	}
	if !lower {
		missing = append(missing, "a lower-case letter")
	}
	if !digit {
		missing = append(missing, "a digit")
	}
	if !special {
		missing = append(missing, "a special character")
	}
	if len(missing) > 0 {
		return "must contain " + strings.Join(missing, ", ")
	}
	return ""
}
