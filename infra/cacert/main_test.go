package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/optralis/optralis/internal/ca/kmsca"
)

// fakeKMS holds one P-256 key and signs digests as KMS does (DER ECDSA signatures).
type fakeKMS struct {
	key   *ecdsa.PrivateKey
	signs int
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	der, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &kms.GetPublicKeyOutput{KeyId: in.KeyId, PublicKey: der, KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.signs++
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, in.Message)
	if err != nil {
		return nil, err
	}
	return &kms.SignOutput{KeyId: in.KeyId, Signature: sig, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, nil
}

func TestMakesSelfSignedCAFromKMSKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeKMS{key: key}
	newKMS := func(context.Context, string) (kmsca.KMSAPI, error) { return fake, nil }
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	out := filepath.Join(t.TempDir(), "ca.pem")
	args := []string{"-key", "arn:aws:kms:eu-west-3:111111111111:key/abc", "-out", out}
	if err := run(context.Background(), args, nil, newKMS, func() time.Time { return now }); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", raw)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed by the KMS key: %v", err)
	}
	if !cert.IsCA || !cert.MaxPathLenZero || cert.Subject.CommonName != "Optralis Agent CA" || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Errorf("certificate %+v", cert.Subject)
	}
	if fake.signs != 1 {
		t.Errorf("%d KMS Sign calls, want 1", fake.signs)
	}
	// The same bundle is what the stack reads as its truststore.
	if !strings.HasPrefix(string(raw), "-----BEGIN CERTIFICATE-----") {
		t.Error("PEM does not start with the certificate")
	}

	// Never overwrites: replacing the truststore's CA would lock every agent out.
	err = run(context.Background(), args, nil, newKMS, func() time.Time { return now })
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second run: %v, want a refusal to overwrite", err)
	}
	// Without -out the PEM goes to standard output.
	var stdout bytes.Buffer
	if err := run(context.Background(), args[:2], &stdout, newKMS, func() time.Time { return now }); err != nil || !bytes.HasPrefix(stdout.Bytes(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("stdout run: %v %q", err, stdout.String())
	}
	if err := run(context.Background(), nil, nil, newKMS, time.Now); err == nil {
		t.Error("no -key accepted")
	}
}
