package certs_test

import (
	"testing"

	"github.com/optralis/optralis/internal/certs"
)

// FuzzParseCommonName: an accepted CN is exactly client:machine in canonical UUID form, so
// no two spellings name the same machine.
//
//	go test -run '^$' -fuzz FuzzParseCommonName -fuzztime 30s ./internal/certs
func FuzzParseCommonName(f *testing.F) {
	for _, s := range []string{
		"11111111-1111-1111-1111-111111111111:22222222-2222-2222-2222-222222222222",
		"11111111-1111-1111-1111-111111111111:22222222-2222-2222-2222-22222222222A",
		"urn:uuid:11111111-1111-1111-1111-111111111111:x", ":", "", "a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cn string) {
		c, m, err := certs.ParseCommonName(cn)
		if err != nil {
			return
		}
		if certs.CommonName(c, m) != cn || len(c) != 36 || len(m) != 36 {
			t.Fatalf("accepted %q as %q:%q", cn, c, m)
		}
	})
}
