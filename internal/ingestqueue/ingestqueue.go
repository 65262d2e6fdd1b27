// Package ingestqueue puts validated heartbeats on the SQS queue of the "queue" ingest mode
// (INGEST_MODE=queue): the heartbeat function acknowledges an agent only after SendMessage
// succeeded, and the writer function consumes the queue in batches.
package ingestqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/optralis/optralis/internal/apperr"
)

// Sender enqueues one message body.
type Sender interface {
	Send(ctx context.Context, body []byte) error
}

// SendTimeout bounds one SendMessage (the SDK retries inside it): an agent waits at most
// this long before 503 + Retry-After, well within the function's 10 s timeout.
const SendTimeout = 3 * time.Second

// RetryAfterSeconds is what an agent is told to wait when the queue refused a heartbeat.
const RetryAfterSeconds = 30

// ErrUnavailable answers a heartbeat the queue did not take: 503 with Retry-After, so the
// agent keeps it and sends it again later; nothing was acknowledged.
var ErrUnavailable = func() *apperr.Error {
	e := apperr.New(apperr.Unavailable, "the heartbeat could not be queued; retry later")
	e.RetryAfter = RetryAfterSeconds
	return e
}()

// SQS sends to one queue URL.
type SQS struct {
	Client   *sqs.Client
	QueueURL string
}

// New returns an SQS sender from an SDK configuration (awsenv.Config on Lambda; its
// BaseEndpoint, AWS_ENDPOINT_URL, points tests and benchmarks at a local server).
func New(cfg aws.Config, queueURL string) SQS {
	return SQS{Client: sqs.NewFromConfig(cfg), QueueURL: queueURL}
}

// Send returns only once SQS stored the message (SendMessage succeeded): SQS stores it
// redundantly before answering. Any failure is ErrUnavailable, wrapping the cause for the
// log.
func (s SQS) Send(ctx context.Context, body []byte) error {
	cctx, cancel := context.WithTimeout(ctx, SendTimeout)
	defer cancel()
	_, err := s.Client.SendMessage(cctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String(string(body))})
	if err != nil {
		return unavailable{cause: fmt.Errorf("ingestqueue: SendMessage: %w", err)}
	}
	return nil
}

// unavailable is ErrUnavailable for the agent and its cause for the log.
type unavailable struct{ cause error }

func (u unavailable) Error() string { return u.cause.Error() }
func (u unavailable) Unwrap() []error {
	return []error{ErrUnavailable, u.cause}
}

// IsUnavailable reports whether err is a failed enqueue.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
