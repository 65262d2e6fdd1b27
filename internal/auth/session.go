package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/tokenhash"
	"github.com/optralis/optralis/internal/validate"
)

// Audit actions written by this package.
const (
	ActionLogin           = "login"
	ActionLoginFailed     = "login_failed"
	ActionLogout          = "logout"
	ActionRefreshReuse    = "refresh_token_reuse_detected"
	ActionPasswordChanged = "password_changed"
	ActionPasswordReset   = "password_reset"
	ActionResetRequested  = "password_reset_requested"
)

// Refresh token revocation reasons (refresh_tokens.revoked_reason).
const (
	reasonRotated         = "rotated"
	reasonReuse           = "reuse_detected"
	reasonLogout          = "logout"
	reasonPasswordChanged = "password_changed"
	reasonPasswordReset   = "password_reset"
	reasonDisabled        = "account_disabled"
)

// Client-facing errors: generic on purpose.
var (
	errBadCredentials = apperr.New(apperr.Unauthenticated, "invalid email or password")
	errBadRefresh     = apperr.New(apperr.Unauthenticated, "invalid or expired refresh token")
	errBadReset       = apperr.InvalidFields(map[string]string{"token": "the reset link is invalid, used or expired"})
)

// Issued is a new or refreshed session: the tokens go to the client once, in the response
// that creates them.
type Issued struct {
	User                   User
	FamilyID               string
	AccessToken            string
	AccessClaims           Claims
	RefreshToken           string // "" when only the access token was reissued
	RefreshExpiresAt       time.Time
	CSRFToken              string
	PasswordChangeRequired bool
}

// Meta is who made a request, for token records and the audit trail.
type Meta struct {
	IP        string
	UserAgent string
}

func (s *Service) audit(ctx context.Context, q db.Querier, at time.Time, e audit.Entry) error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return audit.Log(ctx, q, at, e)
}

// auditDetached writes an entry outside any transaction, logging (not returning) failure:
// for failures, whose answer must not depend on the audit write.
func (s *Service) auditDetached(ctx context.Context, e audit.Entry) {
	ctx, cancel := s.detach(ctx)
	defer cancel()
	if err := s.audit(ctx, s.pool, s.clock.Now(), e); err != nil {
		s.logger.ErrorContext(ctx, "auth: audit write failed", "action", e.Action, "error", err.Error())
	}
}

// Login checks an email and password and starts a session. Every failure is the same
// error, and costs one bcrypt comparison whether or not the email exists.
func (s *Service) Login(ctx context.Context, email, password string, m Meta) (Issued, error) {
	email = strings.TrimSpace(email)
	user, err := User{}, error(ErrNotFound)
	if email != "" && len(email) <= validate.MaxEmailLen && validate.Text(email) {
		user, err = userByEmail(ctx, s.pool, email)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Issued{}, err
	}
	failed := func(reason string) (Issued, error) {
		s.auditDetached(ctx, audit.Entry{ClientID: user.ClientID, UserID: user.ID, Action: ActionLoginFailed, IP: m.IP,
			Details: map[string]any{"email": truncate(email, 254), "reason": reason}})
		return Issued{}, errBadCredentials
	}
	switch {
	case err != nil: // unknown email: the same bcrypt work, against a hash nobody matches
		_ = s.hasher.Compare(s.dummyHash, password)
		return failed("unknown_email")
	case len(password) > MaxPasswordBytes:
		// bcrypt reads only 72 bytes and the policy forbids longer passwords: a longer one
		// is wrong, and must not match on its first 72 bytes.
		_ = s.hasher.Compare(s.dummyHash, password)
		return failed("bad_password")
	case s.hasher.Compare(user.passwordHash, password) != nil:
		return failed("bad_password")
	case !user.Active:
		return failed("inactive")
	}
	return s.StartSession(ctx, user, m)
}

// StartSession opens a new session (token family) for an authenticated user.
func (s *Service) StartSession(ctx context.Context, u User, m Meta) (Issued, error) {
	now := s.clock.Now()
	refresh := randomToken()
	row := refreshRow{UserID: u.ID, FamilyID: uuid.NewString(), ExpiresAt: now.Add(RefreshTTL)}
	err := db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) error {
		if err := insertRefresh(ctx, tx, row, tokenhash.Sum(refresh), m.IP, m.UserAgent, now); err != nil {
			return err
		}
		if err := touchLogin(ctx, tx, u.ID, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: u.ClientID, UserID: u.ID, Action: ActionLogin, IP: m.IP,
			Details: map[string]any{"session": row.FamilyID, "user_agent": truncate(m.UserAgent, 200)}})
	})
	if err != nil {
		return Issued{}, err
	}
	u.LastLoginAt = &now
	return s.issue(u, row.FamilyID, refresh, row.ExpiresAt, now)
}

func (s *Service) issue(u User, familyID, refresh string, refreshExpires, now time.Time) (Issued, error) {
	access, claims, err := s.issueAccess(u, familyID, now)
	if err != nil {
		return Issued{}, err
	}
	return Issued{
		User: u, FamilyID: familyID, AccessToken: access, AccessClaims: claims,
		RefreshToken: refresh, RefreshExpiresAt: refreshExpires,
		CSRFToken:              s.CSRFToken(familyID),
		PasswordChangeRequired: u.PasswordChangeRequired(now),
	}, nil
}

// Refresh rotates a refresh token. verify, when not nil, is called with the token's
// session before anything changes (the CSRF check of a cookie-borne token).
//
//   - A live token is revoked ("rotated") and replaced by its successor (rotation_count+1).
//   - The immediately previous token, presented within RefreshGrace of its rotation while
//     its successor is still live, returns that same successor again (two tabs refreshing
//     at once; a retry after a lost response). Nothing is revoked.
//   - Any other revoked token is reuse: the whole family is revoked and blacklisted, the
//     event audited, and the caller refused. Thief and victim are both logged out.
func (s *Service) Refresh(ctx context.Context, token string, m Meta, verify func(familyID string) error) (Issued, error) {
	now := s.clock.Now()
	if token == "" || len(token) > 128 {
		return Issued{}, errBadRefresh
	}
	var out refreshOutcome
	err := db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) (err error) {
		out, err = s.refreshTx(ctx, tx, token, m, verify, now)
		return err
	})
	if err != nil {
		return Issued{}, err
	}
	if out.reuse != nil {
		s.pushBlacklist(ctx, out.reuse, now)
		s.logger.WarnContext(ctx, "auth: refresh token reuse detected, session revoked", "user_id", out.reuseUserID, "ip", m.IP)
	}
	if out.refused {
		return Issued{}, errBadRefresh
	}
	return out.issued, nil
}

// refreshOutcome is what a refresh transaction decided. A refusal that revoked something
// (reuse, a disabled user) is refused only after the commit, so the revocation stays.
type refreshOutcome struct {
	issued      Issued
	refused     bool
	reuse       []blEntry // the reused session's blacklist entry, for Redis after the commit
	reuseUserID string
}

// refreshTx is Refresh inside its transaction: find and lock the token, check it, then
// rotate it (live token), answer its successor again (grace) or kill the session (reuse).
func (s *Service) refreshTx(ctx context.Context, tx *db.Tx, token string, m Meta, verify func(string) error, now time.Time) (refreshOutcome, error) {
	cur, err := lockRefresh(ctx, tx, tokenhash.Sum(token))
	if errors.Is(err, ErrNotFound) {
		return refreshOutcome{}, errBadRefresh
	}
	if err != nil {
		return refreshOutcome{}, err
	}
	if verify != nil {
		if err := verify(cur.FamilyID); err != nil {
			return refreshOutcome{}, err
		}
	}
	if !now.Before(cur.ExpiresAt) {
		return refreshOutcome{}, errBadRefresh
	}
	next := s.successor(token)
	if !cur.Revoked {
		return s.rotate(ctx, tx, cur, next, m, now)
	}
	if is, ok, err := s.graceSuccessor(ctx, tx, cur, next, now); err != nil || ok {
		return refreshOutcome{issued: is}, err
	}
	return s.revokeReused(ctx, tx, cur, m, now)
}

// graceSuccessor answers the successor of a token rotated less than RefreshGrace ago,
// when that successor is still live in the same session: ok is false otherwise.
func (s *Service) graceSuccessor(ctx context.Context, tx *db.Tx, cur refreshRow, next string, now time.Time) (Issued, bool, error) {
	if cur.RevokedReason != reasonRotated || cur.RevokedAt == nil || now.Sub(*cur.RevokedAt) > RefreshGrace {
		return Issued{}, false, nil
	}
	succ, err := lockRefresh(ctx, tx, tokenhash.Sum(next))
	if errors.Is(err, ErrNotFound) {
		return Issued{}, false, nil
	}
	if err != nil {
		return Issued{}, false, err
	}
	if succ.Revoked || succ.FamilyID != cur.FamilyID || !now.Before(succ.ExpiresAt) {
		return Issued{}, false, nil
	}
	u, err := s.activeUser(ctx, tx, cur.UserID)
	if err != nil {
		return Issued{}, false, err
	}
	is, err := s.issue(u, cur.FamilyID, next, succ.ExpiresAt, now)
	return is, err == nil, err
}

// revokeReused handles the reuse of a revoked token — theft, or a replay: the whole
// session is revoked and blacklisted and the event audited; the caller is then refused.
func (s *Service) revokeReused(ctx context.Context, tx *db.Tx, cur refreshRow, m Meta, now time.Time) (refreshOutcome, error) {
	n, err := revokeFamilies(ctx, tx, []string{cur.FamilyID}, reasonReuse, now)
	if err != nil {
		return refreshOutcome{}, err
	}
	reuse := []blEntry{{Key: familyKey(cur.FamilyID), UserID: cur.UserID, Reason: reasonReuse, ExpiresAt: now.Add(AccessTTL + Leeway)}}
	if err := insertBlacklist(ctx, tx, reuse, now); err != nil {
		return refreshOutcome{}, err
	}
	var clientID string
	if u, err := userByID(ctx, tx, cur.UserID); err == nil {
		clientID = u.ClientID
	}
	if err := s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: clientID, UserID: cur.UserID, Action: ActionRefreshReuse, IP: m.IP,
		Details: map[string]any{"session": cur.FamilyID, "rotation_count": cur.RotationCount,
			"previously_revoked": cur.RevokedReason, "tokens_revoked": n, "user_agent": truncate(m.UserAgent, 200)}}); err != nil {
		return refreshOutcome{}, err
	}
	return refreshOutcome{refused: true, reuse: reuse, reuseUserID: cur.UserID}, nil // commit the revocation, then refuse
}

// rotate replaces a live token by its successor. A user who may no longer hold a session
// has the session revoked instead, and is refused.
func (s *Service) rotate(ctx context.Context, tx *db.Tx, cur refreshRow, next string, m Meta, now time.Time) (refreshOutcome, error) {
	u, err := s.activeUser(ctx, tx, cur.UserID)
	if errors.Is(err, errBadRefresh) {
		if _, err := revokeFamilies(ctx, tx, []string{cur.FamilyID}, reasonDisabled, now); err != nil {
			return refreshOutcome{}, err
		}
		return refreshOutcome{refused: true}, nil
	}
	if err != nil {
		return refreshOutcome{}, err
	}
	if err := revokeRefresh(ctx, tx, cur.ID, reasonRotated, now); err != nil {
		return refreshOutcome{}, err
	}
	succ := refreshRow{UserID: cur.UserID, FamilyID: cur.FamilyID, RotationCount: cur.RotationCount + 1, ExpiresAt: now.Add(RefreshTTL)}
	if err := insertRefresh(ctx, tx, succ, tokenhash.Sum(next), m.IP, m.UserAgent, now); err != nil {
		if errors.Is(err, errTokenClash) {
			return refreshOutcome{}, errBadRefresh
		}
		return refreshOutcome{}, err
	}
	is, err := s.issue(u, cur.FamilyID, next, succ.ExpiresAt, now)
	return refreshOutcome{issued: is}, err
}

// activeUser loads a user who may still hold a session; errBadRefresh otherwise.
func (s *Service) activeUser(ctx context.Context, q db.Querier, id string) (User, error) {
	u, err := userByID(ctx, q, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Active) {
		return User{}, errBadRefresh
	}
	return u, err
}

// Logout ends the caller's session: its refresh tokens are revoked, and the access token
// (jti, for its remaining life) and the session (every access token issued to it) are
// blacklisted.
func (s *Service) Logout(ctx context.Context, sess Session, m Meta) error {
	now := s.clock.Now()
	entries := []blEntry{
		{Key: sess.JTI, UserID: sess.UserID, Reason: reasonLogout, ExpiresAt: sess.ExpiresAt.Add(Leeway)},
		{Key: familyKey(sess.FamilyID), UserID: sess.UserID, Reason: reasonLogout, ExpiresAt: now.Add(AccessTTL + Leeway)},
	}
	err := db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) error {
		n, err := revokeFamilies(ctx, tx, []string{sess.FamilyID}, reasonLogout, now)
		if err != nil {
			return err
		}
		if err := insertBlacklist(ctx, tx, entries, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: sess.ClientID, UserID: sess.UserID, Action: ActionLogout, IP: m.IP,
			Details: map[string]any{"session": sess.FamilyID, "tokens_revoked": n}})
	})
	if err != nil {
		return err
	}
	s.pushBlacklist(ctx, entries, now)
	return nil
}

// endSessions revokes and blacklists sessions inside tx; the caller pushes the returned
// entries to Redis after the commit.
func endSessions(ctx context.Context, tx db.Querier, userID string, families []string, reason string, now time.Time) ([]blEntry, error) {
	if _, err := revokeFamilies(ctx, tx, families, reason, now); err != nil {
		return nil, err
	}
	entries := make([]blEntry, 0, len(families))
	for _, f := range families {
		entries = append(entries, blEntry{Key: familyKey(f), UserID: userID, Reason: reason, ExpiresAt: now.Add(AccessTTL + Leeway)})
	}
	return entries, insertBlacklist(ctx, tx, entries, now)
}

// ChangePassword replaces the caller's password after checking the current one. The
// user's other sessions end; the caller's continues with a fresh access token (its old one
// still says a change is required).
func (s *Service) ChangePassword(ctx context.Context, sess Session, current, next string, m Meta) (Issued, error) {
	now := s.clock.Now()
	u, err := userByID(ctx, s.pool, sess.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Active) {
		return Issued{}, apperr.ErrUnauthenticated
	}
	if err != nil {
		return Issued{}, err
	}
	if len(current) > MaxPasswordBytes || s.hasher.Compare(u.passwordHash, current) != nil {
		return Issued{}, apperr.InvalidFields(map[string]string{"current_password": "is not the current password"})
	}
	if err := s.acceptable(u, next); err != nil {
		return Issued{}, err
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return Issued{}, fmt.Errorf("auth: hashing: %w", err)
	}
	var ended []blEntry
	err = db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) error {
		if err := setPassword(ctx, tx, u.ID, hash, now); err != nil {
			return fmt.Errorf("auth: changing password: %w", err)
		}
		others, err := liveFamilies(ctx, tx, u.ID, sess.FamilyID, now)
		if err != nil {
			return err
		}
		if ended, err = endSessions(ctx, tx, u.ID, others, reasonPasswordChanged, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: u.ClientID, UserID: u.ID, Action: ActionPasswordChanged, IP: m.IP,
			Details: map[string]any{"sessions_ended": len(others), "was_required": u.PasswordChangeRequired(now)}})
	})
	if err != nil {
		return Issued{}, err
	}
	s.pushBlacklist(ctx, ended, now)
	u.MustChangePassword, u.PasswordChangedAt = false, now
	return s.issue(u, sess.FamilyID, "", time.Time{}, now)
}

// acceptable applies the password policy and refuses the user's current password.
func (s *Service) acceptable(u User, next string) error {
	if problem := PasswordProblem(next); problem != "" {
		return apperr.InvalidFields(map[string]string{"new_password": problem})
	}
	if s.hasher.Compare(u.passwordHash, next) == nil {
		return apperr.InvalidFields(map[string]string{"new_password": "must differ from the current password"})
	}
	return nil
}

// RequestReset creates a single-use reset token (1 hour, stored hashed) for the email's
// user, if there is an active one, and mails the link. The caller answers the same way
// whatever happens here: errors are logged, not returned, once the lookup is done.
func (s *Service) RequestReset(ctx context.Context, email string, m Meta) error {
	now := s.clock.Now()
	email = strings.TrimSpace(email)
	if email == "" || len(email) > validate.MaxEmailLen || !validate.Text(email) {
		return nil
	}
	u, err := userByEmail(ctx, s.pool, email)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !u.Active {
		return nil
	}
	token := randomToken()
	err = db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) error {
		if err := insertToken(ctx, tx, u.ID, tokenhash.Sum(token), purposeReset, now.Add(ResetTTL), now); err != nil {
			return err
		}
		return s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: u.ClientID, UserID: u.ID, Action: ActionResetRequested, IP: m.IP})
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "auth: creating reset token", "user_id", u.ID, "error", err.Error())
		return nil
	}
	if err := s.mailer.Send(ctx, u.Email, "Optralis: reset your password", s.resetMail(token)); err != nil {
		s.logger.ErrorContext(ctx, "auth: sending reset mail", "user_id", u.ID, "error", err.Error())
	}
	return nil
}

func (s *Service) resetMail(token string) string {
	var b strings.Builder
	b.WriteString("Someone asked to reset the password of your Optralis account.\n\n")
	if s.dashboardURL != "" {
		fmt.Fprintf(&b, "Choose a new password here (the link works once, for one hour):\n%s/reset-password?token=%s\n\n",
			strings.TrimSuffix(s.dashboardURL, "/"), token)
	} else {
		fmt.Fprintf(&b, "Your reset code (valid once, for one hour):\n%s\n\n", token)
	}
	b.WriteString("If you did not ask for this, ignore this message: your password stays as it is.\n")
	return b.String()
}

// ResetPassword sets a new password with a reset token or an invitation's token. The
// token is consumed only if everything else succeeds (one transaction). Every session of
// the user ends.
func (s *Service) ResetPassword(ctx context.Context, token, next string, m Meta) error {
	now := s.clock.Now()
	if problem := PasswordProblem(next); problem != "" {
		return apperr.InvalidFields(map[string]string{"new_password": problem})
	}
	if token == "" || len(token) > 128 {
		return errBadReset
	}
	var ended []blEntry
	err := db.InTxAt(ctx, s.pool, now, func(tx *db.Tx) error {
		userID, purpose, err := consumeReset(ctx, tx, tokenhash.Sum(token), now)
		if errors.Is(err, ErrNotFound) {
			return errBadReset
		}
		if err != nil {
			return err
		}
		u, err := userByID(ctx, tx, userID)
		if errors.Is(err, ErrNotFound) || (err == nil && !u.Active) {
			return errBadReset
		}
		if err != nil {
			return err
		}
		if err := s.acceptable(u, next); err != nil {
			return err
		}
		hash, err := s.hasher.Hash(next)
		if err != nil {
			return fmt.Errorf("auth: hashing: %w", err)
		}
		if err := setPassword(ctx, tx, u.ID, hash, now); err != nil {
			return fmt.Errorf("auth: resetting password: %w", err)
		}
		all, err := liveFamilies(ctx, tx, u.ID, "", now)
		if err != nil {
			return err
		}
		if ended, err = endSessions(ctx, tx, u.ID, all, reasonPasswordReset, now); err != nil {
			return err
		}
		action := ActionPasswordReset
		if purpose == purposeInvite {
			action = ActionInvitationAccepted
		}
		return s.audit(ctx, tx, tx.Now, audit.Entry{ClientID: u.ClientID, UserID: u.ID, Action: action, IP: m.IP,
			Details: map[string]any{"sessions_ended": len(all)}})
	})
	if err != nil {
		return err
	}
	s.pushBlacklist(ctx, ended, now)
	return nil
}

// CreateUser adds a user with an initial password that satisfies the policy. The email
// must be valid and unused (ErrEmailTaken), the role fit the client (ErrInvalidRole).
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (string, error) {
	nu.Email = strings.TrimSpace(nu.Email)
	if err := validate.Email(nu.Email); err != nil {
		return "", apperr.InvalidFields(map[string]string{"email": err.Error()})
	}
	if problem := PasswordProblem(nu.Password); problem != "" {
		return "", apperr.InvalidFields(map[string]string{"password": problem})
	}
	hash, err := s.hasher.Hash(nu.Password)
	if err != nil {
		return "", fmt.Errorf("auth: hashing: %w", err)
	}
	return insertUser(ctx, s.pool, nu, hash, s.clock.Now())
}

// UserByID returns a user (ErrNotFound when there is none).
func (s *Service) UserByID(ctx context.Context, id string) (User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return User{}, ErrNotFound
	}
	return userByID(ctx, s.pool, id)
}

// UsersWithPasswordExpiringOn returns the active users whose password expires during the
// given UTC day: the reminders job calls it for today + 30, 10 and 3 days. Users who must
// change their password anyway (first login) are left out.
func (s *Service) UsersWithPasswordExpiringOn(ctx context.Context, day time.Time) ([]User, error) {
	y, mo, d := day.UTC().Date()
	start := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Add(-PasswordMaxAge)
	rows, err := s.pool.Query(ctx, userSelect+`
		WHERE u.is_active AND COALESCE(c.is_active, TRUE) AND NOT u.must_change_password
		  AND u.password_changed_at >= $1 AND u.password_changed_at < $2
		ORDER BY u.password_changed_at, u.id`, start, start.Add(24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("auth: expiring passwords: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("auth: expiring passwords: %w", err)
	}
	return users, nil
}
