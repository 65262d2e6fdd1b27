package stack

import (
	"time"

	"github.com/optralis/optralis/internal/routes"
)

// Kind is how a function is reached.
type Kind int

const (
	// REST serves routes of the API domain (API Gateway REST API + WAF). Its routes are the
	// ones internal/routes.Table() gives this function.
	REST Kind = iota
	// Agents serves the agents domain (API Gateway HTTP API, mutual TLS): the routes
	// internal/routes.Table() gives this function, all with Access == routes.Agent.
	Agents
	// Scheduled runs on an EventBridge schedule; failures go to the jobs' dead-letter queue.
	Scheduled
	// DeployTrigger runs once per deployment in which its code changed (migrations).
	DeployTrigger
	// QueueConsumer consumes the heartbeat queue (SQS event source, partial batch
	// failures); deployed only with "ingest": "queue".
	QueueConsumer
)

func (k Kind) String() string {
	switch k {
	case REST:
		return "REST API"
	case Agents:
		return "agents HTTP API"
	case Scheduled:
		return "schedule"
	case DeployTrigger:
		return "deploy trigger"
	case QueueConsumer:
		return "queue consumer"
	}
	return "unknown"
}

// Need is what a function may reach. Each one becomes an environment variable (a secret's
// ARN, never its value), an IAM grant and, for network services, a security-group rule.
type Need uint

const (
	// Database: DATABASE_URL (secret reference) and the database port.
	Database Need = 1 << iota
	// Cache: REDIS_URL and the cache port.
	Cache
	// JWT: JWT_SECRET (secret reference).
	JWT
	// Mail: the SMTP settings, the SMTP credentials (secret references) and the SMTP port.
	Mail
	// SES: ses:SendEmail / ses:SendRawEmail on the configured identity.
	SES
	// CASign: kms:Sign and kms:GetPublicKey on the CA key, CA_KMS_KEY_ARN and CA_CERT_PEM.
	CASign
	// AI: the AI provider's key (AI_API_KEY_SECRET_ARN, read on its secret only), URL,
	// model and call limit, when the configuration has a provider (HTTPS egress is open).
	AI
	// Enqueue: INGEST_MODE and, with "ingest": "queue", HEARTBEAT_QUEUE_URL and
	// sqs:SendMessage on the heartbeat queue (HTTPS egress is open).
	Enqueue
)

// Function is one row of the table: a directory of functions/ and how it is deployed.
type Function struct {
	Name     string // functions/<Name>
	Kind     Kind
	MemoryMB int
	Timeout  time.Duration
	// Cadence of a planned Scheduled function only: a deployed one runs its job of
	// internal/routes.Jobs(), the cadence the local stack uses too.
	Cadence routes.Cadence
	Needs   Need
	Doc     string // the Lambda's description
}

// Schedule is f's EventBridge expression: from its job in internal/routes.Jobs(), or from
// its planned cadence; "" for a function that is not scheduled.
func (f Function) Schedule() string {
	c := f.Cadence
	if j, ok := routes.JobOf(f.Name); ok {
		c = j.Cadence
	}
	if c == (routes.Cadence{}) {
		return ""
	}
	expr, err := c.Expression()
	if err != nil {
		return "invalid: " + err.Error() // refused by TestFunctionRowsAreComplete
	}
	return expr
}

// Has reports whether f needs n.
func (f Function) Has(n Need) bool { return f.Needs&n == n }

// SMTP reports whether f sends mail through SMTP under c: it needs Mail, SMTP is
// configured, and it does not send through the SES API instead (SES needed and an SES
// identity configured), in which case it gets no SMTP secret and no SMTP egress.
func (f Function) SMTP(c Config) bool {
	return f.Has(Mail) && c.SMTP.Host != "" && !f.UsesSES(c)
}

// UsesSES reports whether f sends mail through the SES API under c.
func (f Function) UsesSES(c Config) bool { return f.Has(SES) && c.SESIdentityARN != "" }

// opened is what every function built by app.OpenLambda reads: DATABASE_URL, and the cache
// when REDIS_URL is set. Functions that verify access tokens add JWT.
const opened = Database | Cache

// Functions is every deployed Lambda, one line each. A test fails when a directory of
// functions/ has no line here or a line has no directory: adding a function means moving
// (or adding) its line here.
//
// Memory buys CPU on Lambda (a full vCPU at 1769 MB): auth hashes passwords with bcrypt,
// so it gets more; API functions' timeouts stay within API Gateway's 29 s integration limit.
func Functions() []Function {
	return []Function{
		// 10 minutes: the trigger waits for it synchronously, inside CDK's provider function,
		// which itself stops at Lambda's 15-minute maximum.
		{Name: "migrate", Kind: DeployTrigger, MemoryMB: 512, Timeout: 10 * time.Minute, Needs: Database,
			Doc: "Applies migrations and backfills the hourly aggregates, at deploy time"},
		{Name: "status", Kind: REST, MemoryMB: 256, Timeout: 10 * time.Second, Needs: opened,
			Doc: "Public status page API (GET /status)"},
		{Name: "auth", Kind: REST, MemoryMB: 1024, Timeout: 10 * time.Second, Needs: opened | JWT | Mail,
			Doc: "Dashboard authentication (/api/auth/*); mails password-reset links"},
		{Name: "bootstrap", Kind: REST, MemoryMB: 256, Timeout: 15 * time.Second, Needs: opened | CASign,
			Doc: "Agent enrolment and installers (/api/public/bootstrap, /install.sh, /agent/requirements)"},
		{Name: "admin", Kind: REST, MemoryMB: 512, Timeout: 29 * time.Second, Needs: opened | JWT | Mail | CASign,
			Doc: "Dashboard and platform administration API (/api/*, /api/admin/*); mails user invitations"},
		{Name: "heartbeat", Kind: Agents, MemoryMB: 256, Timeout: 10 * time.Second, Needs: opened | Enqueue,
			Doc: "Agent heartbeats and collector configuration (mutual TLS)"},
		// Deployed with "ingest": "queue" only. The queue's visibility timeout is six times
		// this timeout (AWS's advice for SQS event sources).
		{Name: "heartbeatwriter", Kind: QueueConsumer, MemoryMB: 512, Timeout: 30 * time.Second, Needs: Database,
			Doc: "Writes queued heartbeats in batches (SQS, partial batch failures)"},
		// The agents domain's only signer: the heartbeat keeps no kms:Sign grant.
		{Name: "renew", Kind: Agents, MemoryMB: 256, Timeout: 15 * time.Second, Needs: opened | CASign,
			Doc: "Agent certificate renewal (POST /agent/certificate/renew, mutual TLS)"},
		{Name: "uptime", Kind: Scheduled, MemoryMB: 256, Timeout: time.Minute, Needs: opened,
			Doc: "Records service health for the status page"},
		{Name: "cleanup", Kind: Scheduled, MemoryMB: 512, Timeout: 5 * time.Minute, Needs: opened,
			Doc: "Hourly maintenance: postgres-mode rollups, expired auth entries and install tokens"},
		// 5 minutes: the run stops starting work after 3 (driftfn.Budget), leaving room for
		// the batch in progress and its provider calls (10 s each).
		{Name: "drift", Kind: Scheduled, MemoryMB: 512, Timeout: 5 * time.Minute, Needs: opened | AI,
			Doc: "Hourly metric drift detection (metric_baselines), explained by the AI provider when configured"},
		// Mail through the SES API with its own role when sesIdentityArn is configured,
		// otherwise through SMTP (see Function.SMTP).
		{Name: "reminders", Kind: Scheduled, MemoryMB: 256, Timeout: 5 * time.Minute, Needs: opened | Mail | SES,
			Doc: "Licence and password expiry reminder emails, daily at 09:00 UTC"},
		// Every minute; a run that overruns the next one serialises with it (alerteval's
		// lock, notify's claims). Mail like the reminders: SES with its own role, or SMTP.
		{Name: "alerts", Kind: Scheduled, MemoryMB: 256, Timeout: 2 * time.Minute, Needs: opened | Mail | SES,
			Doc: "Alert evaluation (every minute) and notifications: email, webhooks, Slack, Teams"},
		{Name: "certexpiry", Kind: Scheduled, MemoryMB: 256, Timeout: 2 * time.Minute, Needs: opened | Mail,
			Doc: "Daily digest of machine certificates expiring within 30 days, mailed to client admins"},
	}
}

// Planned are the functions the design has but functions/ does not yet: when one's
// directory appears, a test fails until its line moves to Functions(). The infra tests
// also synthesize them, so their schedules, routes and grants are checked already.
func Planned() []Function {
	return []Function{}
}

// FunctionNamed returns the row of a deployed or planned function.
func FunctionNamed(name string) (Function, bool) {
	for _, f := range append(Functions(), Planned()...) {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}
