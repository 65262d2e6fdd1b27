package main

import (
	"testing"
	"time"
)

// The report's arithmetic, without a database: key families, nearest-rank percentiles,
// and the hit rate that leaves bookkeeping reads out.
func TestFamily(t *testing.T) {
	for key, want := range map[string]string{
		"bench1a2b.redis/machines:list:7f0c8a52-4a47-4bb7-9a4e-1d2c3b4a5f60":  "machines:list",
		"bench1a2b.redis/machines:count:7f0c8a52-4a47-4bb7-9a4e-1d2c3b4a5f60": "machines:count",
		"bench1a2b.redis/client:id:7f0c8a52-4a47-4bb7-9a4e-1d2c3b4a5f60":      "client:id",
		"bench1a2b.redis/agent:version:stable":                                "agent:version",
		"bench1a2b.redis/bl:9f86d081884c7d65":                                 "bl",
		"bench1a2b.redis/bl:family:7f0c8a52-4a47":                             "bl:family",
		"bench1a2b.redis/bl:synced":                                           "bl:synced",
		"0c4e":                                                                "(other)",
	} {
		if got := family(key); got != want {
			t.Errorf("family(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestDistAndRate(t *testing.T) {
	r := newRecorder()
	for i := 1; i <= 100; i++ {
		r.add("x", time.Duration(i)*time.Millisecond, 200, nil)
	}
	r.add("x", time.Second, 500, []byte("boom"))
	d := r.dist("x")
	if d.N != 100 || d.Failed != 1 || d.P50 != 50 || d.P90 != 90 || d.P99 != 99 || d.Max != 100 {
		t.Fatalf("dist = %+v", d)
	}
	rate, n := appCacheRate(map[string]int64{"machines:list": 9, "bl": 100}, map[string]int64{"machines:list": 1, "machines:version": 50})
	if n != 10 || rate != 0.9 {
		t.Fatalf("rate %v of %d, want 0.9 of 10", rate, n)
	}
}
