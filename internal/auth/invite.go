package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/tokenhash"
	"github.com/optralis/optralis/internal/validate"
)

// InviteTTL is how long an invitation's set-password link works. A reset link keeps
// ResetTTL: an invitation may wait for a weekend, a forgotten password should not.
const InviteTTL = 7 * 24 * time.Hour

// ActionInvitationAccepted is audited when an invited user sets the first password.
const ActionInvitationAccepted = "invitation_accepted"

// Token purposes (password_reset_tokens.purpose).
const (
	purposeReset  = "reset"
	purposeInvite = "invite"
)

// Invitee is a user to invite: created with no usable password, they choose one through
// the link of their invitation (POST /api/auth/password/reset).
type Invitee struct {
	Email      string
	Name       string
	Role       string // principal.RoleUser or RoleAdmin
	ClientID   string
	ClientName string // named in the mail
}

// Invitation is an invited user and their single-use set-password token, which only
// Deliver uses (after the commit): it is never stored, logged or audited.
type Invitation struct {
	UserID    string
	Email     string
	ExpiresAt time.Time
	client    string
	token     string
}

// Delivery is how an invitation reached the invitee: by mail (Sent), or, when mail is
// disabled, as a link (or the bare token without a dashboard URL) the caller hands over.
type Delivery struct {
	Sent      bool      `json:"sent"`
	ExpiresAt time.Time `json:"expires_at"`
	Link      string    `json:"link,omitempty"`
	Token     string    `json:"token,omitempty"`
	// MailError is set when mail is configured but sending failed: the invitee can still
	// use "forgot password" once mail works.
	MailError string `json:"mail_error,omitempty"`
}

// Invite creates, inside tx, an active user whose password hash is that of a random
// secret nobody knows, and an invitation token (InviteTTL, stored hashed). The email is
// validated and must be unused (ErrEmailTaken, case-insensitive).
func (s *Service) Invite(ctx context.Context, tx *db.Tx, in Invitee) (Invitation, error) {
	in.Email = strings.TrimSpace(in.Email)
	if err := validate.Email(in.Email); err != nil {
		return Invitation{}, apperr.InvalidFields(map[string]string{"email": err.Error()})
	}
	// A real hash of the same cost as any password's: a login attempt on an invited
	// account costs and fails like any wrong password.
	hash, err := s.hasher.Hash(randomToken())
	if err != nil {
		return Invitation{}, fmt.Errorf("auth: hashing: %w", err)
	}
	id, err := insertUser(ctx, tx, NewUser{Email: in.Email, Name: in.Name, Role: in.Role, ClientID: in.ClientID}, hash, tx.Now)
	if err != nil {
		return Invitation{}, err
	}
	token := randomToken()
	inv := Invitation{UserID: id, Email: in.Email, ExpiresAt: tx.Now.Add(InviteTTL), client: in.ClientName, token: token}
	if err := insertToken(ctx, tx, id, tokenhash.Sum(token), purposeInvite, inv.ExpiresAt, tx.Now); err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// Deliver sends the invitation once its transaction has committed: by mail when mail is
// configured, otherwise the answer carries the one-time link for the caller to pass on.
func (s *Service) Deliver(ctx context.Context, inv Invitation) Delivery {
	d := Delivery{ExpiresAt: inv.ExpiresAt}
	if _, disabled := s.mailer.(mail.Disabled); disabled {
		if d.Link = s.link(inv.token); d.Link == "" {
			d.Token = inv.token
		}
		return d
	}
	if err := s.mailer.Send(ctx, inv.Email, "Optralis: your invitation", s.inviteMail(inv)); err != nil {
		s.logger.ErrorContext(ctx, "auth: sending invitation mail", "user_id", inv.UserID, "error", err.Error())
		d.MailError = "the invitation mail could not be sent; the user can use \"forgot password\" once mail works"
		return d
	}
	d.Sent = true
	return d
}

// link is the dashboard page that sets a password with token ("" without a dashboard URL).
func (s *Service) link(token string) string {
	if s.dashboardURL == "" {
		return ""
	}
	return strings.TrimSuffix(s.dashboardURL, "/") + "/reset-password?token=" + token
}

func (s *Service) inviteMail(inv Invitation) string {
	var b strings.Builder
	if inv.client != "" {
		fmt.Fprintf(&b, "You have been invited to the Optralis dashboard of %s.\n\n", inv.client)
	} else {
		b.WriteString("You have been invited to the Optralis dashboard.\n\n")
	}
	if l := s.link(inv.token); l != "" {
		fmt.Fprintf(&b, "Choose your password here (the link works once, for 7 days):\n%s\n\n", l)
	} else {
		fmt.Fprintf(&b, "Your set-password code (valid once, for 7 days):\n%s\n\n", inv.token)
	}
	fmt.Fprintf(&b, "Then sign in with %s and that password.\n", inv.Email)
	return b.String()
}

// Ended are the sessions EndSessionsOfUsers revoked, for Publish after the commit.
type Ended struct {
	entries []blEntry
	now     time.Time
	// Sessions is how many sessions (token families) ended.
	Sessions int
}

// EndSessionsOfUsers revokes every live session of the users inside tx and blacklists
// them (every access token of those sessions is refused). Call Publish after the commit
// so that every instance refuses them at once.
func (s *Service) EndSessionsOfUsers(ctx context.Context, tx *db.Tx, userIDs []string, reason string) (Ended, error) {
	out := Ended{now: tx.Now}
	if len(userIDs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT user_id::text, family_id::text FROM refresh_tokens
		WHERE user_id = ANY($1::uuid[]) AND NOT is_revoked AND expires_at > $2
		ORDER BY 1, 2`, userIDs, tx.Now)
	if err != nil {
		return out, db.Error(err, "auth: listing sessions")
	}
	type session struct{ user, family string }
	sessions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (session, error) {
		var x session
		return x, r.Scan(&x.user, &x.family)
	})
	if err != nil {
		return out, db.Error(err, "auth: listing sessions")
	}
	byUser := map[string][]string{}
	for _, x := range sessions {
		byUser[x.user] = append(byUser[x.user], x.family)
	}
	for _, id := range userIDs {
		entries, err := endSessions(ctx, tx, id, byUser[id], reason, tx.Now)
		if err != nil {
			return out, err
		}
		out.entries = append(out.entries, entries...)
	}
	out.Sessions = len(sessions)
	return out, nil
}

// Publish copies ended sessions to the Redis blacklist (after their transaction commits).
func (s *Service) Publish(ctx context.Context, e Ended) { s.pushBlacklist(ctx, e.entries, e.now) }
