package app_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/testenv"
)

// A cold start whose DATABASE_URL is a Secrets Manager reference, against an endpoint that
// accepts connections and never answers, fails within awsenv.CallTimeout with an error
// naming the call and the variable, instead of hanging until Lambda's init limit.
func TestColdStartSecretsDeadline(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_ENDPOINT_URL": testenv.SilentServer(t),
		"DATABASE_URL_SECRET_ARN": "arn:aws:secretsmanager:eu-west-3:1:secret:db"}
	start := time.Now()
	_, err := app.OpenLambda(context.Background(), "heartbeat", func(k string) string { return vars[k] }, io.Discard, nil)
	took := time.Since(start)
	if err == nil {
		t.Fatal("the cold start succeeded against a silent Secrets Manager")
	}
	for _, want := range []string{"DATABASE_URL", "Secrets Manager GetSecretValue", "no answer within 5s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %q", err, want)
		}
	}
	if took > awsenv.CallTimeout+2*time.Second {
		t.Fatalf("took %s, want about %s", took, awsenv.CallTimeout)
	}
}
