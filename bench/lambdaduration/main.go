// Command lambdaduration measures the heartbeat function's warm invoke duration per ingest
// mode (direct, queue) and the writer's per SQS batch, under the Lambda Runtime Interface
// Emulator (the emulator's own "INVOKE RTDONE ... duration" per invocation), against the
// PostgreSQL and Redis of TEST_DATABASE_URL / TEST_REDIS_URL and, for the queue mode, a
// local SQS server (internal/localsqs). It prints medians for bench/ingest-queue.md:
//
//	go run ./internal/testenv/withservices go run ./bench/lambdaduration
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/localsqs"
	"github.com/optralis/optralis/internal/migrate"
)

const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	rieVersion = "v0.0.0-20261030222936-bef5c4ba774d" // as bench/coldstart
	machines   = 50
	perMachine = 4 // under the per-machine limit of 10 a minute
)

var reDone = regexp.MustCompile(`INVOKE RTDONE\(status: ([^,]+), produced bytes: \d+, duration: ([0-9.]+)ms\)`)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "lambdaduration:", err)
		os.Exit(1)
	}
}

type agent struct{ client, machine, certPEM string }

// sqsEvent is the SQS event's JSON as Lambda delivers it (AWS event types stay in
// internal/lambdaproxy).
type sqsEvent struct {
	Records []sqsRecord `json:"Records"`
}

type sqsRecord struct {
	MessageID   string            `json:"messageId"`
	Body        string            `json:"body"`
	EventSource string            `json:"eventSource"`
	Attributes  map[string]string `json:"attributes"`
}

func run(ctx context.Context) error {
	work, err := os.MkdirTemp("", "lambdaduration")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	admin, redisURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if admin == "" {
		return fmt.Errorf("TEST_DATABASE_URL is not set (run under go run ./internal/testenv/withservices)")
	}
	dbURL, drop, err := database(ctx, admin)
	if err != nil {
		return err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrate.Run(ctx, pool, "postgres", slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	agents, err := enrol(ctx, pool, work)
	if err != nil {
		return err
	}
	rie, err := build(ctx, work)
	if err != nil {
		return err
	}
	sqs := localsqs.Start()
	defer sqs.Close()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TZ=UTC", "LOG_LEVEL=info",
		"AWS_REGION=eu-west-3", "AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=local", "AWS_ENDPOINT_URL=" + sqs.URL,
		"DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL}
	sample, err := os.ReadFile("events/httpapi_heartbeat_mtls.json")
	if err != nil {
		return err
	}
	load := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:3], " / ")
	}
	fmt.Printf("load average at start: %s\n", load())
	minute := 0
	for _, mode := range []string{"direct", "queue"} {
		env := append(base, "INGEST_MODE="+mode)
		if mode == "queue" {
			env = append(env, "HEARTBEAT_QUEUE_URL=https://sqs.eu-west-3.amazonaws.com/111111111111/heartbeats")
		}
		var evs [][]byte
		for r := 0; r < perMachine; r++ {
			minute++
			for _, a := range agents {
				evs = append(evs, heartbeatEvent(sample, a, time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)))
			}
		}
		ds, err := invokeAll(ctx, rie, filepath.Join(work, "heartbeat"), env, evs)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		fmt.Printf("heartbeat %s: %d warm invokes, duration median %.2f ms, p90 %.2f ms\n", mode, len(ds), pct(ds, 50), pct(ds, 90))
	}
	msgs := sqs.Messages()
	for _, n := range []int{10, 50} {
		var evs [][]byte
		for i := 0; i+n <= len(msgs) && len(evs) < 4; i += n {
			var ev sqsEvent
			for j, m := range msgs[i : i+n] {
				ev.Records = append(ev.Records, sqsRecord{MessageID: fmt.Sprintf("m%d", i+j), Body: m.Body, EventSource: "aws:sqs",
					Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
			}
			b, _ := json.Marshal(ev)
			evs = append(evs, b)
		}
		ds, err := invokeAll(ctx, rie, filepath.Join(work, "heartbeatwriter"), base, evs)
		if err != nil {
			return fmt.Errorf("writer: %w", err)
		}
		fmt.Printf("writer batch %d: %d invokes (first included), duration median %.2f ms\n", n, len(ds), pct(ds, 50))
	}
	fmt.Printf("load average at end: %s\n", load())
	return nil
}

// invokeAll starts the emulator on bin, invokes every event (the first is the cold one,
// left out of the result unless it is the only one) and returns the emulator's durations.
func invokeAll(ctx context.Context, rie, bin string, env []string, evs [][]byte) ([]float64, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var log syncBuf
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://" + addr + "/2015-03-31/functions/function/invocations"
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, ev := range evs {
		resp, err := http.Post(url, "application/json", bytes.NewReader(ev))
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte(`"statusCode":`)) && !bytes.Contains(body, []byte(`"statusCode":200`)) || bytes.Contains(body, []byte("itemIdentifier")) {
			return nil, fmt.Errorf("invocation %d answered %s", i, trunc(body))
		}
	}
	time.Sleep(200 * time.Millisecond)
	var ds []float64
	for i, m := range reDone.FindAllStringSubmatch(log.String(), -1) {
		if i == 0 && len(evs) > 1 {
			continue
		}
		d, _ := strconv.ParseFloat(m[2], 64)
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("no RTDONE in the emulator's log: %s", trunc([]byte(log.String())))
	}
	return ds, nil
}

func heartbeatEvent(sample []byte, a agent, at time.Time) []byte {
	var ev map[string]any
	_ = json.Unmarshal(sample, &ev)
	ev["requestContext"].(map[string]any)["authentication"].(map[string]any)["clientCert"].(map[string]any)["clientCertPem"] = a.certPEM
	ev["body"] = strings.Replace(ev["body"].(string), "2026-01-01T12:00:00Z", at.Format(time.RFC3339), 1)
	b, _ := json.Marshal(ev)
	return b
}

func enrol(ctx context.Context, pool *pgxpool.Pool, work string) ([]agent, error) {
	now := time.Now()
	authority, err := ca.LoadOrCreateLocal(filepath.Join(work, "ca"), now.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	var client string
	if err := pool.QueryRow(ctx, `INSERT INTO clients (name, license_tier, max_machines) VALUES ('Bench', 'Enterprise', 1000) RETURNING id`).Scan(&client); err != nil {
		return nil, err
	}
	out := make([]agent, machines)
	for i := range out {
		var m string
		if err := pool.QueryRow(ctx, `INSERT INTO machines (client_id, hostname, os, arch) VALUES ($1, $2, 'linux', 'amd64') RETURNING id`,
			client, fmt.Sprintf("bench-%d", i)).Scan(&m); err != nil {
			return nil, err
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := certs.Issue(ctx, pool, authority, certs.IssueRequest{ClientID: client, MachineID: m, PublicKey: key.Public(), Reason: "bench"}, now)
		if err != nil {
			return nil, err
		}
		out[i] = agent{client, m, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw}))}
	}
	return out, nil
}

// build: the emulator and the two bootstraps (amd64, the host's; same flags as make build).
func build(ctx context.Context, work string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "install", rieModule+"/cmd/aws-lambda-rie@"+rieVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+work, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("aws-lambda-rie: %v\n%s", err, out)
	}
	for _, fn := range []string{"heartbeat", "heartbeatwriter"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", filepath.Join(work, fn), "./functions/"+fn)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", fn, err, out)
		}
	}
	return filepath.Join(work, "aws-lambda-rie"), nil
}

func database(ctx context.Context, admin string) (string, func(), error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "lambdaduration_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(ctx)
	if err != nil {
		return "", nil, err
	}
	drop := func() {
		if c, err := pgx.Connect(context.Background(), admin); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	u, err := neturl.Parse(admin)
	if err != nil {
		return "", drop, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func pct(xs []float64, p int) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[(len(s)-1)*p/100]
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func trunc(b []byte) string {
	if len(b) > 400 {
		b = b[:400]
	}
	return string(b)
}
