// Command admin is the dashboard and platform administration API (/api/* for a client's
// users, /api/admin/* for platform admins; API Gateway REST).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}

// run builds the function once per cold start and serves invocations until the runtime
// stops the instance.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	f, err := adminfn.Open(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	lambda.Start(lambdaproxy.RESTHandler(f.Handler))
	return nil
}
