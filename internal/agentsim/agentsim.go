// Package agentsim simulates a fleet of agents (like Fleet's osquery-perf): it enrols
// machines through the real bootstrap with an install token and CSRs, then sends
// heartbeats over mutual TLS, at the dynamic interval or at a fixed total rate.
package agentsim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/gzip"

	"github.com/optralis/optralis/internal/enrol"
)

// Options configure a run.
type Options struct {
	APIURL   string        // the public API (bootstrap), e.g. http://127.0.0.1:8080
	AgentURL string        // the mutual-TLS agent endpoint, e.g. https://127.0.0.1:8443
	Machines int           // how many machines to enrol
	Rate     float64       // total heartbeats per second; 0: each machine at its dynamic interval
	Duration time.Duration // how long to send heartbeats
	Workers  int           // concurrent senders in fixed-rate mode
	Gzip     bool          // gzip the heartbeat bodies
	Progress io.Writer     // progress lines every few seconds; nil: none
	// Attempts bounds the tries of one heartbeat (429, 5xx and transport errors are
	// retried with backoff); 0: 5.
	Attempts int
}

// Machine is one enrolled simulated agent.
type Machine struct {
	ID, ClientID, Hostname string
	client                 *http.Client
	state                  *state
}

// Stats are a run's counts and latencies.
type Stats struct {
	mu        sync.Mutex
	Sent      int64
	Acked     int64
	Retries   int64
	Dropped   int64            // fixed rate: heartbeats not sent, every worker (or the machine) busy
	GaveUp    int64            // heartbeats abandoned after o.Attempts failed tries
	Errors    map[string]int64 // by HTTP status or "transport"
	latencies []time.Duration
	// gzipWriters reuses compressors across heartbeats (a new one allocates ~1 MB).
	gzipWriters sync.Pool
}

func (s *Stats) record(d time.Duration, code string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sent++
	if ok {
		s.Acked++
		s.latencies = append(s.latencies, d)
		return
	}
	if s.Errors == nil {
		s.Errors = map[string]int64{}
	}
	s.Errors[code]++
}

// Summary is the printable result of a run.
type Summary struct {
	Sent, Acked, Retries int64
	Dropped              int64 // offered at a fixed rate but not sent: the senders were saturated
	GaveUp               int64 // abandoned after every attempt failed
	Errors               map[string]int64
	P50, P90, P99, Max   time.Duration
	Elapsed              time.Duration
	Rate                 float64 // acknowledged heartbeats per second
}

// Summary computes percentiles over the acknowledged heartbeats.
func (s *Stats) Summary(elapsed time.Duration) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := append([]time.Duration(nil), s.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	pct := func(p float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(p*float64(len(l))))]
	}
	out := Summary{Sent: s.Sent, Acked: s.Acked, Retries: s.Retries, Dropped: s.Dropped, GaveUp: s.GaveUp, Errors: map[string]int64{}, P50: pct(0.50), P90: pct(0.90),
		P99: pct(0.99), Elapsed: elapsed}
	if len(l) > 0 {
		out.Max = l[len(l)-1]
	}
	for k, v := range s.Errors {
		out.Errors[k] = v
	}
	if elapsed > 0 {
		out.Rate = float64(s.Acked) / elapsed.Seconds()
	}
	return out
}

func (s Summary) String() string {
	var errs []string
	for k, v := range s.Errors {
		errs = append(errs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(errs)
	return fmt.Sprintf("sent %d, acked %d (%.1f/s over %s), retries %d, dropped %d, errors {%s}, latency p50 %s p90 %s p99 %s max %s",
		s.Sent, s.Acked, s.Rate, s.Elapsed.Round(time.Millisecond), s.Retries, s.Dropped, strings.Join(errs, " "),
		s.P50.Round(10*time.Microsecond), s.P90.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Max.Round(time.Millisecond))
}

// CreateToken makes an install token for clientID directly in the database (the
// dashboard's login flow is too heavy for a load tool): the enrol package's CreateToken,
// the same code POST /api/install-tokens runs. When clientID is "", a client with an
// Enterprise licence and room for machines is created first.
func CreateToken(ctx context.Context, pool *pgxpool.Pool, clientID string, machines int) (client, token string, err error) {
	// A load tool against a live stack: the wall clock is the application's clock here.
	now := time.Now().UTC()
	if clientID == "" {
		if err := pool.QueryRow(ctx, `
			INSERT INTO clients (name, license_tier, max_machines, created_at, updated_at)
			VALUES ($1, 'Enterprise', $2, $3, $3) RETURNING id`,
			"agentsim "+now.Format(time.RFC3339), machines, now).Scan(&clientID); err != nil {
			return "", "", fmt.Errorf("agentsim: client: %w", err)
		}
	}
	_, token, err = enrol.CreateToken(ctx, pool, enrol.CreateRequest{ClientID: clientID, Name: "agentsim", TTL: enrol.MaxTTL,
		MaxUsage: machines}, now)
	return clientID, token, err
}

// Enrol enrols n machines through POST /api/public/bootstrap: each makes its own P-256 key
// and CSR, and gets a certificate for the agent endpoint. 429 and 5xx are retried.
func Enrol(ctx context.Context, o Options, token string, n int) ([]*Machine, error) {
	machines := make([]*Machine, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := enrolOne(ctx, hc, o, token, i)
			if err != nil {
				errs <- err
				return
			}
			machines[i] = m
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return machines, nil
}

func enrolOne(ctx context.Context, hc *http.Client, o Options, token string, i int) (*Machine, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("sim-%05d", i)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}, key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(enrol.Request{Token: token, Arch: "amd64", Hostname: host, OS: "linux", OSVersion: "Debian 12",
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))})
	var res enrol.Result
	err = retry(ctx, 8, func() (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(o.APIURL, "/")+"/api/public/bootstrap", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return resp.StatusCode, fmt.Errorf("bootstrap %s: %d %s", host, resp.StatusCode, bytes.TrimSpace(b))
		}
		return resp.StatusCode, json.Unmarshal(b, &res)
	}, nil)
	if err != nil {
		return nil, err
	}
	certBlock, _ := pem.Decode([]byte(res.Certificate))
	if certBlock == nil {
		return nil, fmt.Errorf("bootstrap %s: no certificate in the answer", host)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(res.CAChain)) {
		return nil, fmt.Errorf("bootstrap %s: no CA in the answer", host)
	}
	tlsCert := tls.Certificate{Certificate: [][]byte{certBlock.Bytes}, PrivateKey: key}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{tlsCert}, RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 5 * time.Minute, ForceAttemptHTTP2: false}
	return &Machine{ID: res.MachineID, ClientID: res.ClientID, Hostname: host,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, state: newState(i)}, nil
}

// retry runs f with exponential backoff (100 ms doubling, jittered, at most 5 s) while it
// fails with 429, 5xx or a transport error.
func retry(ctx context.Context, attempts int, f func() (int, error), retries *atomic.Int64) error {
	wait := 100 * time.Millisecond
	var err error
	for a := 0; a < attempts; a++ {
		var code int
		code, err = f()
		if err == nil || !(code == 0 || code == http.StatusTooManyRequests || code >= 500) {
			return err
		}
		if retries != nil {
			retries.Add(1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait/2 + time.Duration(mrand.Int64N(int64(wait)))):
		}
		wait = min(2*wait, 5*time.Second)
	}
	return err
}

type answer struct {
	NextIntervalSeconds int  `json:"next_interval_seconds"`
	ConfigChanged       bool `json:"config_changed"`
}

// Beat sends one heartbeat (retrying 429/5xx) and returns the agent's next interval.
func (m *Machine) Beat(ctx context.Context, o Options, st *Stats) int {
	body, _ := json.Marshal(m.state.next(time.Now().UTC()))
	if o.Gzip {
		var buf bytes.Buffer
		zw, _ := st.gzipWriters.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		} else {
			zw.Reset(&buf)
		}
		_, _ = zw.Write(body)
		_ = zw.Close()
		st.gzipWriters.Put(zw)
		body = buf.Bytes()
	}
	var ans answer
	var retries atomic.Int64
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	err := retry(ctx, attempts, func() (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(o.AgentURL, "/")+"/agent/heartbeat", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if o.Gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		start := time.Now()
		resp, err := m.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				st.record(0, "transport", false)
			}
			return 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			st.record(d, strconv.Itoa(resp.StatusCode), false)
			return resp.StatusCode, fmt.Errorf("heartbeat: %d %s", resp.StatusCode, b)
		}
		st.record(d, "", true)
		return 200, json.Unmarshal(b, &ans)
	}, &retries)
	st.mu.Lock()
	st.Retries += retries.Load()
	if err != nil {
		st.GaveUp++
	}
	st.mu.Unlock()
	if err != nil || ans.NextIntervalSeconds <= 0 {
		return 60
	}
	return ans.NextIntervalSeconds
}

// Run sends heartbeats from the machines for o.Duration and returns the statistics.
func Run(parent context.Context, o Options, machines []*Machine) Summary {
	ctx, cancel := context.WithTimeout(parent, o.Duration)
	defer cancel()
	// A heartbeat under way when the time is up still completes, so what the server
	// acknowledged is always counted (the benchmark compares acks with rows).
	reqCtx := context.WithoutCancel(parent)
	st := &Stats{}
	start := time.Now()
	done := make(chan struct{})
	if o.Progress != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					fmt.Fprintf(o.Progress, "agentsim: %s\n", st.Summary(time.Since(start)))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	if o.Rate <= 0 {
		// Every machine at its dynamic interval, starting spread over the first interval.
		for _, m := range machines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := time.Duration(mrand.Int64N(int64(60 * time.Second)))
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(next):
					}
					next = time.Duration(m.Beat(reqCtx, o, st)) * time.Second
				}
			}()
		}
	} else {
		// A fixed total rate: a ticker hands heartbeats to workers, machines in turn. A
		// machine is never sent twice at once (each owns its recorded_at sequence).
		workers := o.Workers
		if workers <= 0 {
			workers = 64
		}
		jobs := make(chan *Machine, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range jobs {
					if !m.state.busy.CompareAndSwap(false, true) {
						st.mu.Lock()
						st.Dropped++
						st.mu.Unlock()
						continue
					}
					m.Beat(reqCtx, o, st)
					m.state.busy.Store(false)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / o.Rate)
		t := time.NewTicker(max(interval, 50*time.Microsecond))
		i := 0
		sent := 0
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				// Catch up to the schedule when ticks were dropped (high rates).
				due := int(time.Since(start).Seconds()*o.Rate) - sent
				for ; due > 0; due-- {
					select {
					case jobs <- machines[i%len(machines)]:
						i, sent = i+1, sent+1
					case <-ctx.Done():
						break loop
					default: // every worker busy: the offered rate exceeds capacity
						sent++
						st.mu.Lock()
						st.Dropped++
						st.mu.Unlock()
					}
				}
			}
		}
		t.Stop()
		close(jobs)
	}
	wg.Wait()
	close(done)
	return st.Summary(time.Since(start))
}
