package stack

import (
	"fmt"
	"math"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// Alarm thresholds.
const (
	// ServerErrorRate is the share of 5xx answers (over 5 minutes, with at least
	// minRequests requests) that raises the 5xx alarms.
	ServerErrorRate = 0.05
	minRequests     = 20
)

// alarms publish to one SNS topic (optionally mailed to AlarmEmail).
type alarms struct {
	s     awscdk.Stack
	topic awssns.Topic
}

func newAlarms(s awscdk.Stack, cfg Config) *alarms {
	topic := awssns.NewTopic(s, jsii.String("Alarms"), &awssns.TopicProps{DisplayName: jsii.String("Optralis alarms")})
	if cfg.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(cfg.AlarmEmail), nil))
	}
	awscdk.NewCfnOutput(s, jsii.String("AlarmTopicArn"), &awscdk.CfnOutputProps{Value: topic.TopicArn()})
	return &alarms{s: s, topic: topic}
}

func (a *alarms) add(id, description string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator) {
	alarm := awscloudwatch.NewAlarm(a.s, jsii.String(id), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(description),
		Metric:             metric,
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: op,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(a.topic))
}

// errorRate is errors/requests over 5 minutes, 0 while traffic is too thin to judge.
func errorRate(errors, requests awscloudwatch.IMetric, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf("IF(requests >= %d, errors / requests, 0)", minRequests)),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"errors":   errors,
			"requests": requests,
		},
		Label:  jsii.String(label),
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

func (a *alarms) restAPI(rest awsapigateway.RestApi) {
	sum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	a.add("Api5xxRate", "API domain: more than 5% of requests answered 5xx over 5 minutes",
		errorRate(rest.MetricServerError(sum), rest.MetricCount(sum), "API 5xx rate"), ServerErrorRate, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
}

// agentsAPI: the 5xx rate, and the fleet ceiling approaching: a minute's requests at
// AlarmRatio of the stage's rate limit, before the throttle answers 429s.
func (a *alarms) agentsAPI(agents awsapigatewayv2.HttpApi, cfg AgentsAPIConfig) {
	sum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	a.add("Agents5xxRate", "Agents domain: more than 5% of requests answered 5xx over 5 minutes",
		errorRate(agents.MetricServerError(sum), agents.MetricCount(sum), "Agents 5xx rate"), ServerErrorRate, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	rate, _ := cfg.Ceiling()
	perMinute := math.Floor(rate * 60 * cfg.AlarmRatio)
	a.add("AgentsNearCeiling", fmt.Sprintf("Agents domain: a minute's requests reached %.0f%% of the stage ceiling (%.0f req/s): raise agentsApi.expectedMachines before it throttles",
		cfg.AlarmRatio*100, rate),
		agents.MetricCount(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(1))}),
		perMinute, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
}

// alb: the share of 5xx answers of the agents' load balancer (its targets' and its own).
func (a *alarms) alb(lb awselasticloadbalancingv2.ApplicationLoadBalancer) {
	sum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	m := lb.Metrics()
	errs := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(t5xx, 0) + FILL(lb5xx, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"t5xx":  m.HttpCodeTarget(awselasticloadbalancingv2.HttpCodeTarget_TARGET_5XX_COUNT, sum),
			"lb5xx": m.HttpCodeElb(awselasticloadbalancingv2.HttpCodeElb_ELB_5XX_COUNT, sum),
		},
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
	a.add("Agents5xxRate", "Agents load balancer: more than 5% of requests answered 5xx over 5 minutes",
		errorRate(errs, m.RequestCount(sum), "Agents 5xx rate"), ServerErrorRate, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
}

// ingest: heartbeats acknowledged but not written. Any message in the heartbeat DLQ (a
// heartbeat the writer failed maxReceiveCount times), the oldest queued heartbeat older
// than AgeAlarmSeconds (the writer is down or behind: the database, probably), and writer
// errors (an invocation failing as a whole, not item by item).
func (a *alarms) ingest(q *ingestQueues, cfg QueueConfig) {
	max := &awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	a.add("HeartbeatDeadLetters", "Queued heartbeats failed every delivery and wait in the heartbeat dead-letter queue",
		q.dlq.MetricApproximateNumberOfMessagesVisible(max), 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
	a.add("HeartbeatQueueAge", fmt.Sprintf("The oldest queued heartbeat is older than %d s: the writer is failing or behind", cfg.AgeAlarmSeconds),
		q.queue.MetricApproximateAgeOfOldestMessage(max), float64(cfg.AgeAlarmSeconds), awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
}

func (a *alarms) queue(dlq awssqs.Queue) {
	a.add("JobsDeadLetters", "A scheduled job failed after its retries (or could not be delivered): see the dead-letter queue",
		dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}),
		1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
}

// function: throttles for every function; errors for jobs and the deploy trigger (API
// functions answer errors as 5xx, covered above).
func (a *alarms) function(f Function, fn awslambda.Function) {
	sum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	id := exportName(f.Name)
	a.add(id+"Throttles", f.Name+": Lambda throttled invocations (concurrency limit reached)",
		fn.MetricThrottles(sum), 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
	if f.Kind == Scheduled || f.Kind == DeployTrigger || f.Kind == QueueConsumer {
		a.add(id+"Errors", f.Name+": the job returned an error",
			fn.MetricErrors(sum), 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
	}
}
