// Package identity carries the verified agent client certificate from the transport
// (the local TLS listener or the API Gateway request context) to the handlers.
package identity

import (
	"context"
	"crypto/x509"
)

type clientCertKey struct{}

// WithClientCert returns a context carrying the verified client certificate.
// Only transport code (TLS listener, Lambda adapter) may call it: handlers trust
// whatever it stores.
func WithClientCert(ctx context.Context, cert *x509.Certificate) context.Context {
	return context.WithValue(ctx, clientCertKey{}, cert)
}

// ClientCert returns the verified client certificate stored by the transport, if any.
func ClientCert(ctx context.Context) (*x509.Certificate, bool) {
	c, ok := ctx.Value(clientCertKey{}).(*x509.Certificate)
	return c, ok && c != nil
}
