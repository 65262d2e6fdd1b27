package lambdaproxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// ALB's mutual TLS headers (verify mode). The leaf is URL-encoded PEM with +, = and / left
// as they are. Every X-Amzn-Mtls-* header is removed before the handler runs: handlers
// get the certificate only through identity.
const (
	albLeafHeader   = "x-amzn-mtls-clientcert-leaf"
	albMTLSPrefix   = "x-amzn-mtls-"
	albTraceHeader  = "x-amzn-trace-id"
	albForwardedFor = "x-forwarded-for"
)

// ALBHandler adapts h to Application Load Balancer target-group events, for the agents
// endpoint "alb" (AGENTS_ENDPOINT=alb; never used behind API Gateway). The load balancer's
// HTTPS listener verified the client certificate against the trust store (mutual TLS,
// verify mode: a connection without a valid certificate never reaches a target) and put
// the leaf in X-Amzn-Mtls-Clientcert-Leaf, overwriting whatever the client sent under that
// name. The target group has multi-value headers on, so a request in which that header
// appears more than once (which the ALB should never produce) yields no identity rather
// than a guess. The client address is the last X-Forwarded-For entry, the one the ALB
// appended.
func ALBHandler(h http.Handler) func(context.Context, events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
	adapter := httpadapter.NewALB(applyGateway(h))
	return func(ctx context.Context, ev events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
		headers := map[string][]string{}
		for k, vs := range ev.MultiValueHeaders {
			headers[strings.ToLower(k)] = append(headers[strings.ToLower(k)], vs...)
		}
		if ev.MultiValueHeaders == nil {
			for k, v := range ev.Headers {
				headers[strings.ToLower(k)] = append(headers[strings.ToLower(k)], v)
			}
		}
		gw := gatewayRequest{}
		if vs := headers[albTraceHeader]; len(vs) == 1 {
			gw.requestID = vs[0]
		}
		if vs := headers[albForwardedFor]; len(vs) > 0 {
			hops := strings.Split(vs[len(vs)-1], ",")
			gw.sourceIP = strings.TrimSpace(hops[len(hops)-1])
		}
		switch leaf := headers[albLeafHeader]; len(leaf) {
		case 0:
		case 1:
			pemText, err := url.PathUnescape(leaf[0])
			if err != nil {
				slog.WarnContext(ctx, "lambdaproxy: ignoring a client certificate header the ALB did not encode", "request_id", gw.requestID)
				break
			}
			gw.clientCert = parseClientCert(ctx, pemText, gw.requestID)
		default:
			slog.WarnContext(ctx, "lambdaproxy: ignoring a repeated client certificate header", "request_id", gw.requestID)
		}
		clean := map[string][]string{}
		for k, vs := range headers {
			if !strings.HasPrefix(k, albMTLSPrefix) && !strings.HasPrefix(k, reservedHeaderPrefix) {
				clean[k] = vs
			}
		}
		ev.MultiValueHeaders, ev.Headers = clean, nil
		if host := clean["host"]; len(host) > 0 {
			ev.Headers = map[string]string{"host": host[0]} // the library builds the URL from it
		}
		return adapter.ProxyWithContext(withGatewayRequest(ctx, gw), ev)
	}
}

// AgentsHandler is the Lambda handler of an agents-domain function behind endpoint
// (config.AgentsEndpoint): the ALB adapter for "alb", the HTTP API adapter otherwise. The
// client certificate is read from ALB headers only in the former.
func AgentsHandler(endpoint string, h http.Handler) any {
	if endpoint == "alb" {
		return ALBHandler(h)
	}
	return HTTPAPIHandler(h)
}
