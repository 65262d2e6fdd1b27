package httpx

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/rs/cors"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/logging"
)

// MaxBodyBytes is the spec's request body limit (10 MB).
const MaxBodyBytes = 10 << 20

// Options configures the middleware stack.
type Options struct {
	Logger         *slog.Logger
	AllowedOrigins []string // CORS whitelist; "*" alone allows any origin without credentials
	MaxBodyBytes   int64    // 0: MaxBodyBytes
}

// NewHandler wraps a function's routes in the platform's middleware, outermost first:
// request id, access log and panic recovery, security headers, CORS, body limit, gzip
// responses, and JSON answers for unknown routes and methods.
func NewHandler(mux *http.ServeMux, o Options) http.Handler {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = MaxBodyBytes
	}
	var h http.Handler = jsonFallback(mux)
	h = gzipResponses(h)
	h = limitBody(h, o.MaxBodyBytes, o.Logger)
	h = corsPolicy(h, o.AllowedOrigins)
	h = securityHeaders(h)
	h = recoverAndLog(h, o.Logger)
	return requestID(h)
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// requestID accepts a sane incoming X-Request-ID (so traces can span the CDN and the API),
// generates one otherwise, echoes it and stores it in the context for every log line.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
			r.Header.Set("X-Request-ID", id)
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(logging.WithRequestID(r.Context(), id)))
	})
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers what was written, for the access log and panic handling.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// recoverAndLog writes one access-log line per request and turns a handler panic into a
// generic 500 carrying the request id; the panic value and stack go only to the log.
func recoverAndLog(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "handler panic", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					WriteError(rec, r, logger, apperr.New(apperr.Internal, "internal error"))
				}
			}
			logger.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "bytes", rec.bytes, "duration_ms", time.Since(start).Milliseconds(),
				"remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}

// securityHeaders sets the spec's hardening headers on every response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// "0" turns off the legacy XSS auditor, as OWASP advises: its "1; mode=block" mode
		// was itself exploitable, and modern browsers rely on CSP instead.
		h.Set("X-XSS-Protection", "0")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}

// corsPolicy applies the CORS_ALLOWED_ORIGINS whitelist. With no origin configured no
// cross-origin request is allowed. Credentials (the auth cookies) are only ever allowed
// for explicitly listed origins, never with "*".
func corsPolicy(next http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return next
	}
	wildcard := len(origins) == 1 && origins[0] == "*"
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:   []string{"Content-Type", "Authorization", "X-CSRF-Token", "X-Request-ID"},
		ExposedHeaders:   []string{"X-Request-ID", "Retry-After"},
		AllowCredentials: !wildcard,
		MaxAge:           600,
	}).Handler(next)
}

// limitBody refuses bodies over the limit: at once when Content-Length says so, and while
// reading otherwise (DecodeJSON turns the read error into the same 413).
func limitBody(next http.Handler, limit int64, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			WriteError(w, r, logger, TooLarge("request body", limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// gzipResponses compresses responses for clients that accept it, at best speed (spec:
// LevelBestSpeed): the CPU cost is small and JSON shrinks by ~70 %.
func gzipResponses(next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed), gzhttp.MinSize(1024))
	if err != nil {
		panic(err) // constant options: cannot fail
	}
	return wrap(next)
}

// jsonFallback answers unknown routes and wrong methods with the JSON error shape instead
// of the ServeMux's plain text, keeping the mux's Allow header on 405.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeCode(w, r, apperr.MethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
		case http.StatusNotFound, 0:
			writeCode(w, r, apperr.NotFound, "no route for "+r.Method+" "+r.URL.Path)
		default: // a redirect (trailing slash, cleaned path): pass it on
			for k, v := range probe.header {
				w.Header()[k] = v
			}
			w.WriteHeader(probe.status)
		}
	})
}

func writeCode(w http.ResponseWriter, r *http.Request, code apperr.Code, msg string) {
	WriteJSON(w, apperr.Status(code), errorBody{errorDetail{Code: code, Message: msg, RequestID: logging.RequestID(r.Context())}})
}

// headerProbe captures what the mux would answer for an unmatched request.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }
