package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// HeartbeatsPerMinute is refused: it was a stage throttle for the whole fleet derived
	// from the spec's per-address limit (3000/min), which the application enforces per
	// source address. AgentsAPI sizes the ceiling from the fleet instead.
	HeartbeatsPerMinute int `json:"heartbeatsPerMinute,omitempty"`
	// AgentsAPI sizes the agents endpoint's fleet-wide ceiling.
	AgentsAPI AgentsAPIConfig `json:"agentsApi"`
	// AgentsEndpoint is what terminates the agents' mutual TLS in front of the heartbeat
	// function: "apigateway" (HTTP API, default) or "alb" (Application Load Balancer, cheaper
	// per request for large fleets). The renew function stays on the HTTP API either way.
	AgentsEndpoint string `json:"agentsEndpoint"`
	// ALB configures the "alb" agents endpoint.
	ALB ALBConfig `json:"alb"`
	// Ingest is how heartbeats reach the database: "direct" (the heartbeat function writes,
	// default: cheapest, measured in bench/ingest-queue.md) or "queue" (it validates, checks
	// the certificate, enqueues to SQS and answers; a writer function writes batches).
	Ingest string `json:"ingest"`
	// Queue configures the "queue" ingest.
	Queue QueueConfig `json:"queue"`
	// Logs configures the functions' Lambda logging controls.
	Logs LogsConfig `json:"logs"`

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

// AgentsAPIConfig is the agents endpoint's ceiling. API Gateway throttles a stage for all
// callers together, so the ceiling is sized from the fleet, not from a per-agent budget:
// ExpectedMachines at one heartbeat per AlertIntervalSeconds (the agents' fastest cadence,
// under alert) times CeilingHeadroom. RateLimit/BurstLimit, when set, replace the derived
// values. An alarm fires when a minute's requests reach AlarmRatio of the ceiling.
type AgentsAPIConfig struct {
	ExpectedMachines int     `json:"expectedMachines"`
	RateLimit        float64 `json:"rateLimit"`
	BurstLimit       float64 `json:"burstLimit"`
	AlarmRatio       float64 `json:"alarmRatio"`
}

// Agents API ceiling defaults.
const (
	DefaultExpectedMachines = 100_000
	// AlertIntervalSeconds is the agents' shortest heartbeat interval (heartbeat.NextInterval
	// under alert).
	AlertIntervalSeconds = 30
	// CeilingHeadroom covers agents catching up after an outage and collector fetches.
	CeilingHeadroom   = 2.0
	DefaultAlarmRatio = 0.8
)

// Ceiling is the stage's steady rate and burst (requests per second).
func (a AgentsAPIConfig) Ceiling() (rate, burst float64) {
	rate = a.RateLimit
	if rate == 0 {
		rate = math.Ceil(float64(a.ExpectedMachines) / AlertIntervalSeconds * CeilingHeadroom)
	}
	burst = a.BurstLimit
	if burst == 0 {
		burst = rate
	}
	return rate, burst
}

// ALBConfig is the Application Load Balancer agents endpoint: HTTPS listener with mutual
// TLS in verify mode, the trust store from caBundle (the same S3 object as API Gateway's),
// and optionally a certificate revocation list file (PEM or DER CRL, relative to the
// repository root) uploaded beside it.
type ALBConfig struct {
	RevocationList string `json:"revocationList"`
}

// QueueConfig is the SQS ingest: the writer's batch (BatchSize messages, waiting up to
// MaxBatchingWindowSeconds to fill it), the receives after which a message goes to the
// dead-letter queue, and the age of the oldest message that raises the alarm.
type QueueConfig struct {
	BatchSize                int `json:"batchSize"`
	MaxBatchingWindowSeconds int `json:"maxBatchingWindowSeconds"`
	MaxReceiveCount          int `json:"maxReceiveCount"`
	AgeAlarmSeconds          int `json:"ageAlarmSeconds"`
}

// LogsConfig is Lambda's advanced logging controls for every function: JSON format,
// SystemLevel (WARN drops the per-invocation START/END/REPORT platform lines, which are
// INFO) and ApplicationLevel (INFO keeps the heartbeat access log; WARN or ERROR drops it
// and keeps the errors).
type LogsConfig struct {
	ApplicationLevel string `json:"applicationLevel"`
	SystemLevel      string `json:"systemLevel"`
}

// Agents endpoints and ingest modes.
const (
	EndpointAPIGateway = "apigateway"
	EndpointALB        = "alb"
	IngestDirect       = "direct"
	IngestQueue        = "queue"
)

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
	if c.AgentsAPI.ExpectedMachines == 0 {
		c.AgentsAPI.ExpectedMachines = DefaultExpectedMachines
	}
	if c.AgentsAPI.AlarmRatio == 0 {
		c.AgentsAPI.AlarmRatio = DefaultAlarmRatio
	}
	if c.AgentsEndpoint == "" {
		c.AgentsEndpoint = EndpointAPIGateway
	}
	if c.Ingest == "" {
		c.Ingest = IngestDirect
	}
	if c.Queue.BatchSize == 0 {
		c.Queue.BatchSize = 100
	}
	if c.Queue.MaxBatchingWindowSeconds == 0 {
		c.Queue.MaxBatchingWindowSeconds = 1
	}
	if c.Queue.MaxReceiveCount == 0 {
		c.Queue.MaxReceiveCount = 5
	}
	if c.Queue.AgeAlarmSeconds == 0 {
		c.Queue.AgeAlarmSeconds = 300
	}
	if c.Logs.ApplicationLevel == "" {
		c.Logs.ApplicationLevel = "INFO"
	}
	if c.Logs.SystemLevel == "" {
		c.Logs.SystemLevel = "WARN"
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
	if c.HeartbeatsPerMinute != 0 {
		errs = append(errs, errors.New("heartbeatsPerMinute is no longer supported: it throttled the whole fleet at the spec's per-address limit "+
			"(enforced by the application); size the ceiling with agentsApi.expectedMachines (or agentsApi.rateLimit/burstLimit)"))
	}
	if a := c.AgentsAPI; a.ExpectedMachines < 1 || a.RateLimit < 0 || a.BurstLimit < 0 || a.AlarmRatio <= 0 || a.AlarmRatio > 1 {
		errs = append(errs, errors.New("agentsApi: need expectedMachines >= 1, rateLimit and burstLimit >= 0, 0 < alarmRatio <= 1"))
	}
	if c.AgentsEndpoint != EndpointAPIGateway && c.AgentsEndpoint != EndpointALB {
		errs = append(errs, fmt.Errorf("agentsEndpoint must be %q or %q, not %q", EndpointAPIGateway, EndpointALB, c.AgentsEndpoint))
	}
	if c.ALB.RevocationList != "" && c.AgentsEndpoint != EndpointALB {
		errs = append(errs, errors.New("alb.revocationList needs agentsEndpoint \"alb\""))
	}
	if c.Ingest != IngestDirect && c.Ingest != IngestQueue {
		errs = append(errs, fmt.Errorf("ingest must be %q or %q, not %q", IngestDirect, IngestQueue, c.Ingest))
	}
	// Lambda's SQS event source: at most 10,000 messages and a 300 s window (more than 10
	// messages needs a window >= 1 s).
	if q := c.Queue; q.BatchSize < 1 || q.BatchSize > 10000 || q.MaxBatchingWindowSeconds < 0 || q.MaxBatchingWindowSeconds > 300 ||
		(q.BatchSize > 10 && q.MaxBatchingWindowSeconds < 1) || q.MaxReceiveCount < 1 || q.MaxReceiveCount > 1000 || q.AgeAlarmSeconds < 60 {
		errs = append(errs, errors.New("queue: need 1 <= batchSize <= 10000, 0 <= maxBatchingWindowSeconds <= 300 (>= 1 above 10 messages), "+
			"1 <= maxReceiveCount <= 1000, ageAlarmSeconds >= 60"))
	}
	levels := map[string]bool{"TRACE": true, "DEBUG": true, "INFO": true, "WARN": true, "ERROR": true, "FATAL": true}
	if !levels[c.Logs.ApplicationLevel] || !levels[c.Logs.SystemLevel] || c.Logs.SystemLevel == "TRACE" || c.Logs.SystemLevel == "FATAL" {
		errs = append(errs, errors.New("logs: applicationLevel one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL; systemLevel one of DEBUG, INFO, WARN"))
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
