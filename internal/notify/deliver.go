package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/auth/mail"
)

// target is a channel as the pipeline sends to it (with its URL and secret).
type target struct {
	ID, ClientID, Name, Kind string
	Recipients               []string
	URL, Secret              string
}

// errSkipped marks an email that was not sent because mail is disabled (recorded
// 'skipped', final).
var errSkipped = errors.New("mail disabled: not sent")

// outcome is how one delivery ended.
type outcome struct {
	attempts  int
	permanent bool // a retry cannot help (or the run must not retry): given up now
	err       error
}

// deliver sends m to t: up to d.Tries attempts with exponential backoff (d.Backoff, then
// twice as long each time), each bounded by d.Timeout. Only failures a retry may cure are
// retried; the context's end stops the retries.
func deliver(ctx context.Context, d Deps, t target, m Message) outcome {
	var o outcome
	wait := d.Backoff
	sent := map[string]bool{} // email recipients already served in this run
	for o.attempts < d.Tries {
		o.attempts++
		actx, cancel := context.WithTimeout(ctx, d.Timeout)
		o.permanent, o.err = send(actx, d, t, m, sent)
		cancel()
		if o.err == nil || o.permanent || o.attempts == d.Tries {
			break
		}
		select {
		case <-ctx.Done():
			return o
		case <-time.After(wait):
		}
		wait *= 2
	}
	return o
}

// send makes one attempt.
func send(ctx context.Context, d Deps, t target, m Message, sent map[string]bool) (permanent bool, err error) {
	switch t.Kind {
	case "email":
		return sendMail(ctx, d, t, m, sent)
	case "webhook", "slack", "teams":
		if err := d.Policy.CheckURL(t.URL); err != nil {
			return true, fmt.Errorf("url %s", err)
		}
	default:
		return true, fmt.Errorf("unknown channel kind %q", t.Kind)
	}
	var body []byte
	headers := map[string]string{}
	switch t.Kind {
	case "webhook":
		if body, err = m.WebhookJSON(); err != nil {
			return true, err
		}
		// A new timestamp per attempt: a retry is signed fresh, within the receiver's window.
		// Wall time, not the injected clock: the receiver checks it against its own clock
		// (it stamps no row).
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		headers[HeaderTimestamp] = ts
		headers[HeaderSignature] = Sign(t.Secret, ts, body)
		headers[HeaderDelivery] = m.ID
	case "slack":
		body, err = m.SlackJSON()
	case "teams":
		body, err = m.TeamsJSON()
	}
	if err != nil {
		return true, err
	}
	return post(ctx, d.HTTP, t.URL, body, headers)
}

// sendMail mails m to each recipient not yet served by an earlier attempt of this run.
func sendMail(ctx context.Context, d Deps, t target, m Message, sent map[string]bool) (bool, error) {
	if _, disabled := d.Mail.(mail.Disabled); disabled || d.Mail == nil {
		return true, errSkipped
	}
	if len(t.Recipients) == 0 {
		return true, errors.New("no recipients (the client has no active administrator)")
	}
	var failed []string
	var last error
	for _, to := range t.Recipients {
		if sent[to] {
			continue
		}
		if err := d.Mail.SendMessage(ctx, mail.Message{To: to, Subject: m.Subject(), Text: m.Text()}); err != nil {
			failed, last = append(failed, to), err
			continue
		}
		sent[to] = true
	}
	if len(failed) > 0 {
		return errors.Is(last, mail.ErrAddress), fmt.Errorf("%d of %d recipients failed (%s): %v",
			len(failed), len(t.Recipients), strings.Join(failed, ", "), last)
	}
	return false, nil
}
