// Command migrate applies the database migrations at deploy time (invoked by the stack's
// deployment trigger), then backfills the hourly aggregates. Never run on a cold start of
// the serving functions.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/clock"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

// run reads the configuration once per cold start and serves invocations until the
// runtime stops the instance.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	h, err := migratefn.Open(ctx, getenv, stdout, clock.System{})
	if err != nil {
		return err
	}
	lambda.Start(h)
	return nil
}
