package lambdaproxy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Every sample in events/ must replay cleanly through the handler its prefix names,
// so a new sample cannot be added without being exercised.
func TestEverySampleEventReplays(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(name, "rest_"):
				resp := invokeREST(t, raw)
				decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
			case strings.HasPrefix(name, "httpapi_"):
				resp := invokeHTTPAPI(t, raw)
				decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
			case strings.HasPrefix(name, "alb_"):
				resp := invokeALB(t, raw)
				decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
			case strings.HasPrefix(name, "sqs_"):
				var got []QueueMessage
				fn := SQSHandler(func(_ context.Context, ms []QueueMessage) []string { got = ms; return nil })
				resp, err := invokeJSON[events.SQSEventResponse](t, fn, raw)
				if err != nil || len(got) == 0 || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("%d messages, %+v, %v", len(got), resp, err)
				}
			case strings.HasPrefix(name, "eventbridge_"):
				ran := false
				fn := ScheduledHandler(func(context.Context, time.Time) error { ran = true; return nil }, nil)
				if _, err := invokeJSON[any](t, fn, raw); err != nil || !ran {
					t.Fatalf("job ran %v, err %v", ran, err)
				}
				ev := loadEvent[events.EventBridgeEvent](t, name)
				if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
					t.Errorf("not a scheduled event: %q from %q", ev.DetailType, ev.Source)
				}
			default:
				t.Fatalf("no handler for sample %s: name it rest_*, httpapi_*, alb_*, sqs_* or eventbridge_*", name)
			}
		})
	}
}
