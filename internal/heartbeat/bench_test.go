package heartbeat_test

import (
	"bytes"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/ratelimit"
)

// BenchmarkHandler is one heartbeat through the handler alone (no HTTP server, TLS or
// guard): JSON decoding, validation and the one-round-trip batch, sequentially. Its time
// is mostly the database's work for one heartbeat's transaction.
func BenchmarkHandler(b *testing.B) {
	e := setup(b, options{limit: ratelimit.Limit{Burst: 1 << 30, Period: time.Minute}, asyncCommit: os.Getenv("BENCH_ASYNC_COMMIT") != ""})
	h := e.hb.HandleHeartbeat()
	base := e.now.Add(-time.Hour)
	b.ResetTimer()
	for i := range b.N {
		p := payload(base.Add(time.Duration(i) * time.Millisecond))
		if i%10 != 0 {
			delete(p, "collectors")
			delete(p, "smart")
		}
		req := httptest.NewRequest("POST", "/agent/heartbeat", bytes.NewReader(mustJSON(p)))
		req.RemoteAddr = "198.51.100.9:1"
		req = req.WithContext(certs.WithAgent(req.Context(), certs.Agent{ClientID: e.clientID, MachineID: e.machineID, Serial: ca.SerialHex(e.cert.SerialNumber)}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Body.String())
		}
	}
}
