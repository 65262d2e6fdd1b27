package notify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Event is one alert event to notify: an episode that fired or resolved.
type Event struct {
	AlertID     string          `json:"alert_id"`
	State       string          `json:"state"` // firing | resolved
	Rule        EventRule       `json:"rule"`
	Severity    string          `json:"severity"`
	Machine     EventMachine    `json:"machine"`
	Value       *float64        `json:"value"`
	Threshold   *float64        `json:"threshold"`
	StartedAt   *time.Time      `json:"started_at"`
	TriggeredAt *time.Time      `json:"triggered_at"`
	ResolvedAt  *time.Time      `json:"resolved_at"`
	Details     json.RawMessage `json:"details"`
}

// EventRule names the rule that raised an event (ID is null once the rule was deleted).
type EventRule struct {
	ID     *string `json:"id"`
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
}

// EventMachine is the machine an event is about.
type EventMachine struct {
	ID       *string `json:"id"`
	Hostname string  `json:"hostname"`
}

// Message is what one channel receives in one run: all its events, firing and resolved.
type Message struct {
	ID           string // the delivery id (X-Optralis-Delivery, notification_history.message_id)
	ClientID     string
	ClientName   string
	Events       []Event
	DashboardURL string // "" : no link
	Test         bool   // a test notification (POST /api/notification-channels/{id}/test)
}

// WebhookVersion is the version of the webhook body.
const WebhookVersion = "1"

// webhookBody is the generic webhook's JSON.
type webhookBody struct {
	Version    string         `json:"version"`
	DeliveryID string         `json:"delivery_id"`
	Test       bool           `json:"test"`
	Client     map[string]any `json:"client"`
	Events     []Event        `json:"events"`
	Dashboard  string         `json:"dashboard_url,omitempty"`
}

// WebhookJSON is the body of a generic webhook delivery.
func (m Message) WebhookJSON() ([]byte, error) {
	events := m.Events
	if events == nil {
		events = []Event{}
	}
	return json.Marshal(webhookBody{Version: WebhookVersion, DeliveryID: m.ID, Test: m.Test,
		Client: map[string]any{"id": m.ClientID, "name": m.ClientName}, Events: events, Dashboard: m.alertsLink()})
}

func (m Message) alertsLink() string {
	if m.DashboardURL == "" {
		return ""
	}
	return strings.TrimRight(m.DashboardURL, "/") + "/alerts"
}

func (m Message) counts() (firing, resolved int) {
	for _, e := range m.Events {
		if e.State == "firing" {
			firing++
		} else {
			resolved++
		}
	}
	return
}

// Subject is the one-line summary of the message (mail subject, chat header).
func (m Message) Subject() string {
	if m.Test {
		return fmt.Sprintf("[Optralis] Test notification for %s", m.ClientName)
	}
	if len(m.Events) == 1 {
		e := m.Events[0]
		return fmt.Sprintf("[Optralis] %s %s: %s on %s", strings.ToUpper(e.State), e.Severity, e.Rule.Name, e.Machine.Hostname)
	}
	f, r := m.counts()
	var parts []string
	if f > 0 {
		parts = append(parts, fmt.Sprintf("%d firing", f))
	}
	if r > 0 {
		parts = append(parts, fmt.Sprintf("%d resolved", r))
	}
	return fmt.Sprintf("[Optralis] %s: %s", m.ClientName, strings.Join(parts, ", "))
}

// line describes one event in one line of plain text.
func (e Event) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: %s on %s", strings.ToUpper(e.State), e.Severity, e.Rule.Name, e.Machine.Hostname)
	if e.Value != nil {
		fmt.Fprintf(&b, " (value %s", num(*e.Value))
		if e.Threshold != nil {
			fmt.Fprintf(&b, ", threshold %s", num(*e.Threshold))
		}
		b.WriteString(")")
	}
	if e.State == "resolved" && e.ResolvedAt != nil {
		fmt.Fprintf(&b, ", resolved %s", e.ResolvedAt.UTC().Format(time.RFC3339))
		if e.TriggeredAt != nil {
			fmt.Fprintf(&b, " after %s", e.ResolvedAt.Sub(*e.TriggeredAt).Round(time.Second))
		}
	} else if e.TriggeredAt != nil {
		fmt.Fprintf(&b, ", since %s", e.TriggeredAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func num(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func rank(severity string) int {
	switch severity {
	case "critical":
		return 2
	case "warning":
		return 1
	}
	return 0
}

// sorted lists firing events first, then resolved, each by severity (critical first),
// machine and rule.
func (m Message) sorted() []Event {
	out := append([]Event(nil), m.Events...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.State != b.State {
			return a.State == "firing"
		}
		if ra, rb := rank(a.Severity), rank(b.Severity); ra != rb {
			return ra > rb
		}
		if a.Machine.Hostname != b.Machine.Hostname {
			return a.Machine.Hostname < b.Machine.Hostname
		}
		return a.Rule.Name < b.Rule.Name
	})
	return out
}

// Text is the plain-text body (mail).
func (m Message) Text() string {
	var b strings.Builder
	if m.Test {
		fmt.Fprintf(&b, "This is a test notification from Optralis for %s. If you read it, the channel works.\n", m.ClientName)
	} else {
		f, r := m.counts()
		fmt.Fprintf(&b, "Alerts for %s: %d firing, %d resolved.\n\n", m.ClientName, f, r)
		for _, e := range m.sorted() {
			b.WriteString("- " + e.line() + "\n")
		}
	}
	if l := m.alertsLink(); l != "" {
		fmt.Fprintf(&b, "\nOpen the alerts: %s\n", l)
	}
	return b.String()
}

// maxChatEvents bounds the events listed in a chat message (Slack allows 50 blocks, Teams
// cards stay readable); the rest are counted.
const maxChatEvents = 20

func (m Message) chatLines() []string {
	if m.Test {
		return []string{fmt.Sprintf("This is a test notification from Optralis for %s.", m.ClientName)}
	}
	ev := m.sorted()
	var lines []string
	for i, e := range ev {
		if i == maxChatEvents {
			lines = append(lines, fmt.Sprintf("… and %d more", len(ev)-maxChatEvents))
			break
		}
		lines = append(lines, e.line())
	}
	return lines
}

// SlackJSON is a Slack incoming-webhook body: text (the notification's fallback) and
// blocks (a header and one section per event).
func (m Message) SlackJSON() ([]byte, error) {
	blocks := []map[string]any{{"type": "header", "text": map[string]any{"type": "plain_text", "text": clip(m.Subject(), 150)}}}
	for _, l := range m.chatLines() {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": clip(slackEscape(l), 3000)}})
	}
	if l := m.alertsLink(); l != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "<" + l + "|Open the alerts>"}})
	}
	return json.Marshal(map[string]any{"text": m.Subject(), "blocks": blocks})
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TeamsJSON is a Microsoft Teams Workflows ("When a Teams webhook request is received")
// body: a message with one Adaptive Card attachment (Office 365 connectors' MessageCard is
// retired).
func (m Message) TeamsJSON() ([]byte, error) {
	body := []map[string]any{{"type": "TextBlock", "text": m.Subject(), "weight": "Bolder", "size": "Medium", "wrap": true}}
	for _, l := range m.chatLines() {
		body = append(body, map[string]any{"type": "TextBlock", "text": l, "wrap": true})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	if l := m.alertsLink(); l != "" {
		card["actions"] = []map[string]any{{"type": "Action.OpenUrl", "title": "Open the alerts", "url": l}}
	}
	return json.Marshal(map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	})
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
