package httpx_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadBody(t *testing.T) {
	mustErr := func(t *testing.T, err error, code apperr.Code, msg string) {
		t.Helper()
		e, ok := apperr.As(err)
		if !ok || e.Code != code || e.Message != msg {
			t.Fatalf("got %v, want %s %q", err, code, msg)
		}
	}
	if b, err := httpx.ReadBody(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	if b, err := httpx.ReadBody(strings.NewReader("12345"), 0); err != nil || string(b) != "12345" {
		t.Fatalf("no limit: %q %v", b, err)
	}
	_, err := httpx.ReadBody(strings.NewReader("123456"), 5)
	mustErr(t, err, apperr.TooLarge, "request body is larger than 5 bytes")

	// The limit of a MaxBytesReader under the body (the middleware's) is the one reported.
	mbr := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(strings.Repeat("x", 20))), 8)
	_, err = httpx.ReadBody(mbr, 0)
	mustErr(t, err, apperr.TooLarge, "request body is larger than 8 bytes")

	_, err = httpx.ReadBody(failingReader{}, 5)
	mustErr(t, err, apperr.Invalid, "request body could not be read")

	gunzipped := httpx.Body{Limit: 3, Name: "decompressed body", Unreadable: "malformed gzip body"}
	_, err = gunzipped.Read(strings.NewReader("abcd"))
	mustErr(t, err, apperr.TooLarge, "decompressed body is larger than 3 bytes")
	_, err = gunzipped.Read(failingReader{})
	mustErr(t, err, apperr.Invalid, "malformed gzip body")
}
