package kmsca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/ca/kmsca"
)

// fakeKMS is an in-process stand-in for AWS KMS holding one real ECDSA key. It checks what
// the adapter sends the way KMS would (key id, DIGEST message type, ECDSA_SHA_256, digest
// length). It tests our adapter offline, not AWS.
type fakeKMS struct {
	keyID   string
	key     *ecdsa.PrivateKey
	keySpec types.KeySpec
	signErr error
	corrupt bool // return a signature that does not verify

	mu      sync.Mutex
	digests [][]byte
}

func newFakeKMS(t *testing.T) *fakeKMS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{keyID: "arn:aws:kms:eu-west-3:111122223333:key/test", key: key, keySpec: types.KeySpecEccNistP256}
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	if in.KeyId == nil || *in.KeyId != f.keyID {
		return nil, errors.New("NotFoundException: key does not exist")
	}
	der, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &kms.GetPublicKeyOutput{KeyId: in.KeyId, PublicKey: der, KeySpec: f.keySpec, KeyUsage: types.KeyUsageTypeSignVerify,
		SigningAlgorithms: []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	if f.signErr != nil {
		return nil, f.signErr
	}
	switch {
	case in.KeyId == nil || *in.KeyId != f.keyID:
		return nil, errors.New("NotFoundException")
	case in.MessageType != types.MessageTypeDigest:
		return nil, errors.New("ValidationException: MessageType must be DIGEST")
	case in.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256:
		return nil, errors.New("InvalidKeyUsageException: algorithm")
	case len(in.Message) != sha256.Size:
		return nil, errors.New("ValidationException: digest length")
	}
	f.mu.Lock()
	f.digests = append(f.digests, append([]byte(nil), in.Message...))
	f.mu.Unlock()
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, in.Message)
	if err != nil {
		return nil, err
	}
	if f.corrupt {
		sig[len(sig)-1] ^= 0xff
	}
	return &kms.SignOutput{KeyId: in.KeyId, Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// A CA whose key lives in (fake) KMS: its self-signed certificate and a machine
// certificate are signed through KMS Sign and verify with the standard library.
func TestKMSBackedCAIssuesVerifiableCertificates(t *testing.T) {
	ctx := context.Background()
	f := newFakeKMS(t)
	now := time.Now()
	signer, err := kmsca.NewKMSSigner(ctx, f, f.keyID)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Public().(*ecdsa.PublicKey).Equal(&f.key.PublicKey) {
		t.Fatal("Public() is not the KMS key")
	}
	certPEM, err := ca.SelfSigned(signer, "Optralis Machine CA", now)
	if err != nil {
		t.Fatal(err)
	}
	authority, err := kmsca.FromKMS(ctx, f, f.keyID, certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := authority.Cert.CheckSignatureFrom(authority.Cert); err != nil {
		t.Fatalf("self-signed CA certificate: %v", err)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := authority.IssueClient(&key.PublicKey, "c:m", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: authority.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Fatalf("machine certificate signed through KMS does not verify: %v", err)
	}
	// What KMS signed is exactly the digest of the certificate's TBS part.
	want := sha256.Sum256(cert.RawTBSCertificate)
	f.mu.Lock()
	last := f.digests[len(f.digests)-1]
	n := len(f.digests)
	f.mu.Unlock()
	if string(last) != string(want[:]) || n != 2 {
		t.Fatalf("KMS signed %d digests, last %x, want the TBS digest %x", n, last, want)
	}
}

func TestKMSSignerRefusals(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong key spec", func(t *testing.T) {
		f := newFakeKMS(t)
		f.keySpec = types.KeySpecRsa2048
		if _, err := kmsca.NewKMSSigner(ctx, f, f.keyID); err == nil || !strings.Contains(err.Error(), "ECC_NIST_P256") {
			t.Fatalf("accepted an RSA key spec: %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		f := newFakeKMS(t)
		if _, err := kmsca.NewKMSSigner(ctx, f, "alias/other"); err == nil {
			t.Fatal("no error for an unknown key")
		}
	})
	t.Run("certificate of another key", func(t *testing.T) {
		f := newFakeKMS(t)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pemOther, err := ca.SelfSigned(other, "other", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kmsca.FromKMS(ctx, f, f.keyID, pemOther); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("accepted a CA certificate of another key: %v", err)
		}
		if _, err := kmsca.FromKMS(ctx, f, f.keyID, []byte("not pem")); err == nil {
			t.Fatal("accepted a non-PEM certificate")
		}
	})
	t.Run("KMS error surfaces", func(t *testing.T) {
		f := newFakeKMS(t)
		s, err := kmsca.NewKMSSigner(ctx, f, f.keyID)
		if err != nil {
			t.Fatal(err)
		}
		f.signErr = errors.New("ThrottlingException")
		d := sha256.Sum256([]byte("x"))
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "ThrottlingException") {
			t.Fatalf("Sign error: %v", err)
		}
	})
	t.Run("bad signature from KMS", func(t *testing.T) {
		f := newFakeKMS(t)
		f.corrupt = true
		s, err := kmsca.NewKMSSigner(ctx, f, f.keyID)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte("x"))
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err == nil {
			t.Fatal("returned a signature that does not verify")
		}
	})
	t.Run("only SHA-256 digests", func(t *testing.T) {
		f := newFakeKMS(t)
		s, err := kmsca.NewKMSSigner(ctx, f, f.keyID)
		if err != nil {
			t.Fatal(err)
		}
		d := make([]byte, 48)
		if _, err := s.Sign(rand.Reader, d, crypto.SHA384); err == nil {
			t.Fatal("signed a SHA-384 digest")
		}
		if _, err := s.Sign(rand.Reader, d[:20], crypto.SHA256); err == nil {
			t.Fatal("signed a digest of the wrong length")
		}
	})
}
