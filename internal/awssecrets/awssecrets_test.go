package awssecrets_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/optralis/optralis/internal/awssecrets"
	"github.com/optralis/optralis/internal/config"
)

// fakeSM is an in-memory Secrets Manager that counts calls per secret.
type fakeSM struct {
	mu      sync.Mutex
	secrets map[string]string
	calls   map[string]int
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[*in.SecretId]++
	v, ok := f.secrets[*in.SecretId]
	if !ok {
		return nil, errors.New("ResourceNotFoundException: secret not found")
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: &v}, nil
}

const (
	dbARN   = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:optralis/database-AbCdEf"
	jwtARN  = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:optralis/jwt-AbCdEf"
	smtpARN = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:optralis/smtp-AbCdEf"
	rdsARN  = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:optralis/aurora-AbCdEf"
)

func newFake() *fakeSM {
	return &fakeSM{calls: map[string]int{}, secrets: map[string]string{
		dbARN:   "postgres://optralis:s3cret@db.internal:5432/optralis?sslmode=require",
		jwtARN:  strings.Repeat("k", 48),
		smtpARN: `{"username":"AKIAEXAMPLE","password":"smtp-pass"}`,
		rdsARN:  `{"engine":"postgres","username":"optralis","password":"p@ss:w/rd?#","host":"cluster.example.eu-west-3.rds.amazonaws.com","port":5432,"dbname":"optralis"}`,
	}}
}

// env builds an Env over a fixed environment, counting client constructions.
func env(t *testing.T, sm *fakeSM, vars map[string]string) (*awssecrets.Env, *int) {
	t.Helper()
	made := 0
	e := awssecrets.New(context.Background(), func(k string) string { return vars[k] }, func(context.Context) (awssecrets.Client, error) {
		made++
		return sm, nil
	})
	return e, &made
}

func TestResolvesSecretReferencesOnceEach(t *testing.T) {
	sm := newFake()
	e, made := env(t, sm, map[string]string{
		"DATABASE_URL_SECRET_ARN": dbARN,
		"JWT_SECRET_SECRET_ARN":   jwtARN,
		"SMTP_HOST":               "email-smtp.eu-west-3.amazonaws.com",
		"SMTP_FROM":               "noreply@example.com",
		"SMTP_USER_SECRET_ARN":    smtpARN,
		"SMTP_USER_SECRET_KEY":    "username",
		"SMTP_PASS_SECRET_ARN":    smtpARN,
		"SMTP_PASS_SECRET_KEY":    "password",
	})
	// The real consumer: config.Load reads every variable through the wrapper.
	cfg, err := config.Load(e.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if e.Err() != nil {
		t.Fatal(e.Err())
	}
	if cfg.DatabaseURL != newFake().secrets[dbARN] || string(cfg.JWTSecret) != strings.Repeat("k", 48) {
		t.Errorf("database URL / JWT secret not resolved: %q", cfg.DatabaseURL)
	}
	if cfg.SMTP.User != "AKIAEXAMPLE" || cfg.SMTP.Pass != "smtp-pass" || cfg.SMTP.Host == "" {
		t.Errorf("SMTP = %+v", cfg.SMTP)
	}
	// Reading again costs nothing: one client, one call per secret (SMTP's two keys share one).
	e.Getenv("DATABASE_URL")
	e.Getenv("SMTP_PASS")
	if *made != 1 {
		t.Errorf("client built %d times, want 1", *made)
	}
	for arn, n := range sm.calls {
		if n != 1 {
			t.Errorf("%s fetched %d times, want 1", arn, n)
		}
	}
}

func TestPlainValueWinsAndNoClientWithoutReferences(t *testing.T) {
	sm := newFake()
	e, made := env(t, sm, map[string]string{
		"DATABASE_URL":            "postgres://local/db",
		"DATABASE_URL_SECRET_ARN": dbARN,
		"PORT":                    "3000",
	})
	if got := e.Getenv("DATABASE_URL"); got != "postgres://local/db" {
		t.Errorf("DATABASE_URL = %q, want the plain value", got)
	}
	if e.Getenv("PORT") != "3000" || e.Getenv("REDIS_URL") != "" {
		t.Error("plain variables must pass through")
	}
	if *made != 0 || len(sm.calls) != 0 {
		t.Errorf("no secret was needed, yet client built %d times, %d calls", *made, len(sm.calls))
	}
}

func TestRDSFormatBuildsEscapedURL(t *testing.T) {
	e, _ := env(t, newFake(), map[string]string{
		"DATABASE_URL_SECRET_ARN":    rdsARN,
		"DATABASE_URL_SECRET_FORMAT": "rds",
	})
	got := e.Getenv("DATABASE_URL")
	if e.Err() != nil {
		t.Fatal(e.Err())
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	pw, _ := u.User.Password()
	if u.Scheme != "postgres" || u.User.Username() != "optralis" || pw != "p@ss:w/rd?#" ||
		u.Host != "cluster.example.eu-west-3.rds.amazonaws.com:5432" || u.Path != "/optralis" || u.Query().Get("sslmode") != "require" {
		t.Errorf("URL %q parsed as %+v", got, u)
	}
	if _, _, err := config.Database(e.Getenv); err != nil {
		t.Errorf("config.Database rejects the built URL: %v", err)
	}
}

func TestFailuresAreReported(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"missing secret", map[string]string{"JWT_SECRET_SECRET_ARN": "arn:aws:secretsmanager:eu-west-3:1:secret:nope"}, "not found"},
		{"missing key", map[string]string{"JWT_SECRET_SECRET_ARN": smtpARN, "JWT_SECRET_SECRET_KEY": "jwt"}, `no non-empty string field "jwt"`},
		{"key on plain secret", map[string]string{"JWT_SECRET_SECRET_ARN": jwtARN, "JWT_SECRET_SECRET_KEY": "jwt"}, "not a JSON object"},
		{"unknown format", map[string]string{"JWT_SECRET_SECRET_ARN": jwtARN, "JWT_SECRET_SECRET_FORMAT": "xml"}, "unknown format"},
		{"rds format on plain secret", map[string]string{"JWT_SECRET_SECRET_ARN": jwtARN, "JWT_SECRET_SECRET_FORMAT": "rds"}, "not the JSON of an RDS secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _ := env(t, newFake(), c.vars)
			if v := e.Getenv("JWT_SECRET"); v != "" {
				t.Errorf("got %q, want empty on failure", v)
			}
			if err := e.Err(); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "JWT_SECRET") {
				t.Errorf("Err() = %v, want it to name JWT_SECRET and say %q", err, c.want)
			}
		})
	}
	t.Run("client construction fails", func(t *testing.T) {
		e := awssecrets.New(context.Background(), func(k string) string {
			return map[string]string{"JWT_SECRET_SECRET_ARN": jwtARN}[k]
		}, func(context.Context) (awssecrets.Client, error) {
			return nil, errors.New("no region")
		})
		if e.Getenv("JWT_SECRET") != "" || e.Err() == nil || !strings.Contains(e.Err().Error(), "no region") {
			t.Errorf("Err() = %v", e.Err())
		}
	})
}
