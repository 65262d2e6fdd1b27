package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/jsii-runtime-go"
)

// agentsALB is the "alb" agents endpoint: an internet-facing Application Load Balancer
// whose HTTPS listener verifies client certificates (mutual TLS, verify mode) against the
// same truststore object as API Gateway's, optionally with a revocation list, and forwards
// each agent route to its function (Lambda targets). It costs per LCU-hour instead of per
// request (infra/README.md's cost model).
//
// In verify mode every connection must present a certificate that chains to the trust
// store; the ALB then passes the leaf to the target in X-Amzn-Mtls-Clientcert-Leaf (URL-
// encoded PEM), which the functions read only when AGENTS_ENDPOINT=alb
// (internal/lambdaproxy.ALBHandler). Multi-value headers are on, so a request carrying
// that header twice is seen as such and refused rather than resolved to one value.
func (b *builder) agentsALB() awselasticloadbalancingv2.ApplicationLoadBalancer {
	sg := awsec2.NewSecurityGroup(b.s, jsii.String("AgentsAlbSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: b.vpc, AllowAllOutbound: jsii.Bool(false),
		Description: jsii.String("Agents load balancer: HTTPS (mutual TLS) from anywhere; targets are Lambda functions"),
	})
	sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("agents, mutual TLS"), nil)
	lb := awselasticloadbalancingv2.NewApplicationLoadBalancer(b.s, jsii.String("AgentsAlb"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc:            b.vpc,
		InternetFacing: jsii.Bool(true),
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		SecurityGroup:  sg,
		// Headers with invalid characters are dropped rather than passed to the targets.
		DropInvalidHeaderFields: jsii.Bool(true),
	})
	store := awselasticloadbalancingv2.NewTrustStore(b.s, jsii.String("AgentsTrustStore"), &awselasticloadbalancingv2.TrustStoreProps{
		Bucket: b.trust.bucket,
		Key:    jsii.String(b.trust.key),
	})
	store.Node().AddDependency(b.trust.upload)
	if b.crl.key != "" {
		upload := awss3deployment.NewBucketDeployment(b.s, jsii.String("RevocationList"), &awss3deployment.BucketDeploymentProps{
			DestinationBucket: b.trust.bucket,
			Sources:           &[]awss3deployment.ISource{awss3deployment.Source_Data(jsii.String(b.crl.key), jsii.String(b.crl.data), nil)},
			Prune:             jsii.Bool(false),
			RetainOnDelete:    jsii.Bool(true),
		})
		rev := awselasticloadbalancingv2.NewTrustStoreRevocation(b.s, jsii.String("AgentsTrustStoreRevocation"), &awselasticloadbalancingv2.TrustStoreRevocationProps{
			TrustStore: store,
			RevocationContents: &[]*awselasticloadbalancingv2.RevocationContent{{
				Bucket: b.trust.bucket, Key: jsii.String(b.crl.key), RevocationType: awselasticloadbalancingv2.RevocationType_CRL,
			}},
		})
		rev.Node().AddDependency(upload)
	}
	listener := lb.AddListener(jsii.String("Https"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port:         jsii.Number(443),
		Protocol:     awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		SslPolicy:    awselasticloadbalancingv2.SslPolicy_RECOMMENDED_TLS,
		Certificates: &[]awselasticloadbalancingv2.IListenerCertificate{awselasticloadbalancingv2.ListenerCertificate_FromArn(jsii.String(b.cfg.AgentsCertificateARN))},
		MutualAuthentication: &awselasticloadbalancingv2.MutualAuthentication{
			MutualAuthenticationMode:      awselasticloadbalancingv2.MutualAuthenticationMode_VERIFY,
			TrustStore:                    store,
			IgnoreClientCertificateExpiry: jsii.Bool(false),
		},
		Open: jsii.Bool(false), // the security group above says who may connect
		DefaultAction: awselasticloadbalancingv2.ListenerAction_FixedResponse(jsii.Number(404), &awselasticloadbalancingv2.FixedResponseOptions{
			ContentType: jsii.String("application/json"),
			MessageBody: jsii.String(`{"error":{"code":"not_found","message":"no such route"}}`),
		}),
	})
	paths := map[string][]string{}
	var order []string
	for _, r := range routesOf(b.routes, true) {
		if _, ok := paths[r.Function]; !ok {
			order = append(order, r.Function)
		}
		paths[r.Function] = append(paths[r.Function], r.Path)
	}
	for i, fn := range order {
		id := exportName(fn)
		tg := awselasticloadbalancingv2.NewApplicationTargetGroup(b.s, jsii.String(id+"TargetGroup"), &awselasticloadbalancingv2.ApplicationTargetGroupProps{
			TargetType: awselasticloadbalancingv2.TargetType_LAMBDA,
			Targets:    &[]awselasticloadbalancingv2.IApplicationLoadBalancerTarget{awselasticloadbalancingv2targets.NewLambdaTarget(b.built[fn])},
		})
		tg.SetAttribute(jsii.String("lambda.multi_value_headers.enabled"), jsii.String("true"))
		// A listener rule matches at most 5 values per condition.
		for j := 0; j < len(paths[fn]); j += 5 {
			end := min(j+5, len(paths[fn]))
			listener.AddTargetGroups(jsii.String(fmt.Sprintf("%sRoutes%d", id, j/5)), &awselasticloadbalancingv2.AddApplicationTargetGroupsProps{
				Priority:     jsii.Number(float64(10*(i+1) + j/5)),
				Conditions:   &[]awselasticloadbalancingv2.ListenerCondition{awselasticloadbalancingv2.ListenerCondition_PathPatterns(jsii.Strings(paths[fn][j:end]...))},
				TargetGroups: &[]awselasticloadbalancingv2.IApplicationTargetGroup{tg},
			})
		}
	}
	awscdk.NewCfnOutput(b.s, jsii.String("AgentsDomainTarget"), &awscdk.CfnOutputProps{
		Value:       lb.LoadBalancerDnsName(),
		Description: jsii.String("DNS: point " + b.cfg.AgentsDomain + " here (CNAME, or alias with AgentsDomainZone)"),
	})
	awscdk.NewCfnOutput(b.s, jsii.String("AgentsDomainZone"), &awscdk.CfnOutputProps{Value: lb.LoadBalancerCanonicalHostedZoneId()})
	return lb
}

// revocationList is the optional PEM CRL file of alb.revocationList, stored beside the
// truststore under a key derived from its content.
type revocationList struct {
	key, data string
}

func readRevocationList(path string) (revocationList, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return revocationList{}, fmt.Errorf("alb.revocationList: %w", err)
	}
	// PEM only: the file travels as text through the deployment (DER would be mangled).
	if blk, _ := pem.Decode(raw); blk == nil || blk.Type != "X509 CRL" {
		return revocationList{}, fmt.Errorf("alb.revocationList %s: not a PEM \"X509 CRL\"", path)
	}
	sum := sha256.Sum256(raw)
	return revocationList{key: "revocation/optralis-" + hex.EncodeToString(sum[:8]) + ".crl", data: string(raw)}, nil
}
