// Command hello is the cold-start baseline: the smallest Go Lambda, measured by
// bench/coldstart in the same run and the same way as the real functions.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() {
	lambda.Start(func() (string, error) { return "hello", nil })
}
