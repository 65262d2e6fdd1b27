package app

import (
	"net/http"

	"github.com/optralis/optralis/internal/status"
)

// Every route of every function, by function. The local server mounts them all; each
// Lambda mounts its own. Agents-domain routes (mTLS) are kept apart from the public API.

func statusRoutes(mux *http.ServeMux, d *Deps) {
	mux.Handle("GET /status", status.HandleStatus(d.tracker(), d.Clock))
}

// StatusHandler is the status function (public, API domain).
func (d *Deps) StatusHandler() http.Handler { return d.handler(statusRoutes) }

// PublicHandler serves every API-domain function's routes (the local server's plain port).
func (d *Deps) PublicHandler() http.Handler { return d.handler(statusRoutes) }

// AgentHandler serves the agents domain (mutual TLS). Its routes arrive with the
// heartbeat function.
func (d *Deps) AgentHandler() http.Handler { return d.handler() }
