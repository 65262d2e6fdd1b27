// Command alerts evaluates the alert rules and sends the notifications (EventBridge schedule, every minute).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app/alertsfn"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "alerts:", err)
		os.Exit(1)
	}
}

// run builds the function once per cold start and serves invocations until the runtime
// stops the instance.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	f, err := alertsfn.Open(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	lambda.Start(lambdaproxy.ScheduledHandler(lambdaproxy.Job(f.Job), f.Logger))
	return nil
}
