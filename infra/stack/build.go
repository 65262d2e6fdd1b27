package stack

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticache"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/triggers"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// FunctionTag marks the Lambdas built from functions/ (the template also holds CDK's own
// helper functions, e.g. the trigger and truststore-upload providers).
const FunctionTag = "optralis:function"

// RedisPort is the serverless cache's port (TLS).
const RedisPort = 6379

type builder struct {
	s      awscdk.Stack
	cfg    Config
	fns    []Function
	routes []Route
	caKey  awskms.IKey
	bundle caBundle
	assets string
	// statusDir is web/status, the public status page's files.
	statusDir string

	vpc      awsec2.IVpc
	dbSecret awssecretsmanager.ISecret
	dbFormat string // DATABASE_URL_SECRET_FORMAT ("rds" for Aurora)
	aurora   awsrds.DatabaseCluster
	cacheSG  awsec2.SecurityGroup
	redisURL *string
	jwt      awssecretsmanager.ISecret
	smtp     awssecretsmanager.ISecret
	ai       awssecretsmanager.ISecret // the AI provider's key; nil: no provider
	dlq      awssqs.Queue
	built    map[string]awslambda.Function
	alarms   *alarms
	// ingest is the heartbeat queue and its dead-letter queue ("ingest": "queue"); nil in
	// direct mode.
	ingest *ingestQueues
	// trust is the agents' truststore (the CA bundle in S3), shared by API Gateway and ALB.
	trust *truststore
	crl   revocationList // alb.revocationList; zero without one
}

// deployed reports whether f is built under this configuration: the queue consumer only
// in queue mode.
func (b *builder) deployed(f Function) bool {
	return f.Kind != QueueConsumer || b.cfg.Ingest == IngestQueue
}

func (b *builder) build() {
	b.data()
	b.secrets()
	b.dlq = awssqs.NewQueue(b.s, jsii.String("JobsDeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	b.alarms = newAlarms(b.s, b.cfg)
	if b.cfg.Ingest == IngestQueue {
		b.ingest = b.newIngestQueues()
	}
	for _, f := range b.fns {
		if b.deployed(f) {
			b.built[f.Name] = b.function(f)
		}
	}
	b.schedules()
	b.migrations()
	b.consumers()
	rest := b.restAPI()
	b.trust = b.newTruststore()
	b.alarms.restAPI(rest)
	if b.cfg.AgentsEndpoint == EndpointALB {
		b.alarms.alb(b.agentsALB())
	} else {
		b.alarms.agentsAPI(b.agentsAPI(), b.cfg.AgentsAPI)
	}
	b.cdn()
	b.alarms.queue(b.dlq)
	if b.ingest != nil {
		b.alarms.ingest(b.ingest, b.cfg.Queue)
	}
	for _, f := range b.fns {
		if b.deployed(f) {
			b.alarms.function(f, b.built[f.Name])
		}
	}
}

func (b *builder) privateSubnets() *awsec2.SubnetSelection {
	return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
}

// data: the database (an existing TimescaleDB's secret, or Aurora Serverless v2) and the cache.
func (b *builder) data() {
	db := b.cfg.Database
	switch db.Mode {
	case DatabaseExternal:
		b.dbSecret = awssecretsmanager.Secret_FromSecretCompleteArn(b.s, jsii.String("DatabaseSecret"), jsii.String(db.SecretARN))
	case DatabaseAurora:
		sg := awsec2.NewSecurityGroup(b.s, jsii.String("AuroraSecurityGroup"), &awsec2.SecurityGroupProps{
			Vpc: b.vpc, AllowAllOutbound: jsii.Bool(false),
			Description: jsii.String("Aurora: PostgreSQL from the functions that need the database, nothing else"),
		})
		b.aurora = awsrds.NewDatabaseCluster(b.s, jsii.String("Aurora"), &awsrds.DatabaseClusterProps{
			Engine: awsrds.DatabaseClusterEngine_AuroraPostgres(&awsrds.AuroraPostgresClusterEngineProps{
				Version: awsrds.AuroraPostgresEngineVersion_VER_17_5(),
			}),
			Writer:                  awsrds.ClusterInstance_ServerlessV2(jsii.String("writer"), nil),
			ServerlessV2MinCapacity: jsii.Number(db.AuroraMinACU),
			ServerlessV2MaxCapacity: jsii.Number(db.AuroraMaxACU),
			Credentials:             awsrds.Credentials_FromGeneratedSecret(jsii.String("optralis"), nil),
			DefaultDatabaseName:     jsii.String("optralis"),
			Vpc:                     b.vpc,
			VpcSubnets:              b.privateSubnets(),
			SecurityGroups:          &[]awsec2.ISecurityGroup{sg},
			StorageEncrypted:        jsii.Bool(true),
			DeletionProtection:      jsii.Bool(true),
			RemovalPolicy:           awscdk.RemovalPolicy_SNAPSHOT,
			Backup:                  &awsrds.BackupProps{Retention: awscdk.Duration_Days(jsii.Number(7))},
		})
		b.dbSecret = b.aurora.Secret()
		b.dbFormat = "rds"
	}

	if !b.cfg.Cache {
		return
	}
	b.cacheSG = awsec2.NewSecurityGroup(b.s, jsii.String("CacheSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: b.vpc, AllowAllOutbound: jsii.Bool(false),
		Description: jsii.String("Cache: Redis (TLS) from the functions that use it, nothing else"),
	})
	var subnets []interface{}
	for _, id := range *b.vpc.SelectSubnets(b.privateSubnets()).SubnetIds {
		subnets = append(subnets, id)
	}
	cache := awselasticache.NewCfnServerlessCache(b.s, jsii.String("Cache"), &awselasticache.CfnServerlessCacheProps{
		Engine:              jsii.String("valkey"),
		MajorEngineVersion:  jsii.String("8"),
		ServerlessCacheName: jsii.String(strings.ToLower(b.cfg.StackName) + "-cache"),
		Description:         jsii.String("Optralis cache: rate limits, token blacklist, status; optional for the service"),
		SubnetIds:           &subnets,
		SecurityGroupIds:    &[]interface{}{b.cacheSG.SecurityGroupId()},
		CacheUsageLimits: &awselasticache.CfnServerlessCache_CacheUsageLimitsProperty{
			DataStorage: &awselasticache.CfnServerlessCache_DataStorageProperty{
				Maximum: jsii.Number(float64(b.cfg.CacheMaxGB)), Unit: jsii.String("GB"),
			},
		},
	})
	// ElastiCache Serverless only speaks TLS.
	b.redisURL = awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("rediss://"), cache.AttrEndpointAddress(), jsii.String(":"), cache.AttrEndpointPort(),
	})
}

// secrets: JWT (generated unless given) and SMTP credentials. None of their values is in
// the template: functions get the ARNs and read the values at cold start.
func (b *builder) secrets() {
	if b.cfg.JWTSecretARN != "" {
		b.jwt = awssecretsmanager.Secret_FromSecretCompleteArn(b.s, jsii.String("JwtSecret"), jsii.String(b.cfg.JWTSecretARN))
	} else {
		b.jwt = awssecretsmanager.NewSecret(b.s, jsii.String("JwtSecret"), &awssecretsmanager.SecretProps{
			Description: jsii.String("Optralis JWT_SECRET (HS256 key for access tokens)"),
			GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
				PasswordLength:     jsii.Number(64),
				ExcludePunctuation: jsii.Bool(true),
			},
		})
	}
	if b.cfg.SMTP.Host != "" {
		b.smtp = awssecretsmanager.Secret_FromSecretCompleteArn(b.s, jsii.String("SmtpSecret"), jsii.String(b.cfg.SMTP.SecretARN))
	}
	if b.cfg.AI.SecretARN != "" {
		b.ai = awssecretsmanager.Secret_FromSecretCompleteArn(b.s, jsii.String("AiSecret"), jsii.String(b.cfg.AI.SecretARN))
	}
}

// function builds one Lambda from its table row: the binary from build/<name>, its own
// role and security group, and only the environment and grants its needs call for.
func (b *builder) function(f Function) awslambda.Function {
	id := exportName(f.Name)
	scope := constructs.NewConstruct(b.s, jsii.String(id))

	sg := awsec2.NewSecurityGroup(scope, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: b.vpc, AllowAllOutbound: jsii.Bool(false),
		Description: jsii.String("Lambda " + f.Name + ": outbound only to what it needs"),
	})
	// AWS APIs (Secrets Manager, KMS, SES, CloudWatch) through the NAT gateway.
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS to AWS APIs"), nil)

	env := map[string]*string{}
	if f.Has(Database) {
		env["DATABASE_URL_SECRET_ARN"] = b.dbSecret.SecretArn()
		if b.dbFormat != "" {
			env["DATABASE_URL_SECRET_FORMAT"] = jsii.String(b.dbFormat)
		}
		if b.aurora != nil {
			b.aurora.Connections().AllowDefaultPortFrom(sg, jsii.String("PostgreSQL from "+f.Name))
		} else {
			sg.AddEgressRule(awsec2.Peer_Ipv4(jsii.String(b.cfg.Database.CIDR)), awsec2.Port_Tcp(jsii.Number(float64(b.cfg.Database.Port))),
				jsii.String("PostgreSQL (TimescaleDB)"), nil)
		}
	}
	if f.Kind == DeployTrigger {
		mode := "timescale" // an existing TimescaleDB: fail loudly if the extension is missing
		if b.aurora != nil {
			mode = "postgres" // Aurora has no TimescaleDB
		}
		env["TIMESERIES_MODE"] = jsii.String(mode)
	}
	if f.Has(Cache) && b.redisURL != nil {
		env["REDIS_URL"] = b.redisURL
		sg.Connections().AllowTo(b.cacheSG, awsec2.Port_Tcp(jsii.Number(RedisPort)), jsii.String("Redis from "+f.Name))
	}
	if f.Has(JWT) {
		env["JWT_SECRET_SECRET_ARN"] = b.jwt.SecretArn()
	}
	if f.UsesSES(b.cfg) {
		env["SES_FROM"] = jsii.String(b.cfg.SESFrom)
		env["SES_IDENTITY_ARN"] = jsii.String(b.cfg.SESIdentityARN)
	}
	if f.Has(Mail) || f.UsesSES(b.cfg) {
		env["DASHBOARD_URL"] = jsii.String(b.cfg.dashboardURL())
	}
	if f.SMTP(b.cfg) && b.smtp != nil {
		env["SMTP_HOST"] = jsii.String(b.cfg.SMTP.Host)
		env["SMTP_PORT"] = jsii.String(strconv.Itoa(b.cfg.SMTP.Port))
		env["SMTP_FROM"] = jsii.String(b.cfg.SMTP.From)
		env["SMTP_USER_SECRET_ARN"] = b.smtp.SecretArn()
		env["SMTP_USER_SECRET_KEY"] = jsii.String("username")
		env["SMTP_PASS_SECRET_ARN"] = b.smtp.SecretArn()
		env["SMTP_PASS_SECRET_KEY"] = jsii.String("password")
		sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(float64(b.cfg.SMTP.Port))), jsii.String("SMTP submission"), nil)
	}
	if f.Has(AI) && b.ai != nil {
		env["AI_API_KEY_SECRET_ARN"] = b.ai.SecretArn()
		if b.cfg.AI.URL != "" {
			env["AI_API_URL"] = jsii.String(b.cfg.AI.URL)
		}
		if b.cfg.AI.Model != "" {
			env["AI_MODEL"] = jsii.String(b.cfg.AI.Model)
		}
		if b.cfg.AI.MaxCallsPerRun > 0 {
			env["DRIFT_AI_MAX_CALLS"] = jsii.String(strconv.Itoa(b.cfg.AI.MaxCallsPerRun))
		}
	}
	if f.Has(Mail) && f.Kind == Scheduled && len(b.cfg.CORSAllowedOrigins) > 0 {
		// Links in the jobs' mails: the dashboard (its first origin).
		env["DASHBOARD_URL"] = jsii.String(b.cfg.CORSAllowedOrigins[0])
	}
	if f.Kind == Agents {
		// Where the verified client certificate comes from: API Gateway's request context,
		// or the ALB's X-Amzn-Mtls-Clientcert-Leaf header (only ever read in "alb" mode).
		env["AGENTS_ENDPOINT"] = jsii.String(b.cfg.AgentsEndpoint)
	}
	if f.Has(Enqueue) {
		env["INGEST_MODE"] = jsii.String(b.cfg.Ingest)
		if b.ingest != nil {
			env["HEARTBEAT_QUEUE_URL"] = b.ingest.queue.QueueUrl()
		}
	}
	if f.Has(CASign) {
		env["CA_KMS_KEY_ARN"] = b.caKey.KeyArn()
		env["CA_CERT_PEM"] = jsii.String(b.bundle.issuer)
	}
	if f.Kind == REST {
		env["CORS_ALLOWED_ORIGINS"] = jsii.String(strings.Join(b.cfg.CORSAllowedOrigins, ","))
		// Enrolment: the URLs installers and enrolled agents are given.
		env["PUBLIC_API_URL"] = jsii.String("https://" + b.cfg.APIDomain)
		env["AGENT_ENDPOINT"] = jsii.String("https://" + b.cfg.AgentsDomain)
		if b.cfg.AgentDownloadURL != "" {
			env["AGENT_DOWNLOAD_URL"] = jsii.String(b.cfg.AgentDownloadURL)
		}
	}

	logs := awslogs.NewLogGroup(scope, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     retention(b.cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	props := &awslambda.FunctionProps{
		Description:    jsii.String(f.Doc),
		Runtime:        awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:   awslambda.Architecture_ARM_64(),
		Handler:        jsii.String("bootstrap"),
		Code:           awslambda.Code_FromAsset(jsii.String(filepath.Join(b.assets, f.Name)), nil),
		MemorySize:     jsii.Number(float64(f.MemoryMB)),
		Timeout:        awscdk.Duration_Seconds(jsii.Number(f.Timeout.Seconds())),
		Environment:    &env,
		Vpc:            b.vpc,
		VpcSubnets:     b.privateSubnets(),
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		LogGroup:       logs,
		// Advanced logging controls: JSON records that Lambda filters by their "level"
		// (internal/logging writes slog JSON), the per-invocation START/END/REPORT platform
		// lines (INFO) dropped at WARN, errors always kept.
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel(b.cfg.Logs.ApplicationLevel),
		SystemLogLevelV2:      awslambda.SystemLogLevel(b.cfg.Logs.SystemLevel),
	}
	if f.Kind == Scheduled {
		// Lambda's own retries for the asynchronous EventBridge invocation, then the DLQ.
		props.RetryAttempts = jsii.Number(2)
		props.OnFailure = awslambdadestinations.NewSqsDestination(b.dlq)
	}
	fn := awslambda.NewFunction(scope, jsii.String("Function"), props)
	awscdk.Tags_Of(fn).Add(jsii.String(FunctionTag), jsii.String(f.Name), nil)

	if f.Has(Database) {
		b.dbSecret.GrantRead(fn.Role(), nil)
	}
	if f.Has(JWT) {
		b.jwt.GrantRead(fn.Role(), nil)
	}
	if f.SMTP(b.cfg) && b.smtp != nil {
		b.smtp.GrantRead(fn.Role(), nil)
	}
	if f.Has(AI) && b.ai != nil {
		b.ai.GrantRead(fn.Role(), nil)
	}
	if f.Has(CASign) {
		// Identity policy only: the key policy delegates to IAM (account root), and the key
		// lives in the CA stack, which must not depend on this one.
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("SignAgentCertificates"),
			Actions:   jsii.Strings("kms:Sign", "kms:GetPublicKey"),
			Resources: jsii.Strings(*b.caKey.KeyArn()),
		}))
	}
	if f.Has(Enqueue) && b.ingest != nil {
		b.ingest.queue.GrantSendMessages(fn)
	}
	if f.UsesSES(b.cfg) {
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("SendReminderEmail"),
			Actions:   jsii.Strings("ses:SendEmail", "ses:SendRawEmail"),
			Resources: jsii.Strings(b.cfg.SESIdentityARN),
		}))
	}
	return fn
}

// schedules: one EventBridge rule per job function, the expression exactly as in the table.
// A delivery EventBridge cannot make goes to the DLQ; so does an invocation that still
// fails after Lambda's retries (the function's on-failure destination).
func (b *builder) schedules() {
	for _, f := range b.fns {
		if f.Kind != Scheduled {
			continue
		}
		awsevents.NewRule(b.s, jsii.String(exportName(f.Name)+"Schedule"), &awsevents.RuleProps{
			Description: jsii.String(f.Name + ": " + f.Schedule()),
			Schedule:    awsevents.Schedule_Expression(jsii.String(f.Schedule())),
			Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(b.built[f.Name], &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: b.dlq,
				RetryAttempts:   jsii.Number(3),
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(2)),
			})},
		})
	}
}

// migrations: the deploy-time trigger runs the migrate function (migrations, then the first
// aggregate refresh) after the database exists and before any other function is updated,
// so new code never meets an old schema. A failed migration fails the deployment.
func (b *builder) migrations() {
	var others []constructs.Construct
	for _, f := range b.fns {
		if f.Kind != DeployTrigger && b.deployed(f) {
			others = append(others, b.built[f.Name])
		}
	}
	for _, f := range b.fns {
		if f.Kind != DeployTrigger {
			continue
		}
		props := &triggers.TriggerProps{
			Handler:                b.built[f.Name],
			Timeout:                awscdk.Duration_Seconds(jsii.Number(f.Timeout.Seconds())),
			InvocationType:         triggers.InvocationType_REQUEST_RESPONSE,
			ExecuteOnHandlerChange: jsii.Bool(true),
			ExecuteBefore:          &others,
		}
		if b.aurora != nil {
			props.ExecuteAfter = &[]constructs.Construct{b.aurora}
		}
		triggers.NewTrigger(b.s, jsii.String(exportName(f.Name)+"Trigger"), props)
	}
}

// exportName turns a function name into a construct id: "certexpiry" -> "Certexpiry".
func exportName(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

func retention(days int) awslogs.RetentionDays {
	for _, r := range []struct {
		days int
		v    awslogs.RetentionDays
	}{
		{1, awslogs.RetentionDays_ONE_DAY}, {3, awslogs.RetentionDays_THREE_DAYS}, {5, awslogs.RetentionDays_FIVE_DAYS},
		{7, awslogs.RetentionDays_ONE_WEEK}, {14, awslogs.RetentionDays_TWO_WEEKS}, {30, awslogs.RetentionDays_ONE_MONTH},
		{60, awslogs.RetentionDays_TWO_MONTHS}, {90, awslogs.RetentionDays_THREE_MONTHS}, {180, awslogs.RetentionDays_SIX_MONTHS},
		{365, awslogs.RetentionDays_ONE_YEAR}, {400, awslogs.RetentionDays_THIRTEEN_MONTHS}, {731, awslogs.RetentionDays_TWO_YEARS},
	} {
		if days <= r.days {
			return r.v
		}
	}
	return awslogs.RetentionDays_TWO_YEARS
}
