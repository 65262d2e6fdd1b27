// Package httpx is the HTTP platform every function shares: JSON in and out, the error
// table applied to responses, and the middleware stack.
package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/logging"
)

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// A value we built failed to encode: a bug. Nothing is written yet, so the
		// recovering middleware logs it with the request id and answers a generic 500.
		panic(fmt.Errorf("httpx: encoding a %d answer: %w", status, err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// UnavailableRetryAfter is the Retry-After of a 503: the error's own figure when it has
// one, else RetryAfterMin to RetryAfterMax seconds at random, so that a fleet of agents
// refused during an outage does not come back all in the same second.
func UnavailableRetryAfter(seconds int) int {
	if seconds > 0 {
		return seconds
	}
	return RetryAfterMin + rand.IntN(RetryAfterMax-RetryAfterMin+1)
}

// The range of a 503's jittered Retry-After, in seconds.
const (
	RetryAfterMin = 5
	RetryAfterMax = 15
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      apperr.Code       `json:"code"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// WriteError answers with err. An *apperr.Error is shown as it is; anything else is logged
// with the request id and answered with a generic 500, so internals never reach clients.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	rid := logging.RequestID(r.Context())
	e, ok := apperr.As(err)
	if !ok {
		// A database outage that no storage code mapped is still a 503: the pool's outage
		// watch (db.WatchOutages) logs it once per outage, not once per request.
		e, ok = db.AsUnavailable(err)
	}
	if !ok {
		logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		e = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
	}
	switch {
	case e.Code == apperr.RateLimited && e.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	case e.Code == apperr.Unavailable:
		w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter(e.RetryAfter)))
	}
	WriteJSON(w, apperr.Status(e.Code), errorBody{errorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields, RequestID: rid}})
}

// DecodeJSON reads the body into dst, strictly: one JSON value, no unknown fields. Errors
// are *apperr.Error naming the problem (413 past the body limit).
func DecodeJSON(r *http.Request, dst any) error { return DecodeJSONLimit(r, dst, 0) }

// DecodeJSONLimit is DecodeJSON for a route whose bodies have a smaller limit than the
// middleware's: past limit bytes it answers the same 413.
func DecodeJSONLimit(r *http.Request, dst any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apperr.New(apperr.UnsupportedMedia, "Content-Type must be application/json")
	}
	body, err := ReadBody(r.Body, limit)
	if err != nil {
		return err
	}
	return DecodeJSONBytes(body, dst)
}

// DecodeJSONBytes is DecodeJSON on a body already read.
func DecodeJSONBytes(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.Invalid, "request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apperr.New(apperr.Invalid, "malformed JSON: %s", describeJSONError(err))
	}
	if dec.More() {
		return apperr.New(apperr.Invalid, "malformed JSON: more than one value in the body")
	}
	return nil
}

func describeJSONError(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "(body)"
		}
		return fmt.Sprintf("field %q must be %s, not %s", field, ute.Type.String(), ute.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case strings.Contains(err.Error(), "unknown field"):
		return err.Error()
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "the body is not valid JSON for this request"
}
