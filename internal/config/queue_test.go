package config

import (
	"strings"
	"testing"
)

func TestIngestMode(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		env  func(string) string
		want HeartbeatIngest
		err  string
	}{
		{env(), HeartbeatIngest{Mode: "direct"}, ""},
		{env("INGEST_MODE", "direct"), HeartbeatIngest{Mode: "direct"}, ""},
		{env("INGEST_MODE", "queue", "HEARTBEAT_QUEUE_URL", "https://sqs.eu-west-3.amazonaws.com/1/q"), HeartbeatIngest{Mode: "queue", QueueURL: "https://sqs.eu-west-3.amazonaws.com/1/q"}, ""},
		{env("INGEST_MODE", "queue", "HEARTBEAT_QUEUE_URL", "http://127.0.0.1:9324/1/q"), HeartbeatIngest{Mode: "queue", QueueURL: "http://127.0.0.1:9324/1/q"}, ""},
		{env("INGEST_MODE", "queue"), HeartbeatIngest{}, "HEARTBEAT_QUEUE_URL"},
		{env("INGEST_MODE", "queue", "HEARTBEAT_QUEUE_URL", "http://sqs.example.com/q"), HeartbeatIngest{}, "HEARTBEAT_QUEUE_URL"},
		{env("INGEST_MODE", "kafka"), HeartbeatIngest{}, "INGEST_MODE"},
		{env("HEARTBEAT_QUEUE_URL", "https://x/q"), HeartbeatIngest{}, "INGEST_MODE=queue"},
	} {
		got, err := IngestMode(c.env)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) || got != c.want {
			t.Errorf("%+v, %v; want %+v, error naming %q", got, err, c.want, c.err)
		}
	}
	for v, want := range map[string]string{"": "apigateway", "apigateway": "apigateway", "alb": "alb", "nlb": ""} {
		got, err := AgentsEndpoint(env("AGENTS_ENDPOINT", v))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("AGENTS_ENDPOINT=%q: %q, %v", v, got, err)
		}
	}
}
