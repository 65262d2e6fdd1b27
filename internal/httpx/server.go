package httpx

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// NewServer is the long-running local server with the spec's timeouts (read 30 s,
// write 30 s, idle 120 s). tlsConfig may be nil for plain HTTP.
func NewServer(addr string, h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadTimeout:       30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
