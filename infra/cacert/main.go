// Command cacert makes the Optralis CA certificate from the CA key in AWS KMS: a
// self-signed certificate (ten years, path length zero) whose signature KMS computes, so
// the private key never leaves KMS. The PEM it writes is the agents domain's truststore
// (config "caBundle") and the CA_CERT_PEM the signing functions receive.
//
//	go run ./infra/cacert -key arn:aws:kms:eu-west-3:123456789012:key/... -out infra/config/prod-ca.pem
//
// It needs AWS credentials allowed kms:GetPublicKey and kms:Sign on the key (the
// deployer's, not a function's). It refuses to overwrite -out: a new CA certificate
// invalidates no agent certificate by itself, but replacing the truststore's only CA
// would, so rotation is a deliberate edit (append the new certificate to the bundle).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/ca/kmsca"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, func(ctx context.Context, region string) (kmsca.KMSAPI, error) {
		var opts []func(*awsconfig.LoadOptions) error
		if region != "" {
			opts = append(opts, awsconfig.WithRegion(region))
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, err
		}
		return kms.NewFromConfig(cfg), nil
	}, time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cacert:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer, newKMS func(ctx context.Context, region string) (kmsca.KMSAPI, error), now func() time.Time) error {
	fs := flag.NewFlagSet("cacert", flag.ContinueOnError)
	key := fs.String("key", "", "ARN of the CA key (output CaKeyArn of the CA stack)")
	cn := fs.String("cn", "Optralis Agent CA", "the CA certificate's common name")
	out := fs.String("out", "", "file to write the PEM to (default: standard output); never overwritten")
	region := fs.String("region", "", "AWS region (default: from the key ARN's environment, AWS_REGION)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("-key is required (the CA stack's CaKeyArn output)")
	}
	if *out != "" {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists: to rotate the CA, append the new certificate to the bundle by hand", *out)
		}
	}
	api, err := newKMS(ctx, *region)
	if err != nil {
		return err
	}
	signer, err := kmsca.NewKMSSigner(ctx, api, *key)
	if err != nil {
		return err
	}
	certPEM, err := ca.SelfSigned(signer, *cn, now().UTC())
	if err != nil {
		return fmt.Errorf("self-signing through KMS: %w", err)
	}
	if *out == "" {
		_, err = stdout.Write(certPEM)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(certPEM); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
