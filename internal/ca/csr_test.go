package ca_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
)

func csrPEM(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestParseCSRAcceptsSupportedKeys(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, k := range map[string]crypto.Signer{"P-256": p256, "P-384": p384, "RSA-2048": r2048} {
		if _, err := ca.ParseCSR(csrPEM(t, k, nil)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every bad request is refused with one of the three client-safe errors.
func TestParseCSRRefusals(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csrPEM(t, p256, nil)
	block, _ := pem.Decode(good)

	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0x55 // inside the signature BIT STRING
	// The request of one key carrying the signature of another: proof of possession fails.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	swapped := swapCSRKey(t, block.Bytes, csrPEM(t, other, nil))

	r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)

	certBlock := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})
	enc := func(der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ca.ErrMalformedCSR},
		{"not PEM", []byte("hello"), ca.ErrMalformedCSR},
		{"DER without PEM", block.Bytes, ca.ErrMalformedCSR},
		{"wrong PEM type", certBlock, ca.ErrMalformedCSR},
		{"truncated DER", enc(block.Bytes[:len(block.Bytes)/2]), ca.ErrMalformedCSR},
		{"garbage DER", enc([]byte{0x30, 0x03, 0x02, 0x01, 0x01}), ca.ErrMalformedCSR},
		{"two requests", append(append([]byte(nil), good...), good...), ca.ErrMalformedCSR},
		{"trailing junk", append(append([]byte(nil), good...), "junk"...), ca.ErrMalformedCSR},
		{"oversized", append(bytes.Repeat([]byte(" "), ca.MaxCSRBytes), good...), ca.ErrMalformedCSR},
		{"signature altered", enc(tampered), ca.ErrCSRSignature},
		{"key swapped", enc(swapped), ca.ErrCSRSignature},
		{"RSA 1024", csrPEM(t, r1024, nil), ca.ErrKeyType},
		{"P-521", csrPEM(t, p521, nil), ca.ErrKeyType},
		{"Ed25519", csrPEM(t, ed, nil), ca.ErrKeyType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.ParseCSR(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// swapCSRKey returns csr (DER) with its SubjectPublicKeyInfo replaced by the one of
// otherPEM's request, keeping the original signature.
func swapCSRKey(t *testing.T, der, otherPEM []byte) []byte {
	t.Helper()
	type info struct {
		Version       int
		Subject       asn1.RawValue
		PublicKey     asn1.RawValue
		RawAttributes []asn1.RawValue `asn1:"tag:0"`
	}
	type request struct {
		Info      info
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	var a, b request
	if _, err := asn1.Unmarshal(der, &a); err != nil {
		t.Fatal(err)
	}
	ob, _ := pem.Decode(otherPEM)
	if _, err := asn1.Unmarshal(ob.Bytes, &b); err != nil {
		t.Fatal(err)
	}
	a.Info.PublicKey = b.Info.PublicKey
	out, err := asn1.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Whatever the request asks for — another identity in the CN, SANs, CA rights, server
// auth — the certificate carries only what the server sets.
func TestIssuedCertificateIgnoresRequestedFields(t *testing.T) {
	now := time.Now()
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://evil/admin")
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	csr, err := ca.ParseCSR(csrPEM(t, key, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "00000000-0000-0000-0000-000000000000:11111111-1111-1111-1111-111111111111", Organization: []string{"Evil"}},
		DNSNames:        []string{"api.optralis.com", "*.optralis.com"},
		EmailAddresses:  []string{"root@optralis.com"},
		IPAddresses:     []net.IP{net.ParseIP("10.0.0.1")},
		URIs:            []*url.URL{u},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.IssueClient(csr.PublicKey, "client:machine", now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "client:machine" || slices.Contains(cert.Subject.Organization, "Evil") {
		t.Fatalf("subject %v", cert.Subject)
	}
	if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses)+len(cert.URIs) != 0 || cert.IsCA || cert.BasicConstraintsValid {
		t.Fatalf("requested fields leaked: %v %v %v %v CA=%v", cert.DNSNames, cert.EmailAddresses, cert.IPAddresses, cert.URIs, cert.IsCA)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("usages %v %v", cert.ExtKeyUsage, cert.KeyUsage)
	}
	var oids []string
	for _, e := range cert.Extensions {
		oids = append(oids, e.Id.String())
	}
	sort.Strings(oids)
	// key usage, extended key usage, authority key id: nothing else.
	if strings.Join(oids, ",") != "2.5.29.15,2.5.29.35,2.5.29.37" {
		t.Fatalf("extensions %v", oids)
	}
	if d := now.Sub(cert.NotBefore); d < 59*time.Second || d > 61*time.Second {
		t.Fatalf("not before %v is %v before now, want a minute", cert.NotBefore, d)
	}
	if !cert.NotAfter.Equal(now.Add(365 * 24 * time.Hour).Truncate(time.Second)) {
		t.Fatalf("not after %v", cert.NotAfter)
	}
	if len(ca.SerialHex(cert.SerialNumber)) > 32 || cert.SerialNumber.Sign() <= 0 {
		t.Fatalf("serial %s", ca.SerialHex(cert.SerialNumber))
	}
}

func TestIssueClientRefusesUnsupportedKeys(t *testing.T) {
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := authority.IssueClient(pub, "c:m", time.Now(), time.Hour); !errors.Is(err, ca.ErrKeyType) {
		t.Fatalf("Ed25519: %v", err)
	}
}
