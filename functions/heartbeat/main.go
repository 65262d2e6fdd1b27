// Command heartbeat is the agents-domain function (API Gateway HTTP API with mutual TLS):
// POST /agent/heartbeat and GET /agent/config/collectors.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("heartbeat")
	lambda.Start(lambdaproxy.HTTPAPIHandler(deps.FunctionHandler(app.FnHeartbeat)))
}
