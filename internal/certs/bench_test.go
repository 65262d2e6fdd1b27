package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

// BenchmarkIssue is a whole renewal with the local CA against the real database: lock
// the machine, sign, supersede the previous certificate, record, update the machine,
// audit — one transaction. It reports the median of the individual issuances.
//
//	go test -run '^$' -bench Issue -benchtime 200x -count 5 ./internal/certs
func BenchmarkIssue(b *testing.B) {
	pool := testenv.NewDB(b, migrate.ModePostgres)
	now := time.Now()
	authority, err := ca.LoadOrCreateLocal(b.TempDir(), now)
	if err != nil {
		b.Fatal(err)
	}
	client := testenv.Client(b, pool, "Pro")
	machine := testenv.Machine(b, pool, client, "bench")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := certs.Issue(ctx, pool, authority, req, now); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds())/1e3, "median-µs")
}
