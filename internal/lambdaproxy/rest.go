package lambdaproxy

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// RESTHandler adapts h to API Gateway REST API proxy events (payload format 1.0).
// The client certificate comes only from RequestContext.Identity.ClientCert, which
// API Gateway fills in after verifying mutual TLS on the custom domain.
func RESTHandler(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	adapter := httpadapter.New(applyGateway(h))
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		ev.Headers = withoutReserved(ev.Headers)
		ev.MultiValueHeaders = withoutReserved(ev.MultiValueHeaders)

		rc := ev.RequestContext
		gw := gatewayRequest{sourceIP: rc.Identity.SourceIP, requestID: rc.RequestID}
		if cc := rc.Identity.ClientCert; cc != nil {
			gw.clientCert = parseClientCert(ctx, cc.ClientCertPem, rc.RequestID)
		}
		return adapter.ProxyWithContext(withGatewayRequest(ctx, gw), ev)
	}
}
