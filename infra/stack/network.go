package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// newNetwork is the VPC, in its own stack deployed with the CA key before everything else:
// an existing TimescaleDB is reached through VPC peering (or PrivateLink), which can only be
// set up once the VPC exists, and the main stack's deploy-time migrations need that route.
//
// Two AZs; public subnets hold the NAT gateway(s); the functions, the cache and Aurora sit
// in the private subnets. S3 is reached through a (free) gateway endpoint.
func newNetwork(scope constructs.Construct, cfg Config, env *awscdk.Environment) (awscdk.Stack, awsec2.IVpc) {
	s := awscdk.NewStack(scope, jsii.String(cfg.StackName+"Network"), &awscdk.StackProps{
		Env:         env,
		Description: jsii.String("Optralis network: VPC, NAT, route to the database"),
	})
	vpc := awsec2.NewVpc(s, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String(cfg.VPCCIDR)),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(float64(cfg.NATGateways)),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(20)},
		},
		GatewayEndpoints: &map[string]*awsec2.GatewayVpcEndpointOptions{
			"S3": {Service: awsec2.GatewayVpcEndpointAwsService_S3()},
		},
		RestrictDefaultSecurityGroup: jsii.Bool(true),
	})
	// The route to an external database over an accepted VPC peering connection.
	if pcx := cfg.Database.PeeringConnectionID; cfg.Database.Mode == DatabaseExternal && pcx != "" {
		for i, sub := range *vpc.PrivateSubnets() {
			awsec2.NewCfnRoute(s, jsii.String("DatabaseRoute"+string(rune('A'+i))), &awsec2.CfnRouteProps{
				RouteTableId:           sub.RouteTable().RouteTableId(),
				DestinationCidrBlock:   jsii.String(cfg.Database.CIDR),
				VpcPeeringConnectionId: jsii.String(pcx),
			})
		}
	}
	awscdk.NewCfnOutput(s, jsii.String("VpcId"), &awscdk.CfnOutputProps{
		Value:       vpc.VpcId(),
		Description: jsii.String("Peer your TimescaleDB's VPC with this one (then set database.peeringConnectionId)"),
	})
	awscdk.NewCfnOutput(s, jsii.String("VpcCidr"), &awscdk.CfnOutputProps{Value: vpc.VpcCidrBlock()})
	return s, vpc
}
