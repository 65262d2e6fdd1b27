// Package apperr is the one error type handlers return to clients, and its code → status table.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error for clients. The set is small on purpose.
type Code string

const (
	Invalid                Code = "invalid"                  // malformed or out-of-range input
	Unauthenticated        Code = "unauthenticated"          // missing or bad credentials (always generic)
	PaymentRequired        Code = "license_required"         // the client's licence does not allow it
	Forbidden              Code = "forbidden"                // authenticated but not allowed
	PasswordChangeRequired Code = "password_change_required" // first login or expired password
	NotFound               Code = "not_found"
	MethodNotAllowed       Code = "method_not_allowed"
	Conflict               Code = "conflict"
	TooLarge               Code = "payload_too_large"
	UnsupportedMedia       Code = "unsupported_media_type"
	RateLimited            Code = "rate_limited"
	Upstream               Code = "upstream_error" // a service we depend on failed
	Unavailable            Code = "unavailable"
	Internal               Code = "internal"
)

// Status is the single table from codes to HTTP statuses (500 for unknown codes).
func Status(c Code) int {
	switch c {
	case Invalid:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case PaymentRequired:
		return http.StatusPaymentRequired
	case Forbidden, PasswordChangeRequired:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case RateLimited:
		return http.StatusTooManyRequests
	case Upstream:
		return http.StatusBadGateway
	case Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is an error whose message is safe to show to the client.
type Error struct {
	Code    Code
	Message string
	// Fields names each bad input field and what is wrong with it.
	Fields map[string]string
	// RetryAfter, for RateLimited, is the number of seconds to wait.
	RetryAfter int
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// New returns an Error with a formatted client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidFields returns an Invalid error naming each bad field.
func InvalidFields(fields map[string]string) *Error {
	return &Error{Code: Invalid, Message: "invalid input", Fields: fields}
}

// As extracts an *Error from err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
