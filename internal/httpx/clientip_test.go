package httpx_test

import (
	"net/http/httptest"
	"testing"

	"github.com/optralis/optralis/internal/httpx"
)

func TestClientIPIgnoresForwardedFor(t *testing.T) {
	for remote, want := range map[string]string{"192.0.2.7:5123": "192.0.2.7", "[2001:db8::1]:443": "2001:db8::1", "198.51.100.4": "198.51.100.4"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "10.9.8.7")
		if got := httpx.ClientIP(r); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", remote, got, want)
		}
	}
}
