// Package authclean deletes expired authentication rows (blacklist entries, refresh and
// reset tokens). The cleanup function uses it without linking the authentication service
// (bcrypt, JWT) or needing its secret.
package authclean

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/optralis/optralis/internal/db"
)

// Blacklist deletes the blacklist rows whose tokens have expired (the hourly job;
// Redis entries expire on their own).
func Blacklist(ctx context.Context, q db.Querier, now time.Time) (int, error) {
	tag, err := q.Exec(ctx, `DELETE FROM token_blacklist WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("authclean: blacklist cleanup: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Tokens deletes expired refresh tokens and password reset tokens. A refresh token
// is kept until it expires even when revoked: presenting it must still be recognised as
// reuse of a revoked token.
func Tokens(ctx context.Context, q db.Querier, now time.Time) (refresh, reset int, err error) {
	tag, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, now)
	if err != nil {
		return 0, 0, fmt.Errorf("authclean: refresh token cleanup: %w", err)
	}
	refresh = int(tag.RowsAffected())
	tag, err = q.Exec(ctx, `DELETE FROM password_reset_tokens WHERE expires_at < $1`, now)
	if err != nil {
		return refresh, 0, fmt.Errorf("authclean: reset token cleanup: %w", err)
	}
	return refresh, int(tag.RowsAffected()), nil
}

// Run is the hourly clean-up of expired blacklist entries and tokens.
func Run(ctx context.Context, q db.Querier, logger *slog.Logger, now time.Time) error {
	bl, err := Blacklist(ctx, q, now)
	if err != nil {
		return err
	}
	rt, pr, err := Tokens(ctx, q, now)
	if err != nil {
		return err
	}
	logger.InfoContext(ctx, "auth cleanup", "blacklist", bl, "refresh_tokens", rt, "reset_tokens", pr)
	return nil
}
