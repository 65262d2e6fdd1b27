// Command uptime is the 30-minute health check (EventBridge schedule).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("uptime")
	lambda.Start(lambdaproxy.ScheduledHandler(deps.UptimeJob, deps.Logger))
}
