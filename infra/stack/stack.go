// Package stack defines Optralis's AWS infrastructure as CDK stacks: the CA key stack, and
// the main stack with the two API domains, one Lambda per function, the schedules, the
// database and cache wiring, the CDN and the alarms.
package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Props are what New builds from.
type Props struct {
	Config Config
	// Functions is the function table; nil means Functions().
	Functions []Function
	// Routes is the route table; nil means AppRoutes().
	Routes []Route
	// Root is the repository root, against which relative paths in Config resolve
	// ("" means the working directory: `make synth` and `cdk` run from the root).
	Root string
	// BaseOnly defines only the base stacks (CA key, network): the first deployment step,
	// before the CA certificate (the truststore) and the database route can exist.
	BaseOnly bool
}

// Stacks are the synthesized stacks and the functions by name.
type Stacks struct {
	CA        awscdk.Stack
	Network   awscdk.Stack
	Main      awscdk.Stack // nil with BaseOnly
	Functions map[string]awslambda.Function
}

// New defines both stacks in scope (the CDK app).
func New(scope constructs.Construct, p Props) (*Stacks, error) {
	cfg := p.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fns := p.Functions
	if fns == nil {
		fns = Functions()
	}
	routes := p.Routes
	if routes == nil {
		var err error
		if routes, err = AppRoutes(); err != nil {
			return nil, err
		}
	}
	if err := checkRoutes(fns, routes); err != nil {
		return nil, err
	}
	env := &awscdk.Environment{Account: jsii.String(cfg.Account), Region: jsii.String(cfg.Region)}

	// The CA key lives in its own stack, deployed first and kept: the CA certificate (the
	// agents' truststore) is made from it before the main stack can exist, and losing it
	// would orphan every agent certificate.
	caStack := awscdk.NewStack(scope, jsii.String(cfg.StackName+"Ca"), &awscdk.StackProps{
		Env:                   env,
		Description:           jsii.String("Optralis CA signing key (KMS, ECC_NIST_P256, SIGN_VERIFY)"),
		TerminationProtection: jsii.Bool(true),
	})
	key := awskms.NewKey(caStack, jsii.String("CaKey"), &awskms.KeyProps{
		KeySpec:       awskms.KeySpec_ECC_NIST_P256,
		KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
		Description:   jsii.String("Optralis agent CA: signs agent client certificates"),
		Alias:         jsii.String("alias/" + strings.ToLower(cfg.StackName) + "-ca"),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	awscdk.NewCfnOutput(caStack, jsii.String("CaKeyArn"), &awscdk.CfnOutputProps{
		Value:       key.KeyArn(),
		Description: jsii.String("Make the CA certificate from this key: go run ./infra/cacert -key <arn>"),
	})
	netStack, vpc := newNetwork(scope, cfg, env)
	if p.BaseOnly {
		return &Stacks{CA: caStack, Network: netStack}, nil
	}

	abs := func(path string) string {
		if filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(p.Root, path)
	}
	bundle, err := readCABundle(abs(cfg.CABundle))
	if err != nil {
		return nil, err
	}
	var crl revocationList
	if cfg.ALB.RevocationList != "" {
		if crl, err = readRevocationList(abs(cfg.ALB.RevocationList)); err != nil {
			return nil, err
		}
	}
	assets := abs(cfg.AssetDir)
	for _, f := range fns {
		if _, err := os.Stat(filepath.Join(assets, f.Name, "bootstrap")); err != nil {
			return nil, fmt.Errorf("function %s: %w (run `make build` first)", f.Name, err)
		}
	}

	main := awscdk.NewStack(scope, jsii.String(cfg.StackName), &awscdk.StackProps{
		Env:         env,
		Description: jsii.String("Optralis backend: API domains, functions, schedules, data, CDN, alarms"),
	})
	main.AddStackDependency(caStack, jsii.String("the CA key signs agent certificates"))
	main.AddStackDependency(netStack, jsii.String("the functions, cache and database live in its VPC"))
	b := &builder{
		s:         main,
		cfg:       cfg,
		fns:       fns,
		routes:    routes,
		caKey:     key,
		vpc:       vpc,
		bundle:    bundle,
		crl:       crl,
		assets:    assets,
		statusDir: abs(filepath.Join("web", "status")),
		built:     map[string]awslambda.Function{},
	}
	b.build()
	return &Stacks{CA: caStack, Network: netStack, Main: main, Functions: b.built}, nil
}

// caBundle is the truststore: every CA certificate agents' certificates may chain to.
type caBundle struct {
	pem    string // the whole file
	issuer string // the first certificate, PEM: the CA that signs now
	sha    string // content hash, part of the truststore's object key
}

func readCABundle(path string) (caBundle, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return caBundle{}, fmt.Errorf("caBundle: %w", err)
	}
	var first string
	rest := raw
	n := 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return caBundle{}, fmt.Errorf("caBundle %s: holds a %s block; only certificates belong in a truststore", path, blk.Type)
		}
		if n == 0 {
			first = string(pem.EncodeToMemory(blk))
		}
		n++
	}
	if n == 0 {
		return caBundle{}, errors.New("caBundle " + path + ": no PEM certificate")
	}
	sum := sha256.Sum256(raw)
	return caBundle{pem: string(raw), issuer: first, sha: hex.EncodeToString(sum[:8])}, nil
}
