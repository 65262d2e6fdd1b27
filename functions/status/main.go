// Command status is the public status page function (GET /status, API Gateway REST).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("status")
	lambda.Start(lambdaproxy.RESTHandler(deps.FunctionHandler(app.FnStatus)))
}
