package auth

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
)

// Storage errors, returned as they are by the storage functions (db.Error maps SQLSTATEs
// and no-rows to them, never matching error text). Callers that must not tell a client
// why (login, refresh, reset) turn ErrNotFound into their generic answer.
var (
	ErrNotFound      = apperr.New(apperr.NotFound, "user not found")
	ErrEmailTaken    = apperr.New(apperr.Conflict, "email already in use")
	ErrUnknownClient = apperr.New(apperr.NotFound, "no such client")
	ErrInvalidRole   = apperr.New(apperr.Invalid, "role does not fit the client (platform admins have none, others exactly one)")
	errTokenClash    = apperr.New(apperr.Conflict, "token hash already stored")
)

// User is a dashboard user or platform administrator.
type User struct {
	ID                 string
	ClientID           string // "" for a platform admin
	Email              string
	Name               string
	Role               string
	Active             bool // the user and their client are both active
	MustChangePassword bool
	PasswordChangedAt  time.Time
	LastLoginAt        *time.Time
	passwordHash       string
}

// PasswordExpiresAt is when the password stops being accepted for anything but a change.
func (u User) PasswordExpiresAt() time.Time { return u.PasswordChangedAt.Add(PasswordMaxAge) }

// PasswordChangeRequired tells whether the user must change the password before using
// anything else: first login (or an administrator's reset) or an expired password.
func (u User) PasswordChangeRequired(now time.Time) bool {
	return u.MustChangePassword || !now.Before(u.PasswordExpiresAt())
}

const userSelect = `
	SELECT u.id, COALESCE(u.client_id::text, ''), u.email, u.name, u.role,
	       u.is_active AND COALESCE(c.is_active, TRUE), u.must_change_password,
	       u.password_changed_at, u.last_login_at, u.password_hash
	FROM users u LEFT JOIN clients c ON c.id = u.client_id`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.ClientID, &u.Email, &u.Name, &u.Role, &u.Active, &u.MustChangePassword,
		&u.PasswordChangedAt, &u.LastLoginAt, &u.passwordHash)
	return u, err
}

func userByEmail(ctx context.Context, q db.Querier, email string) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, userSelect+` WHERE LOWER(u.email) = LOWER($1)`, email))
	if err != nil {
		return User{}, db.Error(err, "auth: user by email", db.On(db.NoRows, ErrNotFound))
	}
	return u, nil
}

func userByID(ctx context.Context, q db.Querier, id string) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, userSelect+` WHERE u.id = $1`, id))
	if err != nil {
		return User{}, db.Error(err, "auth: user by id", db.On(db.NoRows, ErrNotFound))
	}
	return u, nil
}

func touchLogin(ctx context.Context, q db.Querier, userID string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, userID, now)
	return db.Error(err, "auth: recording login")
}

func setPassword(ctx context.Context, q db.Querier, userID, hash string, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE users SET password_hash = $2, password_changed_at = $3, must_change_password = FALSE, updated_at = $3
		WHERE id = $1`, userID, hash, now)
	return db.Error(err, "auth: setting password")
}

// clientView is the caller's client as /api/auth/me shows it.
type clientView struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	LicenseTier      string     `json:"license_tier"`
	LicenseExpiresAt *time.Time `json:"license_expires_at"`
	Active           bool       `json:"is_active"`
}

func clientByID(ctx context.Context, q db.Querier, id string) (clientView, error) {
	var c clientView
	err := q.QueryRow(ctx, `SELECT id, name, license_tier, license_expires_at, is_active FROM clients WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.LicenseTier, &c.LicenseExpiresAt, &c.Active)
	if err != nil {
		return c, db.Error(err, "auth: client", db.On(db.NoRows, ErrUnknownClient))
	}
	return c, nil
}

// NewUser is what CreateUser needs. Password is the initial password, hashed before storage.
type NewUser struct {
	Email    string
	Name     string
	Role     string // principal.RoleUser, RoleAdmin or RolePlatformAdmin
	ClientID string // "" only for a platform admin
	Password string
	// MustChangePassword: an initial password set by someone else must be changed at first login.
	MustChangePassword bool
}

func insertUser(ctx context.Context, q db.Querier, nu NewUser, hash string, now time.Time) (string, error) {
	var id string
	err := q.QueryRow(ctx, `
		INSERT INTO users (client_id, email, password_hash, name, role, must_change_password, password_changed_at, created_at, updated_at)
		VALUES (NULLIF($1, '')::uuid, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING id`,
		nu.ClientID, nu.Email, hash, nu.Name, nu.Role, nu.MustChangePassword, now).Scan(&id)
	if err != nil {
		return "", db.Error(err, "auth: creating user",
			db.On(db.UniqueViolation, ErrEmailTaken),
			db.On(db.ForeignKeyViolation, ErrUnknownClient),
			db.On(db.CheckViolation, ErrInvalidRole))
	}
	return id, nil
}

// refreshRow is one stored refresh token (its hash only).
type refreshRow struct {
	ID            string
	UserID        string
	FamilyID      string
	RotationCount int
	Revoked       bool
	RevokedAt     *time.Time
	RevokedReason string
	ExpiresAt     time.Time
}

// lockRefresh reads a refresh token by hash and locks it for the transaction, so that two
// refreshes with the same token are serialised.
func lockRefresh(ctx context.Context, q db.Querier, hash string) (refreshRow, error) {
	var r refreshRow
	err := q.QueryRow(ctx, `
		SELECT id, user_id, family_id, rotation_count, is_revoked, revoked_at, COALESCE(revoked_reason, ''), expires_at
		FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hash).
		Scan(&r.ID, &r.UserID, &r.FamilyID, &r.RotationCount, &r.Revoked, &r.RevokedAt, &r.RevokedReason, &r.ExpiresAt)
	if err != nil {
		return r, db.Error(err, "auth: reading refresh token", db.On(db.NoRows, ErrNotFound))
	}
	return r, nil
}

func insertRefresh(ctx context.Context, q db.Querier, r refreshRow, hash, ip, userAgent string, now time.Time) error {
	_, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (user_id, family_id, token_hash, rotation_count, ip_address, user_agent, expires_at, created_at)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), $7, $8)`,
		r.UserID, r.FamilyID, hash, r.RotationCount, truncate(ip, 45), truncate(userAgent, 512), r.ExpiresAt, now)
	return db.Error(err, "auth: storing refresh token", db.On(db.UniqueViolation, errTokenClash))
}

func revokeRefresh(ctx context.Context, q db.Querier, id, reason string, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE refresh_tokens SET is_revoked = TRUE, revoked_at = $2, revoked_reason = $3
		WHERE id = $1 AND NOT is_revoked`, id, now, reason)
	return db.Error(err, "auth: revoking refresh token")
}

// revokeFamilies soft-revokes every live token of the given families.
func revokeFamilies(ctx context.Context, q db.Querier, families []string, reason string, now time.Time) (int64, error) {
	if len(families) == 0 {
		return 0, nil
	}
	tag, err := q.Exec(ctx, `
		UPDATE refresh_tokens SET is_revoked = TRUE, revoked_at = $2, revoked_reason = $3
		WHERE family_id = ANY($1::uuid[]) AND NOT is_revoked`, families, now, reason)
	if err != nil {
		return 0, db.Error(err, "auth: revoking token families")
	}
	return tag.RowsAffected(), nil
}

// liveFamilies lists the user's sessions that still have a usable refresh token, except one.
func liveFamilies(ctx context.Context, q db.Querier, userID, except string, now time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT DISTINCT family_id::text FROM refresh_tokens
		WHERE user_id = $1 AND NOT is_revoked AND expires_at > $2 AND family_id::text <> $3`, userID, now, except)
	if err != nil {
		return nil, db.Error(err, "auth: listing sessions")
	}
	fams, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, db.Error(err, "auth: listing sessions")
	}
	return fams, nil
}

// insertToken stores a single-use password token (a reset or an invitation).
func insertToken(ctx context.Context, q db.Querier, userID, hash, purpose string, expires, now time.Time) error {
	// A new link replaces any earlier unused one.
	if _, err := q.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return db.Error(err, "auth: replacing reset tokens")
	}
	_, err := q.Exec(ctx, `
		INSERT INTO password_reset_tokens (user_id, token_hash, purpose, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`,
		userID, hash, purpose, expires, now)
	return db.Error(err, "auth: storing reset token", db.On(db.UniqueViolation, errTokenClash))
}

// consumeReset marks an unexpired, unused password token used and returns its user and
// purpose: the single-use check is the UPDATE's row count, so two concurrent resets cannot
// both win.
func consumeReset(ctx context.Context, q db.Querier, hash string, now time.Time) (userID, purpose string, err error) {
	err = q.QueryRow(ctx, `
		UPDATE password_reset_tokens SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id, purpose`, hash, now).Scan(&userID, &purpose)
	if err != nil {
		return "", "", db.Error(err, "auth: using reset token", db.On(db.NoRows, ErrNotFound))
	}
	if _, err := q.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return "", "", db.Error(err, "auth: dropping other reset tokens")
	}
	return userID, purpose, nil
}

// blEntry is one blacklist key: an access token's jti, or a whole session (family).
type blEntry struct {
	Key       string
	UserID    string
	Reason    string
	ExpiresAt time.Time
}

func insertBlacklist(ctx context.Context, q db.Querier, entries []blEntry, now time.Time) error {
	for _, e := range entries {
		_, err := q.Exec(ctx, `
			INSERT INTO token_blacklist (jti, user_id, reason, expires_at, created_at)
			VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5)
			ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(token_blacklist.expires_at, EXCLUDED.expires_at)`,
			e.Key, e.UserID, e.Reason, e.ExpiresAt, now)
		if err != nil {
			return db.Error(err, "auth: blacklisting")
		}
	}
	return nil
}

func blacklistedInDB(ctx context.Context, q db.Querier, keys []string, now time.Time) (bool, error) {
	var found bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM token_blacklist WHERE jti = ANY($1) AND expires_at > $2)`, keys, now).Scan(&found)
	if err != nil {
		return false, db.Error(err, "auth: blacklist lookup")
	}
	return found, nil
}

func liveBlacklist(ctx context.Context, q db.Querier, now time.Time) ([]blEntry, error) {
	rows, err := q.Query(ctx, `SELECT jti, expires_at FROM token_blacklist WHERE expires_at > $1`, now)
	if err != nil {
		return nil, db.Error(err, "auth: reading blacklist")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (blEntry, error) {
		var e blEntry
		return e, r.Scan(&e.Key, &e.ExpiresAt)
	})
	if err != nil {
		return nil, db.Error(err, "auth: reading blacklist")
	}
	return out, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
