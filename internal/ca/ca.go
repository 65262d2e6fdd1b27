// Package ca is Optralis's internal certificate authority: the ECDSA P-256 CA whose
// certificates agents present over mutual TLS.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA signs certificates with a private key it may not hold itself (KMS on AWS).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Signer  crypto.Signer
}

// Pool returns a pool holding the CA, for verifying client certificates.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// LoadOrCreateLocal loads the development CA from dir (ca.key, ca.crt), creating it on
// first use. The key file is written with mode 0600.
func LoadOrCreateLocal(dir string, now time.Time) (*CA, error) {
	keyPath, certPath := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.crt")
	keyPEM, kerr := os.ReadFile(keyPath)
	certPEM, cerr := os.ReadFile(certPath)
	if kerr == nil && cerr == nil {
		return parseLocal(keyPEM, certPEM)
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, kerr
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if certPEM, err = SelfSigned(key, "Optralis Local Development CA", now); err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return parseLocal(keyPEM, certPEM)
}

func parseLocal(keyPEM, certPEM []byte) (*CA, error) {
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	if kb == nil || cb == nil {
		return nil, errors.New("ca: key or certificate file is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("ca: key cannot sign")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: certPEM, Signer: signer}, nil
}

// SelfSigned makes the CA certificate (PEM) for signer: ten years, path length zero (it
// signs machine and server certificates only). For KMS, signer is a KMSSigner: the
// certificate API Gateway's truststore holds is made without the key leaving KMS.
func SelfSigned(signer crypto.Signer, commonName string, now time.Time) ([]byte, error) {
	serial, err := Serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Optralis"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Serial returns a random 128-bit positive serial number (never zero, which RFC 5280
// forbids).
func Serial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// SerialHex is how a serial is written in the database (client_certificates.serial,
// machines.cert_serial) and compared with presented certificates: lower-case hexadecimal
// without leading zeros, at most 32 characters for a 128-bit serial.
func SerialHex(n *big.Int) string { return n.Text(16) }

// ServerCertificate issues a short-lived TLS server certificate for the given host names
// and IPs (the local agent endpoint). It is made at each start and never stored.
func (c *CA) ServerCertificate(hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := Serial()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Optralis"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, &key.PublicKey, c.Signer)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, c.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// IssueClient signs a client-authentication certificate for pub with the given common
// name, valid for validity from now (NotBefore backdated a minute for clock skew). Every
// field is set here: nothing comes from a CSR but the public key, which CheckClientKey
// must accept.
func (c *CA) IssueClient(pub crypto.PublicKey, commonName string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	if err := CheckClientKey(pub); err != nil {
		return nil, err
	}
	serial, err := Serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"Optralis"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, pub, c.Signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// WithSigner is a CA from its certificate (PEM) and a signer holding its private key
// elsewhere (KMS); the certificate's public key must be the signer's.
func WithSigner(certPEM []byte, signer crypto.Signer) (*CA, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("ca: the CA certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("ca: the certificate is not a CA certificate")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("ca: the CA certificate does not match the signing key")
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), Signer: signer}, nil
}
