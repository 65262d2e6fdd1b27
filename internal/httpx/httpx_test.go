package httpx_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/logging"
)

type errResp struct {
	Error struct {
		Code      string            `json:"code"`
		Message   string            `json:"message"`
		Fields    map[string]string `json:"fields"`
		RequestID string            `json:"request_id"`
	} `json:"error"`
}

func testHandler(t *testing.T, origins []string) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := logging.New(&logs, slog.LevelInfo)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, map[string]string{"request_id": logging.RequestID(r.Context())})
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, map[string]string{"data": strings.Repeat("optralis ", 2000)})
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, logger, err)
			return
		}
		httpx.WriteJSON(w, 200, in)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("secret detail: db password is hunter2")
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, logger, io.ErrUnexpectedEOF)
	})
	return httpx.NewHandler(mux, httpx.Options{Logger: logger, AllowedOrigins: origins}), &logs
}

func do(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeErr(t *testing.T, w *httptest.ResponseRecorder) errResp {
	t.Helper()
	var e errResp
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("body is not JSON: %q", w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q", ct)
	}
	return e
}

func TestRequestID(t *testing.T) {
	h, logs := testHandler(t, nil)
	w := do(h, httptest.NewRequest("GET", "/ok", nil))
	gen := w.Header().Get("X-Request-ID")
	if len(gen) != 32 || !strings.Contains(w.Body.String(), gen) {
		t.Fatalf("generated id %q not echoed/propagated: %s", gen, w.Body.String())
	}
	if !strings.Contains(logs.String(), `"request_id":"`+gen+`"`) {
		t.Fatalf("log line lacks the request id: %s", logs.String())
	}

	r := httptest.NewRequest("GET", "/ok", nil)
	r.Header.Set("X-Request-ID", "cdn-abc-123")
	if got := do(h, r).Header().Get("X-Request-ID"); got != "cdn-abc-123" {
		t.Fatalf("sane incoming id replaced: %q", got)
	}
	for _, bad := range []string{"has space", strings.Repeat("a", 129), "line\nbreak", "<script>"} {
		r := httptest.NewRequest("GET", "/ok", nil)
		r.Header.Set("X-Request-ID", bad)
		if got := do(h, r).Header().Get("X-Request-ID"); got == bad || len(got) != 32 {
			t.Fatalf("insane incoming id %q kept: %q", bad, got)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h, _ := testHandler(t, nil)
	for _, path := range []string{"/ok", "/nowhere"} {
		w := do(h, httptest.NewRequest("GET", path, nil))
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"X-XSS-Protection": "0", "Referrer-Policy": "strict-origin-when-cross-origin"} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", path, k, got, v)
			}
		}
	}
}

func TestCORSWhitelist(t *testing.T) {
	h, _ := testHandler(t, []string{"https://dash.example.com"})
	pre := httptest.NewRequest("OPTIONS", "/echo", nil)
	pre.Header.Set("Origin", "https://dash.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-csrf-token")
	w := do(h, pre)
	if w.Header().Get("Access-Control-Allow-Origin") != "https://dash.example.com" || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("listed origin refused: %v", w.Header())
	}
	evil := httptest.NewRequest("GET", "/ok", nil)
	evil.Header.Set("Origin", "https://evil.example.com")
	if got := do(h, evil).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("unlisted origin allowed: %q", got)
	}
	none, _ := testHandler(t, nil)
	if got := do(none, evil).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("no whitelist but origin allowed: %q", got)
	}
	star, _ := testHandler(t, []string{"*"})
	w = do(star, evil)
	if w.Header().Get("Access-Control-Allow-Origin") == "" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("wildcard must allow any origin without credentials: %v", w.Header())
	}
}

func TestBodyLimit(t *testing.T) {
	h, _ := testHandler(t, nil)
	big := `{"name":"` + strings.Repeat("x", httpx.MaxBodyBytes) + `"}`
	// Declared length over the limit: refused before reading.
	r := httptest.NewRequest("POST", "/echo", strings.NewReader(big))
	w := do(h, r)
	if w.Code != 413 || decodeErr(t, w).Error.Code != string(apperr.TooLarge) {
		t.Fatalf("declared oversize: %d %s", w.Code, w.Body.String())
	}
	// Unknown length (chunked): refused while reading.
	r = httptest.NewRequest("POST", "/echo", io.MultiReader(strings.NewReader(big)))
	r.ContentLength = -1
	w = do(h, r)
	if w.Code != 413 || decodeErr(t, w).Error.Code != string(apperr.TooLarge) {
		t.Fatalf("streamed oversize: %d %s", w.Code, w.Body.String())
	}
}

func TestDecodeJSONRefusals(t *testing.T) {
	h, _ := testHandler(t, nil)
	cases := map[string]struct {
		body, ctype, want string
		status            int
	}{
		"empty":         {"", "application/json", "empty", 400},
		"syntax":        {`{"name":`, "application/json", "malformed JSON", 400},
		"unknown field": {`{"name":"a","admin":true}`, "application/json", "admin", 400},
		"wrong type":    {`{"count":"three"}`, "application/json", "count", 400},
		"two values":    {`{"name":"a"} {"name":"b"}`, "application/json", "more than one value", 400},
		"not json":      {`name=a`, "application/x-www-form-urlencoded", "Content-Type", 415},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/echo", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			w := do(h, r)
			e := decodeErr(t, w)
			if w.Code != tc.status || !strings.Contains(e.Error.Message, tc.want) {
				t.Fatalf("%d %q, want %d mentioning %q", w.Code, e.Error.Message, tc.status, tc.want)
			}
		})
	}
	r := httptest.NewRequest("POST", "/echo", strings.NewReader(`{"name":"ok","count":2}`))
	if w := do(h, r); w.Code != 200 || !strings.Contains(w.Body.String(), `"count":2`) {
		t.Fatalf("valid body refused: %d %s", w.Code, w.Body.String())
	}
}

func TestJSONNotFoundAndMethodNotAllowed(t *testing.T) {
	h, _ := testHandler(t, nil)
	w := do(h, httptest.NewRequest("GET", "/nowhere", nil))
	if w.Code != 404 || decodeErr(t, w).Error.Code != "not_found" {
		t.Fatalf("404: %d %s", w.Code, w.Body.String())
	}
	w = do(h, httptest.NewRequest("DELETE", "/ok", nil))
	if w.Code != 405 || decodeErr(t, w).Error.Code != "method_not_allowed" || !strings.Contains(w.Header().Get("Allow"), "GET") {
		t.Fatalf("405: %d %v %s", w.Code, w.Header(), w.Body.String())
	}
}

func TestPanicAndInternalErrorsAreMasked(t *testing.T) {
	h, logs := testHandler(t, nil)
	for _, path := range []string{"/panic", "/fail"} {
		logs.Reset()
		w := do(h, httptest.NewRequest("GET", path, nil))
		e := decodeErr(t, w)
		rid := w.Header().Get("X-Request-ID")
		if w.Code != 500 || e.Error.Code != "internal" || e.Error.Message != "internal error" || e.Error.RequestID != rid {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "unexpected EOF") {
			t.Fatalf("%s leaked the detail: %s", path, w.Body.String())
		}
		if !strings.Contains(logs.String(), rid) {
			t.Fatalf("%s: log lacks the request id: %s", path, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "unexpected EOF") {
		t.Fatal("internal error detail missing from the log")
	}
}

func TestPanicDetailLogged(t *testing.T) {
	h, logs := testHandler(t, nil)
	do(h, httptest.NewRequest("GET", "/panic", nil))
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), "stack") {
		t.Fatalf("panic detail not logged: %s", logs.String())
	}
}

func TestGzipResponses(t *testing.T) {
	h, _ := testHandler(t, nil)
	r := httptest.NewRequest("GET", "/big", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := do(h, r)
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("not compressed: %v", w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !strings.Contains(string(plain), "optralis optralis") || w.Body.Len() > len(plain)/5 {
		t.Fatalf("gzip body wrong: %d compressed vs %d plain", w.Body.Len(), len(plain))
	}
	// Without Accept-Encoding, and for tiny bodies, no compression.
	if do(h, httptest.NewRequest("GET", "/big", nil)).Header().Get("Content-Encoding") != "" {
		t.Fatal("compressed for a client that did not ask")
	}
	small := httptest.NewRequest("GET", "/ok", nil)
	small.Header.Set("Accept-Encoding", "gzip")
	if do(h, small).Header().Get("Content-Encoding") != "" {
		t.Fatal("compressed a tiny body")
	}
}
