// Package notify delivers alert notifications: maintenance windows → grouping → dedup →
// delivery with retries → outcome in notification_history (docs/alerting.md).
package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Deps are the pipeline's collaborators.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
}

// Result counts what a run did.
type Result struct {
	Sent, Muted, Failed int
}

// Run notifies every alert event (firing or resolved) not yet handed to its channels.
// PLACEHOLDER until the pipeline lands (issue 13): it notifies nothing.
func Run(ctx context.Context, d Deps, now time.Time) (Result, error) { return Result{}, nil }
