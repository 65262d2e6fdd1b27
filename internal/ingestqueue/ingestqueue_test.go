package ingestqueue_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ingestqueue"
	"github.com/optralis/optralis/internal/localsqs"
)

func sender(srv *localsqs.Server) ingestqueue.SQS {
	cfg := aws.Config{Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 2,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	return ingestqueue.New(cfg, "https://sqs.eu-west-3.amazonaws.com/111111111111/heartbeats")
}

// The SDK's real SendMessage (JSON protocol, signed, MD5 of the body checked) reaches a
// local server; a refused send is ErrUnavailable (503 + Retry-After for the agent).
func TestSendThroughTheSDK(t *testing.T) {
	srv := localsqs.Start()
	defer srv.Close()
	s := sender(srv)
	ctx := context.Background()
	if err := s.Send(ctx, []byte(`{"machine_id":"m1"}`)); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].Body != `{"machine_id":"m1"}` || got[0].QueueURL != s.QueueURL {
		t.Fatalf("messages %+v", got)
	}

	srv.Fail(true)
	err := s.Send(ctx, []byte(`{"machine_id":"m2"}`))
	if !ingestqueue.IsUnavailable(err) {
		t.Fatalf("failed send: %v, want ErrUnavailable", err)
	}
	e, ok := apperr.As(err)
	if !ok || apperr.Status(e.Code) != http.StatusServiceUnavailable || e.RetryAfter != ingestqueue.RetryAfterSeconds {
		t.Fatalf("failed send answers %+v", e)
	}
	if len(srv.Messages()) != 1 {
		t.Fatalf("a failed send was stored: %+v", srv.Messages())
	}

	// A server that is gone: the same refusal, not a hang.
	srv.Fail(false)
	srv.Close()
	if err := s.Send(ctx, []byte(`{}`)); !errors.Is(err, ingestqueue.ErrUnavailable) {
		t.Fatalf("closed server: %v", err)
	}
}
