// Package lambdaproxy adapts standard http.Handlers and jobs to AWS Lambda events.
package lambdaproxy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/optralis/optralis/internal/identity"
)

// reservedHeaderPrefix covers the headers aws-lambda-go-api-proxy uses to smuggle the
// API Gateway context (X-GoLambdaProxy-ApiGw-Context, X-GoLambdaProxy-ApiGw-StageVars).
// ProxyWithContext never sets them, so any such header comes from the client and
// core.GetAPIGatewayContext(r) would trust it: we drop them all before proxying.
const reservedHeaderPrefix = "x-golambdaproxy-"

// requestIDHeader is the header our logging middleware correlates requests with.
const requestIDHeader = "X-Request-ID"

// gatewayRequest is what API Gateway itself vouches for, taken from the typed
// request context of the event (never from headers the client controls).
type gatewayRequest struct {
	sourceIP   string
	requestID  string
	clientCert *x509.Certificate
}

type gatewayRequestKey struct{}

// withGatewayRequest stashes gw in the context handed to ProxyWithContext; the
// library derives the http.Request context from it, where applyGateway picks it up.
func withGatewayRequest(ctx context.Context, gw gatewayRequest) context.Context {
	return context.WithValue(ctx, gatewayRequestKey{}, gw)
}

// applyGateway moves the stashed gateway facts onto the request the handler sees:
// the verified client certificate into identity, the source IP into RemoteAddr
// (set explicitly rather than relying on the library, so X-Forwarded-For can never
// leak in), and the API Gateway request id into X-Request-ID when the client sent none.
func applyGateway(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw, ok := r.Context().Value(gatewayRequestKey{}).(gatewayRequest)
		if !ok {
			// Only our adapters build this handler chain, so this is a programming error;
			// failing closed beats serving a request with unknown provenance.
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
		ctx := r.Context()
		if gw.clientCert != nil {
			ctx = identity.WithClientCert(ctx, gw.clientCert)
		}
		r = r.WithContext(ctx)
		r.RemoteAddr = gw.sourceIP
		if r.Header.Get(requestIDHeader) == "" && gw.requestID != "" {
			r.Header.Set(requestIDHeader, gw.requestID)
		}
		next.ServeHTTP(w, r)
	})
}

// parseClientCert decodes the PEM API Gateway forwards after verifying the mTLS
// handshake against the truststore. Empty PEM means no client certificate.
// A malformed one yields no identity: we log that it happened (the request id
// only, certificates are not logged) and let the handler answer 401.
func parseClientCert(ctx context.Context, pemText, requestID string) *x509.Certificate {
	if pemText == "" {
		return nil
	}
	cert, err := decodeCertPEM(pemText)
	if err != nil {
		slog.WarnContext(ctx, "lambdaproxy: ignoring unparseable client certificate from API Gateway",
			"request_id", requestID, "err", err)
		return nil
	}
	return cert
}

func decodeCertPEM(pemText string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// withoutReserved returns a copy of headers minus the library's reserved headers.
// It copies so the caller's event is left untouched.
func withoutReserved[V any](headers map[string]V) map[string]V {
	if headers == nil {
		return nil
	}
	out := make(map[string]V, len(headers))
	for k, v := range headers {
		if !strings.HasPrefix(strings.ToLower(k), reservedHeaderPrefix) {
			out[k] = v
		}
	}
	return out
}
