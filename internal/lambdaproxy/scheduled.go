package lambdaproxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Job is a unit of scheduled work. now is the instant the schedule fired, so a
// retried or delayed invocation still computes against its intended time.
type Job func(ctx context.Context, now time.Time) error

// ScheduledHandler adapts job to EventBridge scheduled events. now is the event's
// time in UTC, or the current time when the event carries none. The job's error is
// returned as is, so Lambda's async retries and the DLQ / failure destination see it.
// A nil logger means slog.Default().
func ScheduledHandler(job Job, logger *slog.Logger) func(context.Context, events.EventBridgeEvent) error {
	if logger == nil {
		logger = slog.Default()
	}
	return func(ctx context.Context, ev events.EventBridgeEvent) error {
		now := ev.Time.UTC()
		if ev.Time.IsZero() {
			now = time.Now().UTC()
		}
		log := logger.With("event_id", ev.ID, "detail_type", ev.DetailType,
			"resources", ev.Resources, "scheduled_time", now)

		log.InfoContext(ctx, "scheduled job started")
		start := time.Now()
		err := job(ctx, now)
		duration := time.Since(start)
		if err != nil {
			log.ErrorContext(ctx, "scheduled job failed", "duration", duration, "err", err)
			return err
		}
		log.InfoContext(ctx, "scheduled job finished", "duration", duration)
		return nil
	}
}
