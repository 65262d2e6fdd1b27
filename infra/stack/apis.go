package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/jsii-runtime-go"
)

// restAPI is the API domain: a REST API (WAF-capable) on a regional custom domain, one
// method per route of internal/app, each to its function (Lambda proxy, payload 1.0).
func (b *builder) restAPI() awsapigateway.RestApi {
	cert := awscertificatemanager.Certificate_FromCertificateArn(b.s, jsii.String("ApiCertificate"), jsii.String(b.cfg.APICertificateARN))
	accessLogs := awslogs.NewLogGroup(b.s, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention: retention(b.cfg.LogRetentionDays),
	})
	api := awsapigateway.NewRestApi(b.s, jsii.String("Api"), &awsapigateway.RestApiProps{
		RestApiName:   jsii.String(b.cfg.StackName + "-api"),
		Description:   jsii.String("Optralis API domain: dashboard API, auth, installers, status"),
		EndpointTypes: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		DomainName: &awsapigateway.DomainNameOptions{
			DomainName:     jsii.String(b.cfg.APIDomain),
			Certificate:    cert,
			EndpointType:   awsapigateway.EndpointType_REGIONAL,
			SecurityPolicy: awsapigateway.SecurityPolicy_TLS_1_2,
		},
		// Only the custom domain (and so the WAF and our TLS policy) reaches the API.
		DisableExecuteApiEndpoint: jsii.Bool(true),
		// REST APIs pick text or binary by Content-Type alone: a gzip body sent as
		// "Content-Type: application/json" + "Content-Encoding: gzip" would be mangled as
		// UTF-8 unless every type is binary. With */* every body reaches the function
		// base64-encoded and the adapter decodes it; text responses (isBase64Encoded false)
		// pass through unchanged.
		BinaryMediaTypes: jsii.Strings("*/*"),
		// Access logs need API Gateway's account-level CloudWatch role; kept on stack
		// deletion because other APIs in the account/region may rely on it.
		CloudWatchRole:              jsii.Bool(true),
		CloudWatchRoleRemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String("prod"),
			MetricsEnabled:       jsii.Bool(true),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			DataTraceEnabled:     jsii.Bool(false), // never log bodies (passwords, tokens)
			ThrottlingRateLimit:  jsii.Number(200),
			ThrottlingBurstLimit: jsii.Number(400),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(false), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(false),
			}),
		},
	})

	integrations := map[string]awsapigateway.LambdaIntegration{}
	integration := func(fn string) awsapigateway.LambdaIntegration {
		if i, ok := integrations[fn]; ok {
			return i
		}
		i := awsapigateway.NewLambdaIntegration(b.built[fn], &awsapigateway.LambdaIntegrationOptions{
			Proxy: jsii.Bool(true),
			// One invoke permission per function for the whole API instead of one per
			// method: the function's resource policy stays small as routes grow.
			ScopePermissionToMethod: jsii.Bool(false),
		})
		integrations[fn] = i
		return i
	}
	preflight := map[string]bool{}
	for _, r := range routesOf(b.routes, false) {
		res := api.Root().ResourceForPath(jsii.String(r.Path))
		res.AddMethod(jsii.String(r.Method), integration(r.Function), nil)
		// CORS preflight is answered by the function's CORS middleware (one whitelist,
		// CORS_ALLOWED_ORIGINS, for the local server and AWS alike).
		if !preflight[r.Path] && r.Method != "OPTIONS" {
			preflight[r.Path] = true
			res.AddMethod(jsii.String("OPTIONS"), integration(r.Function), nil)
		}
	}
	// Errors API Gateway itself answers (WAF blocks, throttling, 5xx) carry CORS headers too,
	// so the dashboard sees a status rather than an opaque network error.
	if len(b.cfg.CORSAllowedOrigins) == 1 {
		headers := map[string]*string{
			"Access-Control-Allow-Origin":      jsii.String("'" + b.cfg.CORSAllowedOrigins[0] + "'"),
			"Access-Control-Allow-Credentials": jsii.String("'true'"),
			"Vary":                             jsii.String("'Origin'"),
		}
		api.AddGatewayResponse(jsii.String("Default4xx"), &awsapigateway.GatewayResponseOptions{Type: awsapigateway.ResponseType_DEFAULT_4XX(), ResponseHeaders: &headers})
		api.AddGatewayResponse(jsii.String("Default5xx"), &awsapigateway.GatewayResponseOptions{Type: awsapigateway.ResponseType_DEFAULT_5XX(), ResponseHeaders: &headers})
	}

	acl := b.webACL()
	awswafv2.NewCfnWebACLAssociation(b.s, jsii.String("ApiWebAclAssociation"), &awswafv2.CfnWebACLAssociationProps{
		ResourceArn: api.DeploymentStage().StageArn(),
		WebAclArn:   acl.AttrArn(),
	})

	awscdk.NewCfnOutput(b.s, jsii.String("ApiDomainTarget"), &awscdk.CfnOutputProps{
		Value:       api.DomainName().DomainNameAliasDomainName(),
		Description: jsii.String("DNS: point " + b.cfg.APIDomain + " here (CNAME, or alias with ApiDomainZone)"),
	})
	awscdk.NewCfnOutput(b.s, jsii.String("ApiDomainZone"), &awscdk.CfnOutputProps{Value: api.DomainName().DomainNameAliasHostedZoneId()})
	return api
}

// WAF rule priorities (evaluated in order).
const (
	prioRateAuth = iota
	prioRateInstall
	prioRateAll
	prioCommon
	prioBadInputs
)

// webACL protects the API domain: AWS's managed common rule set and known-bad-inputs set,
// and per-IP rate limits.
//
// The spec's auth limit (5 attempts per 15 minutes) stays in the application
// (internal/ratelimit), with only a coarse WAF ceiling on /api/auth/ as a flood guard:
// WAF's longest window is 10 minutes and its lowest limit 10 requests, it enforces "near"
// the limit rather than exactly, it only sees requests (not whether a login failed, which
// is what the refresh limit counts) and it can only key on the IP, while the application
// also limits password changes per user.
func (b *builder) webACL() awswafv2.CfnWebACL {
	vis := func(name string) *awswafv2.CfnWebACL_VisibilityConfigProperty {
		return &awswafv2.CfnWebACL_VisibilityConfigProperty{
			CloudWatchMetricsEnabled: jsii.Bool(true),
			MetricName:               jsii.String(name),
			SampledRequestsEnabled:   jsii.Bool(true),
		}
	}
	block := &awswafv2.CfnWebACL_RuleActionProperty{Block: &awswafv2.CfnWebACL_BlockActionProperty{}}
	pathStarts := func(prefix string) *awswafv2.CfnWebACL_StatementProperty {
		return &awswafv2.CfnWebACL_StatementProperty{ByteMatchStatement: &awswafv2.CfnWebACL_ByteMatchStatementProperty{
			FieldToMatch:         &awswafv2.CfnWebACL_FieldToMatchProperty{UriPath: map[string]interface{}{}},
			PositionalConstraint: jsii.String("STARTS_WITH"),
			SearchString:         jsii.String(prefix),
			TextTransformations: &[]*awswafv2.CfnWebACL_TextTransformationProperty{
				{Priority: jsii.Number(0), Type: jsii.String("LOWERCASE")},
			},
		}}
	}
	rate := func(name string, prio int, limit, window float64, scope *awswafv2.CfnWebACL_StatementProperty) *awswafv2.CfnWebACL_RuleProperty {
		stmt := &awswafv2.CfnWebACL_RateBasedStatementProperty{
			AggregateKeyType:    jsii.String("IP"),
			Limit:               jsii.Number(limit),
			EvaluationWindowSec: jsii.Number(window),
		}
		if scope != nil {
			stmt.ScopeDownStatement = scope
		}
		return &awswafv2.CfnWebACL_RuleProperty{
			Name:             jsii.String(name),
			Priority:         jsii.Number(float64(prio)),
			Action:           block,
			Statement:        &awswafv2.CfnWebACL_StatementProperty{RateBasedStatement: stmt},
			VisibilityConfig: vis(name),
		}
	}
	managed := func(name string, prio int, overrides ...string) *awswafv2.CfnWebACL_RuleProperty {
		stmt := &awswafv2.CfnWebACL_ManagedRuleGroupStatementProperty{VendorName: jsii.String("AWS"), Name: jsii.String(name)}
		var ov []*awswafv2.CfnWebACL_RuleActionOverrideProperty
		for _, o := range overrides {
			ov = append(ov, &awswafv2.CfnWebACL_RuleActionOverrideProperty{
				Name:        jsii.String(o),
				ActionToUse: &awswafv2.CfnWebACL_RuleActionProperty{Count: &awswafv2.CfnWebACL_CountActionProperty{}},
			})
		}
		if len(ov) > 0 {
			stmt.RuleActionOverrides = &ov
		}
		return &awswafv2.CfnWebACL_RuleProperty{
			Name:             jsii.String(name),
			Priority:         jsii.Number(float64(prio)),
			OverrideAction:   &awswafv2.CfnWebACL_OverrideActionProperty{None: map[string]interface{}{}},
			Statement:        &awswafv2.CfnWebACL_StatementProperty{ManagedRuleGroupStatement: stmt},
			VisibilityConfig: vis(name),
		}
	}
	rules := []*awswafv2.CfnWebACL_RuleProperty{
		// Flood guard only; the spec's 5 per 15 min is enforced by the application (above).
		rate("RateAuth", prioRateAuth, 100, 300, pathStarts("/api/auth/")),
		// Enrolment and installers are public: bound what one address can try.
		rate("RateBootstrap", prioRateInstall, 100, 300, pathStarts("/api/public/")),
		// Everything else: a dashboard polls, but 2000 requests in 5 minutes from one
		// address is not a person.
		rate("RateAll", prioRateAll, 2000, 300, nil),
		// The body-size rule counts instead of blocking: WAF inspects only the first 8 KB of
		// a body, and the application enforces its own body limit.
		managed("AWSManagedRulesCommonRuleSet", prioCommon, "SizeRestrictions_BODY"),
		managed("AWSManagedRulesKnownBadInputsRuleSet", prioBadInputs),
	}
	return awswafv2.NewCfnWebACL(b.s, jsii.String("ApiWebAcl"), &awswafv2.CfnWebACLProps{
		Scope:            jsii.String("REGIONAL"),
		Description:      jsii.String("Optralis API domain"),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: &awswafv2.CfnWebACL_AllowActionProperty{}},
		VisibilityConfig: vis("OptralisApi"),
		Rules:            &rules,
	})
}

// truststore is the Optralis CA bundle in a versioned bucket, under a key that changes
// with its content, so a new bundle is a new truststore URI and API Gateway (or the ALB's
// trust store) picks it up.
type truststore struct {
	bucket awss3.Bucket
	key    string
	upload awss3deployment.BucketDeployment
}

func (b *builder) newTruststore() *truststore {
	bucket := awss3.NewBucket(b.s, jsii.String("TruststoreBucket"), &awss3.BucketProps{
		Versioned:         jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	key := "truststore/optralis-ca-" + b.bundle.sha + ".pem"
	upload := awss3deployment.NewBucketDeployment(b.s, jsii.String("Truststore"), &awss3deployment.BucketDeploymentProps{
		DestinationBucket: bucket,
		Sources:           &[]awss3deployment.ISource{awss3deployment.Source_Data(jsii.String(key), jsii.String(b.bundle.pem), nil)},
		Prune:             jsii.Bool(false), // earlier bundles stay (rollback)
		RetainOnDelete:    jsii.Bool(true),
		ContentType:       jsii.String("application/x-pem-file"),
	})
	awscdk.NewCfnOutput(b.s, jsii.String("TruststoreUri"), &awscdk.CfnOutputProps{
		Value:       awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("s3://"), bucket.BucketName(), jsii.String("/" + key)}),
		Description: jsii.String("The agents domain's truststore (the Optralis CA bundle)"),
	})
	return &truststore{bucket: bucket, key: key, upload: upload}
}

// agentsAPI is the agents domain: an HTTP API (payload 2.0, about 3.5 times cheaper per
// request than REST for the heartbeat bulk) on a custom domain with mutual TLS against the
// truststore.
func (b *builder) agentsAPI() awsapigatewayv2.HttpApi {
	bucket, key := b.trust.bucket, b.trust.key
	domain := awsapigatewayv2.NewDomainName(b.s, jsii.String("AgentsDomain"), &awsapigatewayv2.DomainNameProps{
		DomainName:     jsii.String(b.cfg.AgentsDomain),
		Certificate:    awscertificatemanager.Certificate_FromCertificateArn(b.s, jsii.String("AgentsCertificate"), jsii.String(b.cfg.AgentsCertificateARN)),
		EndpointType:   awsapigatewayv2.EndpointType_REGIONAL,
		SecurityPolicy: awsapigatewayv2.SecurityPolicy_TLS_1_2,
		Mtls:           &awsapigatewayv2.MTLSConfig{Bucket: bucket, Key: jsii.String(key)},
	})
	domain.Node().AddDependency(b.trust.upload)

	api := awsapigatewayv2.NewHttpApi(b.s, jsii.String("AgentsApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:     jsii.String(b.cfg.StackName + "-agents"),
		Description: jsii.String("Optralis agents domain (mutual TLS): heartbeats, collector configuration, certificate renewal"),
		// Mutual TLS is enforced on the custom domain only: the default endpoint would let
		// anyone in without a client certificate, so it is off.
		DisableExecuteApiEndpoint: jsii.Bool(true),
		CreateDefaultStage:        jsii.Bool(false),
	})
	// API Gateway throttles per stage for all callers together (HTTP APIs have no per-client
	// limits), so this is a ceiling sized from the fleet (agentsApi), alarmed at 80 %, not
	// the spec's 3000/min: that is a per-address limit, enforced by the application with
	// the per-machine one. The account's own quota (10,000 req/s, burst 5,000 by default)
	// applies on top.
	rate, burst := b.cfg.AgentsAPI.Ceiling()
	api.AddStage(jsii.String("Stage"), &awsapigatewayv2.HttpStageOptions{
		StageName:     jsii.String("$default"),
		AutoDeploy:    jsii.Bool(true),
		Throttle:      &awsapigatewayv2.ThrottleSettings{RateLimit: jsii.Number(rate), BurstLimit: jsii.Number(burst)},
		DomainMapping: &awsapigatewayv2.DomainMappingOptions{DomainName: domain},
	})
	integrations := map[string]awsapigatewayv2integrations.HttpLambdaIntegration{}
	for _, r := range routesOf(b.routes, true) {
		in, ok := integrations[r.Function]
		if !ok {
			// Payload 2.0: HTTP APIs have no binaryMediaTypes; they base64-encode any body
			// that is not plain text (a gzip Content-Encoding included) and flag it
			// isBase64Encoded, which internal/lambdaproxy decodes (tested with a gzip event).
			in = awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String(exportName(r.Function)+"Integration"), b.built[r.Function],
				&awsapigatewayv2integrations.HttpLambdaIntegrationProps{PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0()})
			integrations[r.Function] = in
		}
		api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(r.Path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod(r.Method)},
			Integration: in,
		})
	}
	awscdk.NewCfnOutput(b.s, jsii.String("AgentsDomainTarget"), &awscdk.CfnOutputProps{
		Value:       domain.RegionalDomainName(),
		Description: jsii.String("DNS: point " + b.cfg.AgentsDomain + " here (CNAME, or alias with AgentsDomainZone)"),
	})
	awscdk.NewCfnOutput(b.s, jsii.String("AgentsDomainZone"), &awscdk.CfnOutputProps{Value: domain.RegionalHostedZoneId()})
	return api
}
