package lambdaproxy

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// HTTPAPIHandler adapts h to API Gateway HTTP API events (payload format 2.0).
// The client certificate comes only from RequestContext.Authentication.ClientCert,
// which API Gateway fills in after verifying mutual TLS on the custom domain.
func HTTPAPIHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	adapter := httpadapter.NewV2(applyGateway(h))
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		// Payload 2.0 has no multi-value headers: repeated headers arrive comma-joined.
		ev.Headers = withoutReserved(ev.Headers)

		rc := ev.RequestContext
		gw := gatewayRequest{
			sourceIP:   rc.HTTP.SourceIP,
			requestID:  rc.RequestID,
			clientCert: parseClientCert(ctx, rc.Authentication.ClientCert.ClientCertPem, rc.RequestID),
		}
		return adapter.ProxyWithContext(withGatewayRequest(ctx, gw), ev)
	}
}
