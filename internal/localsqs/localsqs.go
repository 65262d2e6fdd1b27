// Package localsqs is a local stand-in for Amazon SQS speaking the subset of its AWS JSON
// 1.0 protocol the heartbeat function uses (SendMessage), for tests and benchmarks: no
// SQS-compatible server runs here without Docker (goaws speaks the JSON protocol only from
// v0.5.0, which the module proxy does not serve). It is a real HTTP server that the AWS SDK
// reaches through its BaseEndpoint, so the SDK's own request signing, serialization, MD5
// check of the answer and retries run for real.
package localsqs

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Message is one message the server accepted.
type Message struct {
	QueueURL string
	Body     string
}

// Server records the messages sent to it.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	messages []Message
	failing  bool
	n        int
}

// Start runs a server on a loopback port; Close stops it.
func Start() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Fail makes every later request fail (true) as SQS does when it cannot take a message
// (500 InternalError), or succeed again (false).
func (s *Server) Fail(on bool) {
	s.mu.Lock()
	s.failing = on
	s.mu.Unlock()
}

// Messages returns a copy of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("x-amzn-query-error", typ+";Sender")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + typ, "message": msg})
	}
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessage" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		fail(http.StatusBadRequest, "InvalidAction", "only AmazonSQS.SendMessage (JSON 1.0) is served here")
		return
	}
	if r.Header.Get("Authorization") == "" {
		fail(http.StatusForbidden, "MissingAuthenticationToken", "unsigned request")
		return
	}
	var in struct {
		QueueUrl    string
		MessageBody string
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || in.QueueUrl == "" || in.MessageBody == "" {
		fail(http.StatusBadRequest, "InvalidParameterValue", "QueueUrl and MessageBody are required")
		return
	}
	// SQS's own limit on a message (1 MiB since 2025; 256 KiB before).
	if len(in.MessageBody) > 1<<20 {
		fail(http.StatusBadRequest, "InvalidParameterValue", "message too long")
		return
	}
	s.mu.Lock()
	if s.failing {
		s.mu.Unlock()
		fail(http.StatusInternalServerError, "InternalError", "injected failure")
		return
	}
	s.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.n)
	s.messages = append(s.messages, Message{QueueURL: in.QueueUrl, Body: in.MessageBody})
	s.mu.Unlock()
	sum := md5.Sum([]byte(in.MessageBody))
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": id, "MD5OfMessageBody": hex.EncodeToString(sum[:])})
}
