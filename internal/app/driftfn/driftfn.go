// Package driftfn assembles the drift function: the hourly drift detection over the
// machines' metric baselines, explained by the AI provider when one is configured.
package driftfn

import (
	"context"
	"io"
	"time"

	"github.com/optralis/optralis/internal/aiclient"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/drift"
	"github.com/optralis/optralis/internal/routes"
)

// Budget is the run's wall-time budget: the function's 5-minute timeout leaves room after
// it for the batch in progress and its provider calls.
const Budget = 3 * time.Minute

// Deps is the drift run's dependencies from the core and the AI settings (no provider
// when ai has no key).
func Deps(core app.Core, ai config.AI) drift.Deps {
	d := drift.Deps{Pool: core.Pool, Logger: core.Logger, MaxAICalls: ai.MaxCallsPerRun, Budget: Budget}
	if ai.Enabled() {
		d.AI = drift.Provider{Client: aiclient.Client{URL: ai.URL, Key: ai.Key, Model: ai.Model, Timeout: aiclient.DefaultTimeout}}
	}
	return d
}

// Job runs the drift detection at now.
func Job(core app.Core, ai config.AI) app.JobFunc {
	d := Deps(core, ai)
	return func(ctx context.Context, now time.Time) error {
		_, err := drift.Run(ctx, d, now)
		return err
	}
}

// Open is the Lambda's cold start: the core, and the AI settings (AI_API_KEY from its
// Secrets Manager reference AI_API_KEY_SECRET_ARN, resolved once).
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var ai config.AI
	core, err := app.OpenLambda(ctx, routes.FnDrift, getenv, stdout, func(getenv func(string) string) error {
		var err error
		ai, err = config.LoadAI(getenv)
		return err
	})
	if err != nil {
		return app.Function{}, err
	}
	core.Logger.Info("drift function ready", "ai_provider", ai.Enabled(), "ai_model", ai.Model, "ai_max_calls", ai.MaxCallsPerRun)
	return app.Function{Job: Job(core, ai), Logger: core.Logger, Close: core.Close}, nil
}
