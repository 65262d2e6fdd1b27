// Command cleanup is the hourly maintenance job (EventBridge schedule): the postgres-mode
// rollups, expired auth entries and expired install tokens.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("cleanup")
	lambda.Start(lambdaproxy.ScheduledHandler(deps.CleanupJob, deps.Logger))
}
