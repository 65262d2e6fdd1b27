// Package principal carries the authenticated dashboard user from the auth middleware to
// the handlers, which scope every query to the principal's client.
package principal

import "context"

// Roles. Users and admins belong to one client (an MSP); platform admins to none.
const (
	RoleUser          = "user"
	RoleAdmin         = "admin"
	RolePlatformAdmin = "platform_admin"
)

// Principal is who is calling.
type Principal struct {
	UserID   string
	ClientID string // "" for a platform admin
	Role     string
	Email    string
}

type key struct{}

// With returns a context carrying p. Only the auth middleware calls it.
func With(ctx context.Context, p Principal) context.Context { return context.WithValue(ctx, key{}, p) }

// From returns the authenticated principal, if any.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(key{}).(Principal)
	return p, ok && p.UserID != ""
}

// Actor is a client's user acting on the client's data: what scopes a change and what its
// audit entry records.
type Actor struct {
	ClientID, UserID, IP string
}
