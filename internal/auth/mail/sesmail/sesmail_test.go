package sesmail_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/auth/mail/sesmail"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/config"
)

// The sender calls SES v2 SendEmail (here a local HTTP server standing in for the
// endpoint), signed with the role's credentials, with the raw MIME message.
func TestSendsRawMessageThroughTheAPI(t *testing.T) {
	var got struct {
		path, auth string
		body       map[string]any
	}
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.path, got.auth = r.URL.Path, r.Header.Get("Authorization")
		_ = json.Unmarshal(b, &got.body)
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.Header().Set("X-Amzn-ErrorType", "MessageRejected")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"message":"Email address is not verified."}`)
			return
		}
		_, _ = io.WriteString(w, `{"MessageId":"0102-abc"}`)
	}))
	defer srv.Close()
	cfg, err := awsenv.Config(func(k string) string {
		return map[string]string{"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(srv.URL)
	cfg.RetryMaxAttempts = 1
	s := sesmail.New(cfg, config.SES{From: "noreply@optralis.example", IdentityARN: "arn:aws:ses:eu-west-3:111111111111:identity/optralis.example"})
	m := mail.Message{To: "admin@client.example", Subject: "Licence", Text: "Expires in 3 days.\n", HTML: "<p>Expires in 3 days.</p>\n"}
	if err := s.SendMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.path != "/v2/email/outbound-emails" || !strings.Contains(got.auth, "AKIDEXAMPLE/") || !strings.Contains(got.auth, "/ses/aws4_request") {
		t.Fatalf("request %s, Authorization %q", got.path, got.auth)
	}
	if got.body["FromEmailAddress"] != "noreply@optralis.example" ||
		got.body["FromEmailAddressIdentityArn"] != "arn:aws:ses:eu-west-3:111111111111:identity/optralis.example" {
		t.Fatalf("body %v", got.body)
	}
	to := got.body["Destination"].(map[string]any)["ToAddresses"].([]any)
	if len(to) != 1 || to[0] != "admin@client.example" {
		t.Fatalf("destination %v", to)
	}
	data, _ := got.body["Content"].(map[string]any)["Raw"].(map[string]any)["Data"].(string)
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("To") != "admin@client.example" || !strings.HasPrefix(msg.Header.Get("Content-Type"), "multipart/alternative") {
		t.Fatalf("raw message headers %v", msg.Header)
	}

	status = http.StatusBadRequest
	if err := s.SendMessage(context.Background(), m); err == nil || !strings.Contains(err.Error(), "SES") {
		t.Fatalf("rejected message: %v", err)
	}
	if err := s.Send(context.Background(), "a@b.co\r\nBcc: v@x.co", "x", "y"); err != mail.ErrAddress {
		t.Fatalf("injection: %v", err)
	}
}
