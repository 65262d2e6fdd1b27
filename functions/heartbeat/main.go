// Command heartbeat is the agents-domain function (API Gateway HTTP API with mutual TLS):
// POST /agent/heartbeat and GET /agent/config/collectors.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat:", err)
		os.Exit(1)
	}
}

// run builds the function once per cold start and serves invocations until the runtime
// stops the instance.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	f, err := heartbeatfn.Open(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	// Behind API Gateway the certificate is in the request context; behind the ALB
	// (AGENTS_ENDPOINT=alb) in its mutual TLS header.
	endpoint, err := config.AgentsEndpoint(getenv)
	if err != nil {
		return err
	}
	lambda.Start(lambdaproxy.AgentsHandler(endpoint, f.Handler))
	return nil
}
