package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/optralis/optralis/internal/db"
)

func TestRetryLockNotAvailable(t *testing.T) {
	busy := fmt.Errorf("refreshing metrics_hourly: %w", &pgconn.PgError{Code: db.LockNotAvailable, Message: "concurrent refresh"})
	b := db.Backoff{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond}

	// Refused twice, then done: three calls, nil.
	calls := 0
	err := db.RetryLockNotAvailable(t.Context(), b, func(context.Context) error {
		if calls++; calls < 3 {
			return busy
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}

	// Always refused: bounded, the last error returned.
	calls = 0
	err = db.RetryLockNotAvailable(t.Context(), b, func(context.Context) error { calls++; return busy })
	if db.Code(err) != db.LockNotAvailable || calls != 4 {
		t.Fatalf("err %v after %d calls, want 55P03 after 4", err, calls)
	}

	// Any other error is not retried.
	calls = 0
	other := &pgconn.PgError{Code: db.UniqueViolation}
	err = db.RetryLockNotAvailable(t.Context(), b, func(context.Context) error { calls++; return other })
	if !errors.Is(err, other) || calls != 1 {
		t.Fatalf("err %v after %d calls, want the unique violation after 1", err, calls)
	}

	// A cancelled context stops the waits.
	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	err = db.RetryLockNotAvailable(ctx, db.Backoff{Attempts: 100, Base: time.Hour, Max: time.Hour}, func(context.Context) error {
		calls++
		cancel()
		return busy
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
