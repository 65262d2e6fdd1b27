package lambdaproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestScheduledHandlerRunsJobAtEventTime(t *testing.T) {
	var logs bytes.Buffer
	var got time.Time
	job := func(_ context.Context, now time.Time) error { got = now; return nil }
	fn := ScheduledHandler(job, slog.New(slog.NewJSONHandler(&logs, nil)))

	if _, err := invokeJSON[any](t, fn, readEvent(t, "eventbridge_scheduled.json")); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	want := time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("now = %v, want %v in UTC", got, want)
	}
	for _, s := range []string{`"msg":"scheduled job started"`, `"msg":"scheduled job finished"`, `"duration":`,
		`"event_id":"89d1a02d-5ec7-412e-82f5-13505f849b41"`, "rule/optralis-offline-sweep"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("logs lack %s:\n%s", s, logs.String())
		}
	}
}

func TestScheduledHandlerEventTimeConvertedToUTC(t *testing.T) {
	var got time.Time
	fn := ScheduledHandler(func(_ context.Context, now time.Time) error { got = now; return nil }, nil)
	ev := loadEvent[map[string]any](t, "eventbridge_scheduled.json")
	ev["time"] = "2026-01-01T14:05:00+02:00"
	if _, err := invokeEvent[any](t, fn, ev); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("now = %v, want %v", got, want)
	}
}

func TestScheduledHandlerPropagatesError(t *testing.T) {
	var logs bytes.Buffer
	boom := errors.New("database unavailable")
	fn := ScheduledHandler(func(context.Context, time.Time) error { return boom }, slog.New(slog.NewJSONHandler(&logs, nil)))

	_, err := invokeJSON[any](t, fn, readEvent(t, "eventbridge_scheduled.json"))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v so Lambda retries and the DLQ sees the failure", err, boom)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"scheduled job failed"`) ||
		!strings.Contains(logs.String(), `"err":"database unavailable"`) {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
}

func TestScheduledHandlerZeroTimeFallsBackToNow(t *testing.T) {
	var got time.Time
	fn := ScheduledHandler(func(_ context.Context, now time.Time) error { got = now; return nil }, nil)
	ev := loadEvent[events.EventBridgeEvent](t, "eventbridge_scheduled.json")
	ev.Time = time.Time{}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := invokeJSON[any](t, fn, payload); err != nil {
		t.Fatal(err)
	}
	if got.Before(before) || got.After(time.Now()) || got.Location() != time.UTC {
		t.Errorf("now = %v, want the current time in UTC", got)
	}
}
