// Command bootstrap is the enrolment function (POST /api/public/bootstrap, GET /install.sh,
// GET /agent/requirements; API Gateway REST). It signs machine certificates through KMS.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	deps := app.OpenLambda("bootstrap")
	lambda.Start(lambdaproxy.RESTHandler(deps.FunctionHandler(app.FnBootstrap)))
}
