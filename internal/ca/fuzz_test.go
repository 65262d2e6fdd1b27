package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/optralis/optralis/internal/ca"
)

// FuzzParseCSR: whatever the bytes, ParseCSR does not panic, and what it accepts has a
// verified signature and an accepted key.
//
//	go test -run '^$' -fuzz FuzzParseCSR -fuzztime 30s ./internal/ca
func FuzzParseCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csrPEM(f, key, nil)
	f.Add(good)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, err := ca.ParseCSR(in)
		if err != nil {
			return
		}
		if csr.CheckSignature() != nil || ca.CheckClientKey(csr.PublicKey) != nil {
			t.Fatalf("accepted a request with a bad signature or key")
		}
	})
}
