// Command auth is the dashboard authentication function (/api/auth/*, API Gateway REST).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("auth")
	lambda.Start(lambdaproxy.RESTHandler(deps.FunctionHandler(app.FnAuth)))
}
