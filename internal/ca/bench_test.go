package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
)

// BenchmarkIssueFromCSR is the CPU part of an enrolment with the local CA: parse and verify
// the agent's CSR, then sign its certificate (ECDSA P-256). Besides the mean (ns/op) it
// reports the median of the individual issuances (median-µs).
//
//	go test -run '^$' -bench IssueFromCSR -benchtime 200x -count 5 ./internal/ca
func BenchmarkIssueFromCSR(b *testing.B) {
	now := time.Now()
	authority, err := ca.LoadOrCreateLocal(b.TempDir(), now)
	if err != nil {
		b.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := csrPEM(b, key, nil)
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		csr, err := ca.ParseCSR(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := authority.IssueClient(csr.PublicKey, "c:m", now, 365*24*time.Hour); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds())/1e3, "median-µs")
}
