// Command heartbeatwriter is the queue ingest's writer (INGEST_MODE=queue): an SQS event
// source with partial batch failures delivers batches of queued heartbeats, written as
// one group each.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app/heartbeatwriterfn"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeatwriter:", err)
		os.Exit(1)
	}
}

// run builds the function once per cold start and serves invocations until the runtime
// stops the instance.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	consume, _, err := heartbeatwriterfn.Open(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	lambda.Start(lambdaproxy.SQSHandler(consume))
	return nil
}
