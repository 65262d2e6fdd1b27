// Command costmodel prints the monthly AWS cost of the agents' ingest per machine for each
// deployment option (API Gateway or ALB in front; direct or queue ingest) at 1,000, 10,000
// and 100,000 machines, from the list prices and the measured Lambda durations below (one
// place for both; infra/README.md and bench/ingest-queue.md quote its output).
//
//	go run ./bench/costmodel
package main

import (
	"fmt"
	"io"
	"math"
	"os"
)

// Prices: us-east-1 list prices as of 2026-11 (AWS pricing pages; eu-west-3 is a few
// percent higher). Free tiers ignored.
const (
	apiGatewayPerM      = 1.00         // HTTP API, first 300 M requests/month
	apiGatewayPerMAbove = 0.90         // beyond 300 M
	albHour             = 0.0225       // per ALB-hour
	albLCUHour          = 0.008        // per LCU-hour
	lambdaPerM          = 0.20         // requests
	lambdaGBSecond      = 0.0000133334 // arm64 duration, first 7.5 B GB-s
	sqsPerM             = 0.40         // standard queue, per 64 KB request
	logsIngestPerGB     = 0.50         // CloudWatch Logs, standard class
	logsStoragePerGBMo  = 0.03         // 30-day retention: one month stored at steady state
	transferOutPerGB    = 0.09         // responses to agents
	hoursPerMonth       = 730.0
	secondsPerMonth     = 30 * 24 * 3600.0
)

// Traffic and the measured figures (bench/ingest-queue.md: medians under the Runtime
// Interface Emulator, go run ./bench/lambdaduration, through the real
// Lambda JSON path on real PostgreSQL/Redis and a local SQS server, on this 2-core
// machine under load; billed per started millisecond).
const (
	heartbeatInterval = 60.0 // seconds (the answer's normal interval; 30 s under alert)
	collectorsPerHour = 1.0  // GET /agent/config/collectors per machine
	heartbeatMemoryGB = 0.25 // 256 MB
	writerMemoryGB    = 0.5  // 512 MB
	directMS          = 5.0  // heartbeat function, direct write (median)
	queueMS           = 3.2  // heartbeat function, check + SendMessage (median)
	collectorsMS      = 3.0  // GET collectors: one statement (as queue mode's check)
	writerBaseMS      = 3.5  // writer per batch: base + per item (fit of batches of 10 and 50)
	writerPerItemMS   = 0.40
	batchSize         = 100.0    // queue.batchSize
	batchWindowS      = 1.0      // queue.maxBatchingWindowSeconds
	idlePollRequests  = 648000.0 // Lambda's 5 SQS pollers long-polling (20 s) all month
	accessLogBytes    = 250.0    // one JSON access-log line per request (START/END/REPORT dropped)
	responseBytes     = 200.0
	requestBytes      = 4096.0 // heartbeat body and headers through the ALB
	fixedMonthly      = 47.0   // NAT, WAF, secrets, KMS, alarms (infra/README.md)
)

// Option is one way of deploying the agents' ingest.
type Option struct {
	Name  string
	ALB   bool
	Queue bool
}

// Options are the four combinations.
var Options = []Option{
	{"API Gateway HTTP API, direct", false, false},
	{"API Gateway HTTP API, queue", false, true},
	{"ALB (mTLS), direct", true, false},
	{"ALB (mTLS), queue", true, true},
}

// Cost is one option's monthly bill for a fleet, by item, in dollars.
type Cost struct {
	Front, Lambda, SQS, Logs, Transfer float64
}

// Variable is the total that grows with the fleet (the ALB's hours included).
func (c Cost) Variable() float64 { return c.Front + c.Lambda + c.SQS + c.Logs + c.Transfer }

func billedMS(ms float64) float64 { return math.Ceil(ms) }

// Monthly is the bill of option o for machines machines.
func Monthly(o Option, machines float64) Cost {
	heartbeats := machines * secondsPerMonth / heartbeatInterval
	collectors := machines * collectorsPerHour * secondsPerMonth / 3600
	requests := heartbeats + collectors
	var c Cost
	if o.ALB {
		// LCU: the largest of new connections (25/s; an agent opens one per heartbeat, mTLS
		// without session resumption), processed bytes (0.4 GB/h for Lambda targets) and
		// rule evaluations (free below 10 rules); at least one LCU is billed while running.
		perSecond := requests / secondsPerMonth
		gbPerHour := requests * (requestBytes + responseBytes) / 1e9 / hoursPerMonth
		lcu := math.Max(1, math.Max(perSecond/25, gbPerHour/0.4))
		c.Front = albHour*hoursPerMonth + lcu*albLCUHour*hoursPerMonth
	} else {
		m := requests / 1e6
		c.Front = math.Min(m, 300)*apiGatewayPerM + math.Max(0, m-300)*apiGatewayPerMAbove
	}
	hbMS := directMS
	if o.Queue {
		hbMS = queueMS
	}
	gbs := heartbeats*heartbeatMemoryGB*billedMS(hbMS)/1000 + collectors*heartbeatMemoryGB*billedMS(collectorsMS)/1000
	invocations := requests
	if o.Queue {
		// Batches fill to batchSize or to what arrives within the window, whichever is less.
		perBatch := math.Max(1, math.Min(batchSize, heartbeats/secondsPerMonth*batchWindowS))
		batches := heartbeats / perBatch
		invocations += batches
		gbs += batches * writerMemoryGB * billedMS(writerBaseMS+writerPerItemMS*perBatch) / 1000
		// SendMessage per heartbeat; ReceiveMessage and DeleteMessageBatch per batch; the
		// pollers' empty long polls.
		c.SQS = (heartbeats + 2*batches + idlePollRequests) / 1e6 * sqsPerM
	}
	c.Lambda = invocations/1e6*lambdaPerM + gbs*lambdaGBSecond
	logGB := requests * accessLogBytes / 1e9
	c.Logs = logGB * (logsIngestPerGB + logsStoragePerGBMo)
	c.Transfer = requests * responseBytes / 1e9 * transferOutPerGB
	return c
}

// Fleets are the sizes reported.
var Fleets = []float64{1000, 10000, 100000}

func main() { print(os.Stdout) }

func print(w io.Writer) {
	fmt.Fprintf(w, "Heartbeat every %.0f s + %.0f collector fetch/h per machine; measured Lambda: heartbeat %.1f ms direct, %.1f ms queue; writer %.1f + %.2f ms/item.\n\n",
		heartbeatInterval, collectorsPerHour, directMS, queueMS, writerBaseMS, writerPerItemMS)
	fmt.Fprintln(w, "| option | machines | front | Lambda | SQS | logs | transfer | variable $/month | $/machine/month (variable) | $/machine/month (with $47 fixed) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, o := range Options {
		for _, n := range Fleets {
			c := Monthly(o, n)
			fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.4f | %.4f |\n", o.Name, thousands(n),
				c.Front, c.Lambda, c.SQS, c.Logs, c.Transfer, c.Variable(), c.Variable()/n, (c.Variable()+fixedMonthly)/n)
		}
	}
}

func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	out := ""
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out += ","
		}
		out += string(r)
	}
	return out
}
