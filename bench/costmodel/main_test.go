package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// One cell worked by hand: 10,000 machines behind the HTTP API, direct ingest.
// 439.2 M requests (432 M heartbeats + 7.2 M collector fetches):
// API Gateway 300 × $1 + 139.2 × $0.90 = 425.28; Lambda 439.2 × $0.20 = 87.84 plus
// (432 M × 0.25 GB × 5 ms + 7.2 M × 0.25 GB × 3 ms) = 545,400 GB-s × $0.0000133334 = 7.272;
// logs 439.2 M × 250 B = 109.8 GB × $0.53 = 58.194; transfer 87.84 GB × $0.09 = 7.9056.
func TestTenThousandMachinesAPIGatewayDirectByHand(t *testing.T) {
	c := Monthly(Option{Name: "x"}, 10000)
	for name, got := range map[string][2]float64{
		"front": {c.Front, 425.28}, "lambda": {c.Lambda, 87.84 + 545400*0.0000133334}, "logs": {c.Logs, 58.194},
		"transfer": {c.Transfer, 7.9056}, "sqs": {c.SQS, 0},
	} {
		if math.Abs(got[0]-got[1]) > 0.01 {
			t.Errorf("%s: %.4f, want %.4f", name, got[0], got[1])
		}
	}
}

// The shape of the answer: the queue adds SQS and costs more than direct behind the same
// front; the ALB costs less than API Gateway from 10,000 machines; the table has a row per
// option and fleet.
func TestOptionsCompare(t *testing.T) {
	for _, n := range Fleets {
		for _, alb := range []bool{false, true} {
			d, q := Monthly(Option{ALB: alb}, n), Monthly(Option{ALB: alb, Queue: true}, n)
			if q.SQS <= 0 || q.Variable() <= d.Variable() {
				t.Errorf("%v machines, alb %v: queue %.2f vs direct %.2f", n, alb, q.Variable(), d.Variable())
			}
		}
		if n >= 10000 && Monthly(Option{ALB: true}, n).Variable() >= Monthly(Option{}, n).Variable() {
			t.Errorf("%v machines: ALB not cheaper", n)
		}
	}
	var b bytes.Buffer
	print(&b)
	if rows := strings.Count(b.String(), "\n| "); rows != len(Options)*len(Fleets)+1 {
		t.Errorf("%d table rows:\n%s", rows, b.String())
	}
}
