package stack

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/jsii-runtime-go"
)

// cdn serves the dashboard and the status page (static files) from a private bucket
// through CloudFront with origin access control: the bucket is never public, only this
// distribution may read it. Every response carries the security headers.
func (b *builder) cdn() {
	bucket := awss3.NewBucket(b.s, jsii.String("DashboardBucket"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	headers := awscloudfront.NewResponseHeadersPolicy(b.s, jsii.String("DashboardHeaders"), &awscloudfront.ResponseHeadersPolicyProps{
		Comment: jsii.String("Optralis dashboard and status page security headers"),
		SecurityHeadersBehavior: &awscloudfront.ResponseSecurityHeadersBehavior{
			StrictTransportSecurity: &awscloudfront.ResponseHeadersStrictTransportSecurity{
				AccessControlMaxAge: awscdk.Duration_Days(jsii.Number(730)),
				IncludeSubdomains:   jsii.Bool(true),
				Override:            jsii.Bool(true),
			},
			FrameOptions:       &awscloudfront.ResponseHeadersFrameOptions{FrameOption: awscloudfront.HeadersFrameOption_DENY, Override: jsii.Bool(true)},
			ContentTypeOptions: &awscloudfront.ResponseHeadersContentTypeOptions{Override: jsii.Bool(true)},
			ReferrerPolicy: &awscloudfront.ResponseHeadersReferrerPolicy{
				ReferrerPolicy: awscloudfront.HeadersReferrerPolicy_STRICT_ORIGIN_WHEN_CROSS_ORIGIN, Override: jsii.Bool(true),
			},
		},
	})
	origin := awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(bucket, nil)
	props := &awscloudfront.DistributionProps{
		Comment: jsii.String("Optralis dashboard and status page"),
		DefaultBehavior: &awscloudfront.BehaviorOptions{
			Origin:                origin,
			ViewerProtocolPolicy:  awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
			CachePolicy:           awscloudfront.CachePolicy_CACHING_OPTIMIZED(),
			ResponseHeadersPolicy: headers,
			Compress:              jsii.Bool(true),
		},
		DefaultRootObject:      jsii.String("index.html"),
		MinimumProtocolVersion: awscloudfront.SecurityPolicyProtocol_TLS_V1_2_2021,
		HttpVersion:            awscloudfront.HttpVersion_HTTP2_AND_3,
		PriceClass:             awscloudfront.PriceClass_PRICE_CLASS_100,
		// The dashboard is a single-page app: unknown paths load it (the bucket answers 403
		// for a missing key, since listing is not granted).
		ErrorResponses: &[]*awscloudfront.ErrorResponse{
			{HttpStatus: jsii.Number(403), ResponseHttpStatus: jsii.Number(200), ResponsePagePath: jsii.String("/index.html"), Ttl: awscdk.Duration_Minutes(jsii.Number(1))},
			{HttpStatus: jsii.Number(404), ResponseHttpStatus: jsii.Number(200), ResponsePagePath: jsii.String("/index.html"), Ttl: awscdk.Duration_Minutes(jsii.Number(1))},
		},
	}
	if b.cfg.DashboardDomain != "" {
		props.DomainNames = jsii.Strings(b.cfg.DashboardDomain)
		props.Certificate = awscertificatemanager.Certificate_FromCertificateArn(b.s, jsii.String("DashboardCertificate"), jsii.String(b.cfg.DashboardCertificateARN))
	}
	dist := awscloudfront.NewDistribution(b.s, jsii.String("Dashboard"), props)
	b.statusPage(bucket, dist, origin, headers)
	awscdk.NewCfnOutput(b.s, jsii.String("DashboardBucketName"), &awscdk.CfnOutputProps{Value: bucket.BucketName()})
	awscdk.NewCfnOutput(b.s, jsii.String("DashboardDistributionDomain"), &awscdk.CfnOutputProps{
		Value:       dist.DistributionDomainName(),
		Description: jsii.String("DNS: point the dashboard domain here (CNAME)"),
	})
}

// StatusPagePath is where the public status page lives on the dashboard's domain (and on
// the local stack): web/status, deployed under this prefix of the dashboard bucket.
const StatusPagePath = "/status-page/"

// statusPage deploys web/status under StatusPagePath with a config.js pointing the page at
// the API domain's GET /status (the dashboard's origin is in CORS_ALLOWED_ORIGINS), and
// serves it: a CloudFront function maps /status-page and /status-page/ to its index.html
// (the default root object applies to "/" only), and each deployment invalidates it.
func (b *builder) statusPage(bucket awss3.IBucket, dist awscloudfront.Distribution, origin awscloudfront.IOrigin, headers awscloudfront.IResponseHeadersPolicy) {
	index := awscloudfront.NewFunction(b.s, jsii.String("StatusPageIndex"), &awscloudfront.FunctionProps{
		Comment: jsii.String("Optralis status page: directory URLs to index.html"),
		Runtime: awscloudfront.FunctionRuntime_JS_2_0(),
		Code: awscloudfront.FunctionCode_FromInline(jsii.String(`function handler(event) {
  var r = event.request;
  if (r.uri === "` + strings.TrimSuffix(StatusPagePath, "/") + `") {
    return { statusCode: 301, statusDescription: "Moved Permanently", headers: { location: { value: "` + StatusPagePath + `" } } };
  }
  if (r.uri === "` + StatusPagePath + `") { r.uri = "` + StatusPagePath + `index.html"; }
  return r;
}`)),
	})
	dist.AddBehavior(jsii.String(strings.TrimSuffix(StatusPagePath, "/")+"*"), origin, &awscloudfront.AddBehaviorOptions{
		ViewerProtocolPolicy:  awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
		CachePolicy:           awscloudfront.CachePolicy_CACHING_OPTIMIZED(),
		ResponseHeadersPolicy: headers,
		Compress:              jsii.Bool(true),
		FunctionAssociations: &[]*awscloudfront.FunctionAssociation{
			{EventType: awscloudfront.FunctionEventType_VIEWER_REQUEST, Function: index},
		},
	})
	config := "window.OPTRALIS_STATUS_CONFIG = { apiUrl: \"https://" + b.cfg.APIDomain + "\" };\n"
	awss3deployment.NewBucketDeployment(b.s, jsii.String("StatusPage"), &awss3deployment.BucketDeploymentProps{
		DestinationBucket:    bucket,
		DestinationKeyPrefix: jsii.String(strings.TrimPrefix(StatusPagePath, "/")),
		Sources: &[]awss3deployment.ISource{
			// The Go file embedding the page for the local stack and its test stay out.
			awss3deployment.Source_Asset(jsii.String(b.statusDir), &awss3assets.AssetOptions{Exclude: jsii.Strings("*.go", "config.js")}),
			awss3deployment.Source_Data(jsii.String("config.js"), jsii.String(config), nil),
		},
		Distribution:      dist,
		DistributionPaths: jsii.Strings(StatusPagePath + "*"),
		// Short browser caching: a deployment is seen within minutes, the CDN is invalidated.
		CacheControl: &[]awss3deployment.CacheControl{awss3deployment.CacheControl_FromString(jsii.String("public, max-age=300"))},
	})
}
