// Package heartbeatwriterfn assembles the heartbeat writer function of the queue ingest
// mode: it consumes the heartbeat queue in batches and writes each batch with the group
// writer, reporting per-message failures.
package heartbeatwriterfn

import (
	"context"
	"io"
	"log/slog"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/lambdaproxy"
	"github.com/optralis/optralis/internal/routes"
)

// New is the writer over core, keeping an expired licence's heartbeats for graceDays
// (LICENSE_GRACE_DAYS, as the heartbeat function).
func New(core app.Core, graceDays int) *heartbeat.Writer {
	if graceDays == 0 {
		graceDays = -1 // WriterConfig: negative is none, 0 its default
	}
	return heartbeat.NewWriter(heartbeat.WriterConfig{Pool: core.Pool, Logger: core.Logger, LicenceGraceDays: graceDays})
}

// Handler is the SQS batch handler: every message of the batch in one group, the ids of
// those that failed transiently handed back for redelivery, one summary line per batch.
func Handler(w *heartbeat.Writer, logger *slog.Logger) func(context.Context, []lambdaproxy.QueueMessage) []string {
	return func(ctx context.Context, msgs []lambdaproxy.QueueMessage) []string {
		q := make([]heartbeat.Queued, len(msgs))
		for i, m := range msgs {
			q[i] = heartbeat.Queued{ID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount}
		}
		retry, st := w.Consume(ctx, q)
		logger.InfoContext(ctx, "heartbeat batch", "messages", len(msgs), "written", st.Written,
			"duplicates", st.Duplicates, "dropped", st.Dropped, "retried", st.Retried)
		return retry
	}
}

// Open is the Lambda's cold start; the returned handler is what lambdaproxy.SQSHandler
// serves.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (func(context.Context, []lambdaproxy.QueueMessage) []string, func(), error) {
	var grace int
	core, err := app.OpenLambda(ctx, routes.FnHeartbeatWriter, getenv, stdout,
		func(getenv func(string) string) (err error) { grace, err = config.LicenceGraceDays(getenv); return err })
	if err != nil {
		return nil, nil, err
	}
	return Handler(New(core, grace), core.Logger), core.Close, nil
}
