package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/optralis/optralis/internal/cache"
)

// TestRedisLogsAreJSON: go-redis's own messages (here a failed dial) reach our JSON log
// instead of plain-text lines on stderr. Not parallel: go-redis keeps one logger.
func TestRedisLogsAreJSON(t *testing.T) {
	var buf syncBuf
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	c, err := cache.Open(context.Background(), "redis://127.0.0.1:1/0", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if rec["source"] == "go-redis" && strings.Contains(rec["msg"].(string), "failed to dial") {
			found = true
		}
	}
	if !found {
		t.Fatalf("go-redis's dial failure is not in the JSON log:\n%s", buf.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
