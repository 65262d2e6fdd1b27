package httpx_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/logging"
)

// Every 503 carries a Retry-After (jittered unless the error sets one), and a database
// connection error that no storage code mapped is a silent 503, not a logged 500.
func TestUnavailableAnswersRetryAfter(t *testing.T) {
	var logs bytes.Buffer
	logger := logging.New(&logs, slog.LevelInfo)
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		for _, err := range []error{
			apperr.New(apperr.Unavailable, "busy"),
			fmt.Errorf("acquire: %w", &pgconn.ConnectError{Config: &pgconn.Config{}}),
			&pgconn.PgError{Code: "57P03"},
		} {
			w := httptest.NewRecorder()
			httpx.WriteError(w, httptest.NewRequest("GET", "/x", nil), logger, err)
			ra, aerr := strconv.Atoi(w.Header().Get("Retry-After"))
			if w.Code != 503 || aerr != nil || ra < httpx.RetryAfterMin || ra > httpx.RetryAfterMax {
				t.Fatalf("%v: %d Retry-After %q", err, w.Code, w.Header().Get("Retry-After"))
			}
			seen[w.Header().Get("Retry-After")] = true
		}
	}
	if len(seen) < 3 {
		t.Errorf("Retry-After barely varies: %v", seen)
	}
	if strings.Contains(logs.String(), "internal error") {
		t.Errorf("a database outage was logged as an internal error:\n%s", logs.String())
	}
	e := apperr.New(apperr.Unavailable, "maintenance")
	e.RetryAfter = 120
	w := httptest.NewRecorder()
	httpx.WriteError(w, httptest.NewRequest("GET", "/x", nil), logger, e)
	if w.Header().Get("Retry-After") != "120" {
		t.Errorf("an error's own Retry-After is replaced: %q", w.Header().Get("Retry-After"))
	}
}
