package lambdaproxy

import (
	"context"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// QueueMessage is one SQS message of a batch, without AWS types.
type QueueMessage struct {
	ID   string // SQS message id: what a partial batch failure names
	Body string
	// ReceiveCount is how many times SQS has delivered it (1 the first time).
	ReceiveCount int
}

// SQSHandler adapts a batch consumer to SQS event-source invocations with partial batch
// failures (ReportBatchItemFailures on the event source mapping): consume returns the ids
// of the messages to deliver again; every other message of the batch is deleted. The
// invocation itself never fails, so one bad message cannot make SQS redeliver its
// neighbours.
func SQSHandler(consume func(context.Context, []QueueMessage) (failed []string)) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		msgs := make([]QueueMessage, len(ev.Records))
		for i, r := range ev.Records {
			n, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
			msgs[i] = QueueMessage{ID: r.MessageId, Body: r.Body, ReceiveCount: n}
		}
		var resp events.SQSEventResponse
		for _, id := range consume(ctx, msgs) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		return resp, nil
	}
}
