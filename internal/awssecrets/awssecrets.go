// Package awssecrets resolves configuration values that a Lambda's environment holds only as
// Secrets Manager references, so no secret ever appears in the CloudFormation template.
//
// For a variable VAR that is empty in the environment, VAR_SECRET_ARN names the secret that
// holds its value; each secret is fetched once per process (cold start), however many
// variables refer to it. Optional companions:
//
//	VAR_SECRET_KEY=k        the secret is a JSON object: use its string field k
//	VAR_SECRET_FORMAT=rds   the secret is the JSON that RDS/Aurora generates (username,
//	                        password, host, port, dbname): build a postgres:// URL from it
//
// A value set directly in the environment always wins (the local stack and tests use that).
package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/optralis/optralis/internal/awsenv"
)

// Client is the part of the Secrets Manager API this package uses
// (*secretsmanager.Client satisfies it; tests use a fake).
type Client interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Env is an environment whose secret references are resolved on first use.
// It is safe for concurrent use.
type Env struct {
	ctx       context.Context
	getenv    func(string) string
	newClient func(context.Context) (Client, error)

	mu      sync.Mutex
	client  Client
	secrets map[string]string // ARN -> SecretString
	err     error             // the first failure, reported by Err
}

// New wraps getenv (os.Getenv on Lambda). newClient is called at most once, and only when a
// variable actually refers to a secret, so the local stack never touches AWS.
func New(ctx context.Context, getenv func(string) string, newClient func(context.Context) (Client, error)) *Env {
	return &Env{ctx: ctx, getenv: getenv, newClient: newClient, secrets: map[string]string{}}
}

// Getenv returns name's value: from the environment, else from the secret that
// name_SECRET_ARN refers to. On a failure it returns "" and records the error for Err, so a
// config loader sees a missing value and the caller reports the real cause.
func (e *Env) Getenv(name string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	arn := e.getenv(name + "_SECRET_ARN")
	if arn == "" {
		return ""
	}
	v, err := e.resolve(name, arn)
	if err != nil {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
		return ""
	}
	return v
}

// Err is the first failure to resolve a secret reference, or nil.
func (e *Env) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *Env) resolve(name, arn string) (string, error) {
	raw, err := e.secret(arn)
	if err != nil {
		return "", fmt.Errorf("%s: reading secret %s: %w", name, arn, err)
	}
	key, format := e.getenv(name+"_SECRET_KEY"), e.getenv(name+"_SECRET_FORMAT")
	switch {
	case format == "rds":
		u, err := rdsURL(raw)
		if err != nil {
			return "", fmt.Errorf("%s: secret %s: %w", name, arn, err)
		}
		return u, nil
	case format != "":
		return "", fmt.Errorf("%s_SECRET_FORMAT: unknown format %q (only \"rds\")", name, format)
	case key != "":
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			return "", fmt.Errorf("%s: secret %s is not a JSON object, so %s_SECRET_KEY cannot apply", name, arn, name)
		}
		v, ok := fields[key].(string)
		if !ok || v == "" {
			return "", fmt.Errorf("%s: secret %s has no non-empty string field %q", name, arn, key)
		}
		return v, nil
	default:
		if raw == "" {
			return "", fmt.Errorf("%s: secret %s is empty", name, arn)
		}
		return raw, nil
	}
}

// secret fetches arn's SecretString, once per process.
func (e *Env) secret(arn string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.secrets[arn]; ok {
		return v, nil
	}
	if e.client == nil {
		c, err := e.newClient(e.ctx)
		if err != nil {
			return "", fmt.Errorf("secrets manager client: %w", err)
		}
		e.client = c
	}
	out, err := awsenv.Call(e.ctx, "Secrets Manager GetSecretValue", func(ctx context.Context) (*secretsmanager.GetSecretValueOutput, error) {
		return e.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	})
	if err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", errors.New("the secret has no string value (binary secrets are not supported)")
	}
	e.secrets[arn] = *out.SecretString
	return *out.SecretString, nil
}

// rdsURL builds a postgres URL from the JSON secret RDS generates for a cluster.
func rdsURL(raw string) (string, error) {
	var s struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"` // a number, sometimes a string
		DBName   string          `json:"dbname"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", errors.New("not the JSON of an RDS secret")
	}
	if s.Username == "" || s.Password == "" || s.Host == "" {
		return "", errors.New("RDS secret lacks username, password or host")
	}
	port := 5432
	if len(s.Port) > 0 {
		var n json.Number
		if err := json.Unmarshal(s.Port, &n); err != nil {
			var str string
			if err := json.Unmarshal(s.Port, &str); err != nil {
				return "", errors.New("RDS secret has an invalid port")
			}
			n = json.Number(str)
		}
		p, err := strconv.Atoi(n.String())
		if err != nil || p < 1 || p > 65535 {
			return "", errors.New("RDS secret has an invalid port")
		}
		port = p
	}
	db := s.DBName
	if db == "" {
		db = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.Username, s.Password),
		Host:     s.Host + ":" + strconv.Itoa(port),
		Path:     "/" + db,
		RawQuery: "sslmode=require",
	}
	return u.String(), nil
}

// SDKClient is the real client, built with the AWS configuration load returns (region and
// credentials from the Lambda environment: awsenv.Loader).
func SDKClient(load func(context.Context) (aws.Config, error)) func(context.Context) (Client, error) {
	return func(ctx context.Context) (Client, error) {
		cfg, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return secretsmanager.NewFromConfig(cfg), nil
	}
}
