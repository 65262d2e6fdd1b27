package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
)

func TestLocalCAPersistsWithPrivateKeyMode(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := ca.LoadOrCreateLocal(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode = %v, %v", fi.Mode().Perm(), err)
	}
	b, err := ca.LoadOrCreateLocal(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) {
		t.Fatal("second load made a new CA")
	}
	if _, ok := a.Cert.PublicKey.(*ecdsa.PublicKey); !ok || !a.Cert.IsCA {
		t.Fatal("CA is not an ECDSA CA certificate")
	}
}

func TestClientCertificateVerifiesForClientAuthOnly(t *testing.T) {
	now := time.Now()
	a, err := ca.LoadOrCreateLocal(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := a.IssueClient(&key.PublicKey, "c:m", now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.BitLen() > 128 || cert.NotBefore.After(now.Add(-59*time.Second)) {
		t.Fatalf("serial bits %d, not before %v", cert.SerialNumber.BitLen(), cert.NotBefore)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("client cert usable as a server cert")
	}
}
