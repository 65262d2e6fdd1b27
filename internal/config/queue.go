package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Ingest modes (INGEST_MODE) and agents endpoints (AGENTS_ENDPOINT).
const (
	IngestDirect       = "direct"
	IngestQueue        = "queue"
	EndpointAPIGateway = "apigateway"
	EndpointALB        = "alb"
)

// HeartbeatIngest is how the heartbeat function hands heartbeats on: written at once ("direct"),
// or queued to QueueURL for the writer function ("queue").
type HeartbeatIngest struct {
	Mode     string
	QueueURL string
}

// IngestMode reads INGEST_MODE (direct, the default, or queue) and, for queue,
// HEARTBEAT_QUEUE_URL (an https:// SQS queue URL; http:// only on a loopback host).
func IngestMode(getenv func(string) string) (HeartbeatIngest, error) {
	in := HeartbeatIngest{Mode: strings.TrimSpace(getenv("INGEST_MODE")), QueueURL: strings.TrimSpace(getenv("HEARTBEAT_QUEUE_URL"))}
	switch in.Mode {
	case "", IngestDirect:
		in.Mode = IngestDirect
		if in.QueueURL != "" {
			return HeartbeatIngest{}, fmt.Errorf("HEARTBEAT_QUEUE_URL is set but INGEST_MODE is %q: set INGEST_MODE=queue or remove it", in.Mode)
		}
		return in, nil
	case IngestQueue:
		u, err := url.Parse(in.QueueURL)
		if in.QueueURL == "" || err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
			return HeartbeatIngest{}, fmt.Errorf("HEARTBEAT_QUEUE_URL must be the queue's https:// URL with INGEST_MODE=queue, not %q", in.QueueURL)
		}
		return in, nil
	}
	return HeartbeatIngest{}, fmt.Errorf("INGEST_MODE must be %q or %q, not %q", IngestDirect, IngestQueue, in.Mode)
}

// AgentsEndpoint reads AGENTS_ENDPOINT: what terminates the agents' mutual TLS in front of
// the function, "apigateway" (the default) or "alb", which decides where the verified
// client certificate is read from.
func AgentsEndpoint(getenv func(string) string) (string, error) {
	switch v := strings.TrimSpace(getenv("AGENTS_ENDPOINT")); v {
	case "", EndpointAPIGateway:
		return EndpointAPIGateway, nil
	case EndpointALB:
		return EndpointALB, nil
	default:
		return "", fmt.Errorf("AGENTS_ENDPOINT must be %q or %q, not %q", EndpointAPIGateway, EndpointALB, v)
	}
}
