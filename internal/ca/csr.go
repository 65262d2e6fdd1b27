package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// CSR refusals. Their messages are safe to show to the agent.
var (
	ErrMalformedCSR = errors.New("csr must be one PEM-encoded CERTIFICATE REQUEST")
	ErrCSRSignature = errors.New("csr signature does not verify")
	ErrKeyType      = errors.New("key must be ECDSA P-256 or P-384, or RSA of 2048 to 8192 bits")
)

// MaxCSRBytes bounds the PEM a caller may send (an RSA-8192 request is about 2.5 KB).
const MaxCSRBytes = 16 << 10

// ParseCSR parses one PEM CERTIFICATE REQUEST, verifies its self-signature (proof that the
// caller holds the private key) and checks the key type. Nothing else in the request is
// used: the subject, SANs and extensions it asks for are ignored by IssueClient.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > MaxCSRBytes {
		return nil, ErrMalformedCSR
	}
	b, rest := pem.Decode(pemBytes)
	if b == nil || (b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST") || len(bytes.TrimSpace(rest)) != 0 {
		return nil, ErrMalformedCSR
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCSR, err)
	}
	if err := CheckClientKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, ErrCSRSignature
	}
	return csr, nil
}

// CheckClientKey accepts the keys a machine certificate may certify: ECDSA P-256 or P-384,
// RSA from 2048 to 8192 bits. Anything else (Ed25519, P-224, P-521, small RSA) is refused.
func CheckClientKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n >= 2048 && n <= 8192 {
			return nil
		}
	}
	return ErrKeyType
}
