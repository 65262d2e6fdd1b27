package httpx

import (
	"errors"
	"io"
	"net/http"

	"net/url"
	"slices"

	"github.com/optralis/optralis/internal/apperr"
)

// Body reads bodies whole under a size limit and names them in its errors. Every handler
// reads through it, so a body past a limit is the same 413 wherever it is refused.
type Body struct {
	// Limit is the most bytes accepted; 0 or less: only the limits already on the reader
	// (the middleware's http.MaxBytesReader).
	Limit int64
	// Name is what the 413 calls the bytes: "<Name> is larger than N bytes".
	Name string
	// Unreadable is the 400's message when the reader fails.
	Unreadable string
}

// RequestBody is how request bodies are read: ReadBody's settings.
func RequestBody(limit int64) Body {
	return Body{Limit: limit, Name: "request body", Unreadable: "request body could not be read"}
}

// ReadBody reads a request body whole, at most limit bytes (0 or less: only the limits
// already on it). Errors are *apperr.Error: 413 past a limit — limit, or the limit of an
// http.MaxBytesReader under it — and 400 when the body cannot be read.
func ReadBody(body io.Reader, limit int64) ([]byte, error) { return RequestBody(limit).Read(body) }

// Read reads r whole. It stops one byte past the limit, so an oversized (or decompressing)
// body never costs more than Limit+1 bytes of memory.
func (b Body) Read(r io.Reader) ([]byte, error) {
	if b.Limit > 0 {
		r = io.LimitReader(r, b.Limit+1)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, TooLarge(b.Name, mbe.Limit)
		}
		return nil, apperr.New(apperr.Invalid, "%s", b.Unreadable)
	}
	if b.Limit > 0 && int64(len(out)) > b.Limit {
		return nil, TooLarge(b.Name, b.Limit)
	}
	return out, nil
}

// TooLarge is the 413 for bytes over a limit: "<name> is larger than <limit> bytes".
func TooLarge(name string, limit int64) *apperr.Error {
	return apperr.New(apperr.TooLarge, "%s is larger than %d bytes", name, limit)
}

// QueryProblems names each query parameter of v that is not in allowed ("unknown
// parameter") or given more than once: a 400 names them rather than ignoring a typo.
func QueryProblems(v url.Values, allowed ...string) map[string]string {
	bad := map[string]string{}
	for name, vs := range v {
		switch {
		case !slices.Contains(allowed, name):
			bad[name] = "unknown parameter"
		case len(vs) > 1:
			bad[name] = "given more than once"
		}
	}
	return bad
}
