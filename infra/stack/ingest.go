package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// ingestQueues are the heartbeat queue of "ingest": "queue" and its dead-letter queue.
type ingestQueues struct {
	queue, dlq awssqs.Queue
}

// newIngestQueues: both encrypted with SQS-managed keys and TLS-only. A heartbeat the
// writer failed maxReceiveCount times moves to the DLQ (alarmed) and is kept 14 days for
// a redrive. The visibility timeout is six times the writer's timeout (AWS's advice for a
// Lambda event source, so a retried batch is not redelivered while still running).
func (b *builder) newIngestQueues() *ingestQueues {
	writer, _ := FunctionNamed(writerFunction)
	dlq := awssqs.NewQueue(b.s, jsii.String("HeartbeatDeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	q := awssqs.NewQueue(b.s, jsii.String("HeartbeatQueue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(6 * writer.Timeout.Seconds())),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(float64(b.cfg.Queue.MaxReceiveCount))},
	})
	awscdk.NewCfnOutput(b.s, jsii.String("HeartbeatQueueUrl"), &awscdk.CfnOutputProps{Value: q.QueueUrl()})
	return &ingestQueues{queue: q, dlq: dlq}
}

// writerFunction is the queue consumer of the function table.
const writerFunction = "heartbeatwriter"

// consumers wire the queue consumers to the heartbeat queue: batches of batchSize within
// maxBatchingWindowSeconds, and partial batch failures (the writer returns the message ids
// that failed transiently; the others are deleted).
func (b *builder) consumers() {
	for _, f := range b.fns {
		if f.Kind != QueueConsumer || !b.deployed(f) {
			continue
		}
		props := &awslambdaeventsources.SqsEventSourceProps{
			BatchSize:               jsii.Number(float64(b.cfg.Queue.BatchSize)),
			ReportBatchItemFailures: jsii.Bool(true),
		}
		if w := b.cfg.Queue.MaxBatchingWindowSeconds; w > 0 {
			props.MaxBatchingWindow = awscdk.Duration_Seconds(jsii.Number(float64(w)))
		}
		b.built[f.Name].AddEventSource(awslambdaeventsources.NewSqsEventSource(b.ingest.queue, props))
	}
}
