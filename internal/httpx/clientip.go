package httpx

import (
	"net"
	"net/http"
)

// ClientIP is the caller's address as the transport saw it: the TCP peer locally, API
// Gateway's sourceIp on Lambda (the adapter puts it in RemoteAddr, without a port).
// X-Forwarded-For is never read: a client can write anything there.
func ClientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
