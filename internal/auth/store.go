package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Storage errors. SQL errors are mapped to these by their SQLSTATE, never by their text.
var (
	ErrNotFound      = errors.New("auth: not found")
	ErrEmailTaken    = errors.New("auth: email already in use")
	ErrUnknownClient = errors.New("auth: no such client")
	ErrInvalidRole   = errors.New("auth: role does not fit the client (platform admins have none, others exactly one)")
	errTokenClash    = errors.New("auth: token hash already stored")
)

// PostgreSQL error codes the store maps.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgCheckViolation      = "23514"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

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
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

func userByEmail(ctx context.Context, q querier, email string) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, userSelect+` WHERE LOWER(u.email) = LOWER($1)`, email))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, fmt.Errorf("auth: user by email: %w", err)
	}
	return u, err
}

func userByID(ctx context.Context, q querier, id string) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, userSelect+` WHERE u.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, fmt.Errorf("auth: user by id: %w", err)
	}
	return u, err
}

func touchLogin(ctx context.Context, q querier, userID string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, userID, now)
	return err
}

func setPassword(ctx context.Context, q querier, userID, hash string, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE users SET password_hash = $2, password_changed_at = $3, must_change_password = FALSE, updated_at = $3
		WHERE id = $1`, userID, hash, now)
	return err
}

// clientView is the caller's client as /api/auth/me shows it.
type clientView struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	LicenseTier      string     `json:"license_tier"`
	LicenseExpiresAt *time.Time `json:"license_expires_at"`
	Active           bool       `json:"is_active"`
}

func clientByID(ctx context.Context, q querier, id string) (clientView, error) {
	var c clientView
	err := q.QueryRow(ctx, `SELECT id, name, license_tier, license_expires_at, is_active FROM clients WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.LicenseTier, &c.LicenseExpiresAt, &c.Active)
	if err != nil {
		return c, fmt.Errorf("auth: client: %w", err)
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

func insertUser(ctx context.Context, q querier, nu NewUser, hash string, now time.Time) (string, error) {
	var id string
	err := q.QueryRow(ctx, `
		INSERT INTO users (client_id, email, password_hash, name, role, must_change_password, password_changed_at, created_at, updated_at)
		VALUES (NULLIF($1, '')::uuid, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING id`,
		nu.ClientID, nu.Email, hash, nu.Name, nu.Role, nu.MustChangePassword, now).Scan(&id)
	switch pgCode(err) {
	case "":
	case pgUniqueViolation:
		return "", ErrEmailTaken
	case pgForeignKeyViolation:
		return "", ErrUnknownClient
	case pgCheckViolation:
		return "", ErrInvalidRole
	}
	if err != nil {
		return "", fmt.Errorf("auth: creating user: %w", err)
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
func lockRefresh(ctx context.Context, q querier, hash string) (refreshRow, error) {
	var r refreshRow
	err := q.QueryRow(ctx, `
		SELECT id, user_id, family_id, rotation_count, is_revoked, revoked_at, COALESCE(revoked_reason, ''), expires_at
		FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hash).
		Scan(&r.ID, &r.UserID, &r.FamilyID, &r.RotationCount, &r.Revoked, &r.RevokedAt, &r.RevokedReason, &r.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("auth: reading refresh token: %w", err)
	}
	return r, nil
}

func insertRefresh(ctx context.Context, q querier, r refreshRow, hash, ip, userAgent string, now time.Time) error {
	_, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (user_id, family_id, token_hash, rotation_count, ip_address, user_agent, expires_at, created_at)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), $7, $8)`,
		r.UserID, r.FamilyID, hash, r.RotationCount, truncate(ip, 45), truncate(userAgent, 512), r.ExpiresAt, now)
	if pgCode(err) == pgUniqueViolation {
		return errTokenClash
	}
	if err != nil {
		return fmt.Errorf("auth: storing refresh token: %w", err)
	}
	return nil
}

func revokeRefresh(ctx context.Context, q querier, id, reason string, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE refresh_tokens SET is_revoked = TRUE, revoked_at = $2, revoked_reason = $3
		WHERE id = $1 AND NOT is_revoked`, id, now, reason)
	if err != nil {
		return fmt.Errorf("auth: revoking refresh token: %w", err)
	}
	return nil
}

// revokeFamilies soft-revokes every live token of the given families.
func revokeFamilies(ctx context.Context, q querier, families []string, reason string, now time.Time) (int64, error) {
	if len(families) == 0 {
		return 0, nil
	}
	tag, err := q.Exec(ctx, `
		UPDATE refresh_tokens SET is_revoked = TRUE, revoked_at = $2, revoked_reason = $3
		WHERE family_id = ANY($1::uuid[]) AND NOT is_revoked`, families, now, reason)
	if err != nil {
		return 0, fmt.Errorf("auth: revoking token families: %w", err)
	}
	return tag.RowsAffected(), nil
}

// liveFamilies lists the user's sessions that still have a usable refresh token, except one.
func liveFamilies(ctx context.Context, q querier, userID, except string, now time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT DISTINCT family_id::text FROM refresh_tokens
		WHERE user_id = $1 AND NOT is_revoked AND expires_at > $2 AND family_id::text <> $3`, userID, now, except)
	if err != nil {
		return nil, fmt.Errorf("auth: listing sessions: %w", err)
	}
	fams, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("auth: listing sessions: %w", err)
	}
	return fams, nil
}

func insertReset(ctx context.Context, q querier, userID, hash string, expires, now time.Time) error {
	// A new link replaces any earlier unused one.
	if _, err := q.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return fmt.Errorf("auth: replacing reset tokens: %w", err)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)`,
		userID, hash, expires, now)
	if pgCode(err) == pgUniqueViolation {
		return errTokenClash
	}
	if err != nil {
		return fmt.Errorf("auth: storing reset token: %w", err)
	}
	return nil
}

// consumeReset marks an unexpired, unused reset token used and returns its user: the
// single-use check is the UPDATE's row count, so two concurrent resets cannot both win.
func consumeReset(ctx context.Context, q querier, hash string, now time.Time) (string, error) {
	var userID string
	err := q.QueryRow(ctx, `
		UPDATE password_reset_tokens SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id`, hash, now).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: using reset token: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return "", fmt.Errorf("auth: dropping other reset tokens: %w", err)
	}
	return userID, nil
}

// blEntry is one blacklist key: an access token's jti, or a whole session (family).
type blEntry struct {
	Key       string
	UserID    string
	Reason    string
	ExpiresAt time.Time
}

func insertBlacklist(ctx context.Context, q querier, entries []blEntry, now time.Time) error {
	for _, e := range entries {
		_, err := q.Exec(ctx, `
			INSERT INTO token_blacklist (jti, user_id, reason, expires_at, created_at)
			VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5)
			ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(token_blacklist.expires_at, EXCLUDED.expires_at)`,
			e.Key, e.UserID, e.Reason, e.ExpiresAt, now)
		if err != nil {
			return fmt.Errorf("auth: blacklisting: %w", err)
		}
	}
	return nil
}

func blacklistedInDB(ctx context.Context, q querier, keys []string, now time.Time) (bool, error) {
	var found bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM token_blacklist WHERE jti = ANY($1) AND expires_at > $2)`, keys, now).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("auth: blacklist lookup: %w", err)
	}
	return found, nil
}

func liveBlacklist(ctx context.Context, q querier, now time.Time) ([]blEntry, error) {
	rows, err := q.Query(ctx, `SELECT jti, expires_at FROM token_blacklist WHERE expires_at > $1`, now)
	if err != nil {
		return nil, fmt.Errorf("auth: reading blacklist: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (blEntry, error) {
		var e blEntry
		return e, r.Scan(&e.Key, &e.ExpiresAt)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: reading blacklist: %w", err)
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
