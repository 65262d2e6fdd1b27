// Package kmsca is the machine CA with its private key in AWS KMS: a crypto.Signer that
// sends digests to kms:Sign. Only the functions that sign certificates link it (and the AWS
// KMS client with it).
package kmsca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/ca"
)

// KMSAPI is the part of the AWS KMS API the signer uses; *kms.Client satisfies it.
type KMSAPI interface {
	Sign(ctx context.Context, in *kms.SignInput, opts ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// KMSSigner is a crypto.Signer whose private key stays in AWS KMS (an asymmetric
// ECC_NIST_P256 SIGN_VERIFY key): Sign sends the SHA-256 digest to KMS Sign, so the key
// never enters the process.
type KMSSigner struct {
	api     KMSAPI
	keyID   string
	pub     *ecdsa.PublicKey
	timeout time.Duration
}

// NewKMSSigner reads the key's public half once (GetPublicKey) and checks that the key is
// an ECC_NIST_P256 signing key.
func NewKMSSigner(ctx context.Context, api KMSAPI, keyID string) (*KMSSigner, error) {
	if keyID == "" {
		return nil, errors.New("kmsca: KMS key id is empty")
	}
	out, err := awsenv.Call(ctx, "kmsca: KMS GetPublicKey", func(ctx context.Context) (*kms.GetPublicKeyOutput, error) {
		return api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	})
	if err != nil {
		return nil, err
	}
	if out.KeySpec != types.KeySpecEccNistP256 || out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("kmsca: KMS key %s is %s/%s; an ECC_NIST_P256 SIGN_VERIFY key is required", keyID, out.KeySpec, out.KeyUsage)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kmsca: KMS public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("kmsca: KMS public key is not ECDSA P-256")
	}
	return &KMSSigner{api: api, keyID: keyID, pub: ec, timeout: 10 * time.Second}, nil
}

// Public returns the key's public half, read at construction.
func (s *KMSSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest with KMS (ECDSA_SHA_256, MessageType DIGEST) and returns the
// ASN.1 DER signature, as crypto.Signer requires. The signature is verified against the
// public key before it is returned, so a misbehaving key or service cannot produce a
// certificate that does not verify.
func (s *KMSSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("kmsca: the KMS signer signs SHA-256 digests only")
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("kmsca: digest is %d bytes, a SHA-256 digest is %d", len(digest), crypto.SHA256.Size())
	}
	// crypto.Signer carries no context: the request's deadline cannot reach here, so the
	// call has its own.
	out, err := awsenv.CallWithin(context.Background(), s.timeout, "kmsca: KMS Sign", func(ctx context.Context) (*kms.SignOutput, error) {
		return s.api.Sign(ctx, &kms.SignInput{
			KeyId:            aws.String(s.keyID),
			Message:          digest,
			MessageType:      types.MessageTypeDigest,
			SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
		})
	})
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(s.pub, digest, out.Signature) {
		return nil, errors.New("kmsca: KMS returned a signature that does not verify")
	}
	return out.Signature, nil
}

// FromKMS is the production CA: the certificate (PEM, as held by API Gateway's truststore)
// with its private key in KMS. The certificate's public key must be the KMS key's.
func FromKMS(ctx context.Context, api KMSAPI, keyID string, certPEM []byte) (*ca.CA, error) {
	signer, err := NewKMSSigner(ctx, api, keyID)
	if err != nil {
		return nil, err
	}
	return ca.WithSigner(certPEM, signer)
}

// Open is the machine CA of a deployed function: its certificate (CA_CERT_PEM) and its key
// in KMS (CA_KMS_KEY_ARN), which signs through kms:Sign without the key ever entering the
// function. Without a key there is none (nil: the local stack passes its own; the signing
// routes answer 503).
func Open(ctx context.Context, getenv func(string) string, keyID string, certPEM []byte) (*ca.CA, error) {
	if keyID == "" {
		return nil, nil
	}
	awsCfg, err := awsenv.Config(getenv)
	if err != nil {
		return nil, fmt.Errorf("machine CA: AWS configuration: %w", err)
	}
	authority, err := FromKMS(ctx, kms.NewFromConfig(awsCfg), keyID, certPEM)
	if err != nil {
		return nil, fmt.Errorf("machine CA: %w", err)
	}
	return authority, nil
}
