package stack

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/optralis/optralis/internal/routes"
)

// Route is one method and path, the function serving it, and its domain.
type Route struct {
	Function string
	Method   string
	Path     string // API Gateway syntax: /api/machines/{id}, /files/{path+}
	Agent    bool   // agents domain (mutual TLS) rather than the API domain
}

// AppRoutes reads the route table (internal/routes), the one the local server and the
// Lambdas serve. It is data: reading it constructs no handler and links no runtime code.
func AppRoutes() ([]Route, error) {
	var out []Route
	for _, r := range routes.Table() {
		p, err := gatewayPath(r.Path)
		if err != nil {
			return nil, fmt.Errorf("route %s %s (%s): %w", r.Method, r.Path, r.Function, err)
		}
		out = append(out, Route{Function: r.Function, Method: r.Method, Path: p, Agent: r.Access == routes.Agent})
	}
	return out, nil
}

// gatewayPath turns a ServeMux pattern path into an API Gateway resource path.
func gatewayPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("not an absolute path (host patterns are not supported)")
	}
	p = strings.TrimSuffix(p, "{$}")
	if p != "/" && strings.HasSuffix(p, "/") {
		return "", errors.New("subtree patterns (trailing /) have no API Gateway equivalent: use {rest...}")
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			if strings.ContainsAny(s, "{}") {
				return "", fmt.Errorf("segment %q mixes text and a wildcard", s)
			}
			continue
		}
		if !strings.HasSuffix(s, "}") {
			return "", fmt.Errorf("segment %q mixes a wildcard and text", s)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
		if strings.HasSuffix(name, "...") {
			if i != len(segs)-1 {
				return "", errors.New("a {name...} wildcard must be last")
			}
			segs[i] = "{" + strings.TrimSuffix(name, "...") + "+}"
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}

// checkRoutes verifies that routes and the function table agree, and that the paths form
// a tree API Gateway accepts.
func checkRoutes(fns []Function, routes []Route) error {
	byName := map[string]Function{}
	for _, f := range fns {
		byName[f.Name] = f
	}
	var errs []error
	served := map[string]bool{}
	seen := map[string]string{}
	for _, r := range routes {
		f, ok := byName[r.Function]
		key := r.Method + " " + r.Path
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s is served by %q, which is not in the function table", key, r.Function))
			continue
		case r.Agent && f.Kind != Agents:
			errs = append(errs, fmt.Errorf("%s is an agent route, but %s is a %s function", key, f.Name, f.Kind))
		case !r.Agent && f.Kind != REST:
			errs = append(errs, fmt.Errorf("%s is an API-domain route, but %s is a %s function", key, f.Name, f.Kind))
		}
		domain := "api "
		if r.Agent {
			domain = "agents "
		}
		if other, dup := seen[domain+key]; dup {
			errs = append(errs, fmt.Errorf("%s is served twice (%s and %s)", key, other, r.Function))
		}
		seen[domain+key] = r.Function
		served[r.Function] = true
	}
	for _, f := range fns {
		if (f.Kind == REST || f.Kind == Agents) && !served[f.Name] {
			errs = append(errs, fmt.Errorf("%s is a %s function with no route in internal/routes.Table()", f.Name, f.Kind))
		}
	}
	if err := checkSiblings(routes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkSiblings rejects what API Gateway refuses at deploy time: two differently named
// variables under one parent (/machines/{id} and /machines/{machineId}/disks).
func checkSiblings(routes []Route) error {
	vars := map[string]map[string]bool{} // parent path -> variable segments under it
	for _, r := range routes {
		segs := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
		parent := ""
		for _, s := range segs {
			if strings.HasPrefix(s, "{") {
				if vars[parent] == nil {
					vars[parent] = map[string]bool{}
				}
				vars[parent][s] = true
			}
			parent += "/" + s
		}
	}
	var errs []error
	for parent, vs := range vars {
		if len(vs) > 1 {
			names := make([]string, 0, len(vs))
			for v := range vs {
				names = append(names, v)
			}
			sort.Strings(names)
			errs = append(errs, fmt.Errorf("%s/ has variables %s: API Gateway allows one name per level", parent, strings.Join(names, ", ")))
		}
	}
	return errors.Join(errs...)
}

// routesOf returns the routes of one domain, in table order.
func routesOf(routes []Route, agent bool) []Route {
	var out []Route
	for _, r := range routes {
		if r.Agent == agent {
			out = append(out, r)
		}
	}
	return out
}
