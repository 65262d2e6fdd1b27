package awsenv_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/optralis/optralis/internal/awsenv"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// A client built from the environment signs with the execution role's credentials and
// reaches the service (here a local HTTP server standing in for Secrets Manager's endpoint).
func TestConfigSignsRequestsWithTheRoleCredentials(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, body = r, string(b)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"ARN":"arn:aws:secretsmanager:eu-west-3:1:secret:db","Name":"db","SecretString":"postgres://x"}`)
	}))
	defer srv.Close()
	cfg, err := awsenv.Config(env(map[string]string{"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "session-token"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(srv.URL)
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SecretString) != "postgres://x" {
		t.Fatalf("secret %q", aws.ToString(out.SecretString))
	}
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-3/secretsmanager/aws4_request") {
		t.Errorf("Authorization %q", auth)
	}
	if got.Header.Get("X-Amz-Security-Token") != "session-token" || got.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
		!strings.Contains(body, `"SecretId":"db"`) {
		t.Errorf("request: %v %s", got.Header, body)
	}
}

func TestConfigRefusesAnIncompleteEnvironment(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"no region":      {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
		"no credentials": {"AWS_REGION": "eu-west-3"},
	} {
		if _, err := awsenv.Config(env(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg, err := awsenv.Config(env(map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
	if err != nil || cfg.Region != "us-east-1" {
		t.Errorf("AWS_DEFAULT_REGION: %v %v", cfg.Region, err)
	}
}
