// Command migrate applies the database migrations at deploy time (invoked by the stack's
// deployment trigger), then backfills the hourly aggregates. Never run on a cold start of
// the serving functions.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/logging"
)

func main() {
	logger := logging.New(os.Stdout, slog.LevelInfo)
	env := app.LambdaEnv(context.Background()) // DATABASE_URL from its Secrets Manager reference
	url, mode, err := config.Database(env.Getenv)
	if serr := env.Err(); serr != nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (app.MigrateResult, error) {
		pcfg, err := db.Config(url, db.ToolProfile())
		if err != nil {
			return app.MigrateResult{}, err
		}
		pool, err := db.Open(ctx, pcfg)
		if err != nil {
			return app.MigrateResult{}, err
		}
		defer pool.Close()
		return app.Migrate(ctx, pool, mode, time.Now().UTC(), logger)
	})
}
