// Package sesmail sends mail through the Amazon SES v2 API (SendEmail with the raw MIME
// message mail.Build makes), signed with the function's IAM role: no SMTP credentials to
// store or rotate. Only the reminders function links it.
package sesmail

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/config"
)

// API is the part of the SES v2 client used (sesv2.Client).
type API interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, opts ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// Sender sends through SES from From (an address of a verified identity).
type Sender struct {
	API         API
	From        string
	IdentityARN string        // optional: the identity authorising From
	Timeout     time.Duration // per message; 0: 15 s
}

// New builds a Sender on an SES v2 client made from cfg (awsenv.Config on Lambda).
func New(cfg aws.Config, c config.SES) Sender {
	return Sender{API: sesv2.NewFromConfig(cfg), From: c.From, IdentityARN: c.IdentityARN}
}

// Send sends a plain-text message.
func (s Sender) Send(ctx context.Context, to, subject, body string) error {
	return s.SendMessage(ctx, mail.Message{To: to, Subject: subject, Text: body})
}

// SendMessage sends m as a raw MIME message (the same bytes the SMTP sender writes).
func (s Sender) SendMessage(ctx context.Context, m mail.Message) error {
	raw, err := mail.Build(s.From, m, time.Now())
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.From),
		Destination:      &types.Destination{ToAddresses: []string{m.To}},
		Content:          &types.EmailContent{Raw: &types.RawMessage{Data: raw}},
	}
	if s.IdentityARN != "" {
		in.FromEmailAddressIdentityArn = aws.String(s.IdentityARN)
	}
	if _, err := s.API.SendEmail(ctx, in); err != nil {
		return fmt.Errorf("mail: SES: %w", err)
	}
	return nil
}
