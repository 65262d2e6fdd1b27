package kmsca_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/ca/kmsca"
	"github.com/optralis/optralis/internal/testenv"
)

// A KMS endpoint that accepts connections and never answers fails the cold start within
// awsenv.CallTimeout, with an error naming the call, instead of hanging until the
// platform kills the function.
func TestGetPublicKeyHasADeadline(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_ENDPOINT_URL": testenv.SilentServer(t)}
	cfg, err := awsenv.Config(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = kmsca.NewKMSSigner(context.Background(), kms.NewFromConfig(cfg), "arn:aws:kms:eu-west-3:1:key/k")
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "KMS GetPublicKey") || !strings.Contains(err.Error(), "no answer within 5s") {
		t.Fatalf("err = %v, want the call named and its deadline", err)
	}
	if took > awsenv.CallTimeout+2*time.Second {
		t.Fatalf("took %s, want about %s", took, awsenv.CallTimeout)
	}
}
