package lambdaproxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/optralis/optralis/internal/identity"
)

const (
	agentCN  = "11111111-1111-1111-1111-111111111111:22222222-2222-2222-2222-222222222222"
	forgedCN = "99999999-9999-9999-9999-999999999999:99999999-9999-9999-9999-999999999999"
	// heartbeatJSON is the body of the heartbeat samples (gzipped in the gzip one).
	heartbeatJSON = `{"recorded_at":"2026-01-01T12:00:00Z","agent_version":"1.4.2","metrics":{"cpu_percent":12.5,"ram_percent":48.0,"ram_used_bytes":4123456789,"ram_total_bytes":8589934592,"uptime_seconds":3600,"process_count":187},"disks":[{"mount_point":"C:\\","fs_type":"NTFS","total_gb":476.3,"used_gb":210.1,"used_percent":44.11}]}`
)

// echo is what the test handler saw, as it reports it back.
type echo struct {
	Method     string   `json:"method"`
	Path       string   `json:"path"`
	Query      string   `json:"query"`
	Body       []byte   `json:"body"` // []byte: JSON base64, so binary bodies survive the echo
	RemoteAddr string   `json:"remoteAddr"`
	ClientCN   string   `json:"clientCN"`
	RequestID  string   `json:"requestID"`
	XFF        string   `json:"xff"`
	ContentEnc string   `json:"contentEncoding"`
	Reserved   []string `json:"reserved"` // X-GoLambdaProxy-* headers that reached the handler
	// HeaderCtxOK reports whether the library's header-based accessors found a context,
	// HeaderCtxCN the CN of the client cert such a context would claim.
	HeaderCtxOK bool   `json:"headerCtxOK"`
	HeaderCtxCN string `json:"headerCtxCN"`
	// LibCtxCertPEM is the client cert PEM in the library's own context value.
	LibCtxCertPEM string `json:"libCtxCertPEM"`
	// MTLSHeaders are the X-Amzn-Mtls-* headers that reached the handler.
	MTLSHeaders []string `json:"mtlsHeaders"`
}

// gzipBlob is a binary (non-UTF-8) response body.
func gzipBlob(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte("binary response payload")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newEchoMux routes the sample paths to a handler that reports what it saw, plus
// /blob which answers with a gzip (binary) body.
func newEchoMux(t testing.TB) *http.ServeMux {
	blob := gzipBlob(t)
	mux := http.NewServeMux()
	echoHandler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e := echo{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body,
			RemoteAddr: r.RemoteAddr,
			RequestID:  r.Header.Get("X-Request-ID"),
			XFF:        r.Header.Get("X-Forwarded-For"),
			ContentEnc: r.Header.Get("Content-Encoding"),
		}
		if c, ok := identity.ClientCert(r.Context()); ok {
			e.ClientCN = c.Subject.CommonName
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-golambdaproxy-") {
				e.Reserved = append(e.Reserved, k)
			}
			if strings.HasPrefix(strings.ToLower(k), "x-amzn-mtls-") {
				e.MTLSHeaders = append(e.MTLSHeaders, k)
			}
		}
		var headerPEM string
		var acc core.RequestAccessor
		if rc, err := acc.GetAPIGatewayContext(r); err == nil {
			e.HeaderCtxOK = true
			if rc.Identity.ClientCert != nil {
				headerPEM = rc.Identity.ClientCert.ClientCertPem
			}
		}
		var accV2 core.RequestAccessorV2
		if rc, err := accV2.GetAPIGatewayContextV2(r); err == nil {
			e.HeaderCtxOK = true
			headerPEM += rc.Authentication.ClientCert.ClientCertPem
		}
		if c, err := decodeCertPEM(headerPEM); err == nil {
			e.HeaderCtxCN = c.Subject.CommonName
		}
		if rc, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok && rc.Identity.ClientCert != nil {
			e.LibCtxCertPEM = rc.Identity.ClientCert.ClientCertPem
		}
		if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
			e.LibCtxCertPEM = rc.Authentication.ClientCert.ClientCertPem
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(e); err != nil {
			t.Errorf("encode echo: %v", err)
		}
	}
	mux.HandleFunc("GET /status", echoHandler)
	mux.HandleFunc("POST /api/auth/login", echoHandler)
	mux.HandleFunc("POST /agent/heartbeat", echoHandler)
	mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(blob)
	})
	return mux
}

// readEvent returns the raw JSON of a sample event from the repository's events/ dir.
func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadEvent decodes a sample event so a test can alter it before invoking.
func loadEvent[E any](t testing.TB, name string) E {
	t.Helper()
	var ev E
	if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return ev
}

// invokeJSON drives fn through the Lambda runtime's own JSON decoding and encoding,
// exactly as a deployed function receives the payload, and decodes the reply.
func invokeJSON[R any](t testing.TB, fn any, payload []byte) (R, error) {
	t.Helper()
	var resp R
	out, err := lambda.NewHandler(fn).Invoke(context.Background(), payload)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("decode response %s: %v", out, err)
	}
	return resp, nil
}

// invokeEvent marshals ev and invokes fn with it through the JSON path.
func invokeEvent[R any](t testing.TB, fn any, ev any) (R, error) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return invokeJSON[R](t, fn, payload)
}

// decodeEcho checks the proxied response is a 200 text echo and decodes it.
func decodeEcho(t testing.TB, status int, body string, isBase64 bool) echo {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status = %d, body %q", status, body)
	}
	if isBase64 {
		t.Fatalf("JSON echo unexpectedly base64-encoded")
	}
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decode echo %q: %v", body, err)
	}
	return e
}

// assertNoForgery checks nothing from the forged context header reached the handler.
func assertNoForgery(t testing.TB, e echo) {
	t.Helper()
	if e.ClientCN != "" {
		t.Errorf("identity CN = %q, want none", e.ClientCN)
	}
	if len(e.Reserved) != 0 {
		t.Errorf("reserved headers reached handler: %v", e.Reserved)
	}
	if e.HeaderCtxOK || e.HeaderCtxCN != "" {
		t.Errorf("the library's header accessors accepted a client-supplied context (cert CN %q)", e.HeaderCtxCN)
	}
	if e.LibCtxCertPEM != "" {
		t.Error("library context carries a client cert")
	}
	if e.RemoteAddr == "10.0.0.1" || e.RequestID == "forged-request-id" {
		t.Errorf("forged values used: remoteAddr %q, request id %q", e.RemoteAddr, e.RequestID)
	}
}
