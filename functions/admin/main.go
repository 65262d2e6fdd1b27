// Command admin is the dashboard and platform administration API (/api/* for a client's
// users, /api/admin/* for platform admins; API Gateway REST).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("admin")
	lambda.Start(lambdaproxy.RESTHandler(deps.FunctionHandler(app.FnAdmin)))
}
