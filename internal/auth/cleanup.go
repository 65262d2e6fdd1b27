package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Cleanup is the hourly clean-up (CleanupJob) for a process that authenticates nobody:
// the cleanup function deletes expired rows with the pool alone and needs no JWT secret.
func Cleanup(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, now time.Time) error {
	return (&Service{pool: pool, logger: logger}).CleanupJob(ctx, now)
}
