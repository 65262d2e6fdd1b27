package app

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/routes"
)

// Handlers binds route patterns ("POST /agent/heartbeat", routes.Route.Pattern) to their
// handlers.
type Handlers map[string]http.Handler

// Merge combines the handlers of several functions (the local server serves them all).
func Merge(hs ...Handlers) Handlers {
	out := Handlers{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

// Guard admits a route's callers before next runs (or answers the refusal itself).
type Guard func(r routes.Route, next http.Handler) http.Handler

// Guards are the authenticators a function has: Agent for routes.Agent routes (client
// certificates), Dashboard for the dashboard levels (access tokens). A function without
// agent or dashboard routes leaves the field nil.
type Guards struct {
	Agent     Guard
	Dashboard Guard
}

// Bind serves rows, each bound to its handler and guarded by its access level, behind the
// platform middleware (httpx). It refuses a row without a handler, a handler without a
// row, and a row whose access level has no guard: a wiring mistake stops the function at
// its start, never at a caller's request.
func Bind(rows []routes.Route, handlers Handlers, guards Guards, core Core) (http.Handler, error) {
	mux := http.NewServeMux()
	var errs []error
	bound := map[string]bool{}
	for _, r := range rows {
		h, ok := handlers[r.Pattern()]
		if !ok {
			errs = append(errs, fmt.Errorf("route %s (%s) has no handler", r.Pattern(), r.Function))
			continue
		}
		if g := guardFor(r.Access, guards); g == nil && r.Access != routes.Public {
			errs = append(errs, fmt.Errorf("route %s needs %s access, and this function has no guard for it", r.Pattern(), r.Access))
			continue
		}
		bound[r.Pattern()] = true
		mux.Handle(r.Pattern(), guard(r, h, guards, core))
	}
	var extra []string
	for p := range handlers {
		if !bound[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		errs = append(errs, fmt.Errorf("handler %s has no row in the route table (internal/routes)", p))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return httpx.NewHandler(mux, httpx.Options{Logger: core.Logger, AllowedOrigins: core.CORS}), nil
}

func guardFor(a routes.Access, g Guards) Guard {
	switch {
	case a == routes.Agent:
		return g.Agent
	case a.Dashboard():
		return g.Dashboard
	}
	return nil
}

// guard enforces r's access level. It fails closed: an access level without an
// authenticator refuses everyone.
func guard(r routes.Route, h http.Handler, guards Guards, core Core) http.Handler {
	if r.Access == routes.Public {
		return h
	}
	if g := guardFor(r.Access, guards); g != nil {
		return g(r, h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteError(w, req, core.Logger, apperr.ErrUnauthenticated)
	})
}
