package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Config is one deployment's settings: a JSON file (infra/config/example.json is the
// offline example `make synth` uses; `make deploy CONFIG=...` takes yours).
type Config struct {
	Account   string `json:"account"`
	Region    string `json:"region"`
	StackName string `json:"stackName"` // the main stack; the CA key lives in <StackName>Ca

	// API domain: REST API + WAF (dashboard API, auth, installers, status).
	APIDomain         string `json:"apiDomain"`
	APICertificateARN string `json:"apiCertificateArn"` // ACM, in Region

	// Agents domain: HTTP API with mutual TLS.
	AgentsDomain         string `json:"agentsDomain"`
	AgentsCertificateARN string `json:"agentsCertificateArn"` // ACM, in Region
	// CABundle is the PEM file of the Optralis CA certificate(s) API Gateway trusts for
	// client certificates (the truststore), relative to the repository root. The first
	// certificate is the current issuing CA, handed to the functions that sign.
	CABundle string `json:"caBundle"`
	// AgentDownloadURL is where installers fetch the agent binaries (optional,
	// AGENT_DOWNLOAD_URL).
	AgentDownloadURL string `json:"agentDownloadUrl"`
	// HeartbeatsPerMinute is the agents API's throttle (the spec's 3000 req/min budget).
	// API Gateway throttles per stage and route, for all clients together.
	HeartbeatsPerMinute int `json:"heartbeatsPerMinute"`

	// Dashboard and status page on CloudFront. Domain and certificate are optional
	// (without them the distribution's own *.cloudfront.net name is used); the
	// certificate must be in us-east-1.
	DashboardDomain         string   `json:"dashboardDomain"`
	DashboardCertificateARN string   `json:"dashboardCertificateArn"`
	CORSAllowedOrigins      []string `json:"corsAllowedOrigins"`

	Database DatabaseConfig `json:"database"`
	// Cache creates ElastiCache Serverless (Valkey); false runs without Redis (the
	// service degrades gracefully).
	Cache bool `json:"cache"`
	// CacheMaxGB caps the serverless cache's data storage (and so its cost).
	CacheMaxGB int `json:"cacheMaxGB"`

	// JWTSecretARN is an existing Secrets Manager secret holding JWT_SECRET; empty: the
	// stack generates one (64 random characters).
	JWTSecretARN string `json:"jwtSecretArn"`
	SMTP         SMTP   `json:"smtp"`
	// AI is the optional AI provider of drift explanations.
	AI AIConfig `json:"ai"`
	// SESIdentityARN, when set, lets the reminders function (only) call SES directly, with
	// its own role (SES v2 SendEmail), from SESFrom, an address of that identity; it then
	// gets no SMTP secret.
	SESIdentityARN string `json:"sesIdentityArn"`
	SESFrom        string `json:"sesFrom"`

	// VPCCIDR is the stack's VPC range: it must not overlap the database's network when
	// peering (default 10.0.0.0/16).
	VPCCIDR          string `json:"vpcCidr"`
	NATGateways      int    `json:"natGateways"`
	LogRetentionDays int    `json:"logRetentionDays"`
	AlarmEmail       string `json:"alarmEmail"` // optional subscriber of the alarm topic

	// AssetDir holds build/<function>/bootstrap (`make build`); relative to the
	// repository root unless absolute.
	AssetDir string `json:"assetDir"`
}

// DatabaseConfig is where the data lives.
type DatabaseConfig struct {
	// Mode "external": an existing PostgreSQL + TimescaleDB (Timescale Cloud or
	// self-managed, reached through VPC peering or PrivateLink) whose URL is the plain
	// string value of the secret SecretARN. Mode "aurora": the stack creates Aurora
	// PostgreSQL Serverless v2 and migrates it in TIMESERIES_MODE=postgres.
	Mode      string `json:"mode"`
	SecretARN string `json:"secretArn"`
	// CIDR and Port are where the external database listens, for the functions' security
	// groups: the peered VPC's or endpoint's range ("0.0.0.0/0" only for a public endpoint
	// reached through the NAT gateway).
	CIDR string `json:"cidr"`
	Port int    `json:"port"`
	// PeeringConnectionID, once the peering with the database's VPC is accepted, makes the
	// network stack route CIDR through it from the private subnets (pcx-...).
	PeeringConnectionID string `json:"peeringConnectionId"`
	// AuroraMinACU / AuroraMaxACU bound Serverless v2 capacity (0 lets it pause).
	AuroraMinACU float64 `json:"auroraMinAcu"`
	AuroraMaxACU float64 `json:"auroraMaxAcu"`
}

// SMTP is outgoing mail (password resets, licence reminders). Host, port and sender are
// plain settings; the username and password come from the secret SecretARN, a JSON object
// {"username": "...", "password": "..."}. Empty Host disables mail.
type SMTP struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	From      string `json:"from"`
	SecretARN string `json:"secretArn"`
}

// AIConfig is the AI provider (the spec names the Claude API). The key is the plain string
// value of the secret SecretARN; empty SecretARN: no provider, the drift job explains
// drifts from a template. URL, Model and MaxCallsPerRun default in the function
// (Anthropic's Messages API, config.DefaultAIModel, 20).
type AIConfig struct {
	SecretARN      string `json:"secretArn"`
	URL            string `json:"url"`
	Model          string `json:"model"`
	MaxCallsPerRun int    `json:"maxCallsPerRun"`
}

// Database modes.
const (
	DatabaseExternal = "external"
	DatabaseAurora   = "aurora"
)

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) defaults() {
	if c.StackName == "" {
		c.StackName = "Optralis"
	}
	if c.HeartbeatsPerMinute == 0 {
		c.HeartbeatsPerMinute = 3000
	}
	if c.Database.Port == 0 {
		c.Database.Port = 5432
	}
	if c.Database.AuroraMaxACU == 0 {
		c.Database.AuroraMaxACU = 4
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = 587
	}
	if c.VPCCIDR == "" {
		c.VPCCIDR = "10.0.0.0/16"
	}
	if c.NATGateways == 0 {
		c.NATGateways = 1
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.CacheMaxGB == 0 {
		c.CacheMaxGB = 1
	}
	if c.AssetDir == "" {
		c.AssetDir = "build"
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	need := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	need("account", c.Account)
	need("region", c.Region)
	need("apiDomain", c.APIDomain)
	need("apiCertificateArn", c.APICertificateARN)
	need("agentsDomain", c.AgentsDomain)
	need("agentsCertificateArn", c.AgentsCertificateARN)
	need("caBundle", c.CABundle)
	if (c.DashboardDomain == "") != (c.DashboardCertificateARN == "") {
		errs = append(errs, errors.New("dashboardDomain and dashboardCertificateArn go together"))
	}
	if c.DashboardCertificateARN != "" && !strings.Contains(c.DashboardCertificateARN, ":us-east-1:") {
		errs = append(errs, errors.New("dashboardCertificateArn must be an ACM certificate in us-east-1 (CloudFront)"))
	}
	switch c.Database.Mode {
	case DatabaseExternal:
		need("database.secretArn", c.Database.SecretARN)
		_, dbNet, err := net.ParseCIDR(c.Database.CIDR)
		if err != nil {
			errs = append(errs, fmt.Errorf("database.cidr %q is not a CIDR range", c.Database.CIDR))
		}
		if _, vpcNet, verr := net.ParseCIDR(c.VPCCIDR); verr == nil && err == nil && c.Database.CIDR != "0.0.0.0/0" &&
			(vpcNet.Contains(dbNet.IP) || dbNet.Contains(vpcNet.IP)) {
			errs = append(errs, fmt.Errorf("database.cidr %s overlaps vpcCidr %s: peering needs distinct ranges", c.Database.CIDR, c.VPCCIDR))
		}
		if c.Database.PeeringConnectionID != "" && !strings.HasPrefix(c.Database.PeeringConnectionID, "pcx-") {
			errs = append(errs, errors.New("database.peeringConnectionId must be a pcx-... id"))
		}
	case DatabaseAurora:
		if c.Database.SecretARN != "" {
			errs = append(errs, errors.New("database.secretArn is for the external mode; aurora generates its own secret"))
		}
		if c.Database.AuroraMinACU < 0 || c.Database.AuroraMaxACU < c.Database.AuroraMinACU {
			errs = append(errs, errors.New("database: need 0 <= auroraMinAcu <= auroraMaxAcu"))
		}
	default:
		errs = append(errs, fmt.Errorf("database.mode must be %q or %q, not %q", DatabaseExternal, DatabaseAurora, c.Database.Mode))
	}
	if c.SMTP.Host != "" {
		need("smtp.from", c.SMTP.From)
		need("smtp.secretArn", c.SMTP.SecretARN)
	}
	if c.AI.SecretARN != "" && !strings.HasPrefix(c.AI.SecretARN, "arn:aws:secretsmanager:") {
		errs = append(errs, errors.New("ai.secretArn must be a Secrets Manager secret ARN"))
	}
	if c.AI.SecretARN == "" && (c.AI.URL != "" || c.AI.Model != "" || c.AI.MaxCallsPerRun != 0) {
		errs = append(errs, errors.New("ai: url, model and maxCallsPerRun need ai.secretArn (the provider's key)"))
	}
	if c.AI.URL != "" && !strings.HasPrefix(c.AI.URL, "https://") {
		errs = append(errs, errors.New("ai.url must be an https:// URL"))
	}
	if c.AI.MaxCallsPerRun < 0 || c.AI.MaxCallsPerRun > 1000 {
		errs = append(errs, errors.New("ai.maxCallsPerRun must be between 0 and 1000"))
	}
	if c.SESIdentityARN != "" {
		need("sesFrom", c.SESFrom)
		if !strings.HasPrefix(c.SESIdentityARN, "arn:aws:ses:") || !strings.Contains(c.SESIdentityARN, ":identity/") {
			errs = append(errs, fmt.Errorf("sesIdentityArn %q is not an SES identity ARN", c.SESIdentityARN))
		}
	}
	if c.HeartbeatsPerMinute < 60 {
		errs = append(errs, errors.New("heartbeatsPerMinute must be at least 60"))
	}
	if len(c.CORSAllowedOrigins) == 0 {
		errs = append(errs, errors.New("corsAllowedOrigins: list the dashboard origin(s), e.g. https://app.example.com"))
	}
	for _, o := range c.CORSAllowedOrigins {
		if o == "*" {
			errs = append(errs, errors.New("corsAllowedOrigins: \"*\" is for local development only"))
		}
	}
	return errors.Join(errs...)
}

// dashboardURL is the dashboard's address for links in mails: its custom domain, or the
// first CORS origin.
func (c Config) dashboardURL() string {
	if c.DashboardDomain != "" {
		return "https://" + c.DashboardDomain
	}
	if len(c.CORSAllowedOrigins) > 0 {
		return c.CORSAllowedOrigins[0]
	}
	return ""
}
