package reminders

import (
	"bytes"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/optralis/optralis/internal/auth/mail"
)

// Dashboard pages the mails link to (the dashboard's routes, under DASHBOARD_URL).
const (
	LicencePath  = "/settings/licence"
	PasswordPath = "/settings/password"
)

// view is what the templates read.
type view struct {
	Name, Client, Date, When, Link string
	Licence                        bool
}

func subject(r reminder) string {
	if r.kind.Type == Licence.Type {
		return "Optralis: the licence of " + oneLine(r.client) + " expires " + when(r.daysLeft)
	}
	return "Optralis: your password expires " + when(r.daysLeft)
}

// when is the time left in words: the actual days left, not the milestone (a run after
// missed days sends the milestone due, with the true count).
func when(days int) string {
	switch days {
	case 0:
		return "today"
	case 1:
		return "tomorrow"
	}
	return "in " + strconv.Itoa(days) + " days"
}

// oneLine keeps a stored name from breaking the subject header.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func render(r reminder, dashboard string) mail.Message {
	v := view{Name: r.name, Client: r.client, Date: r.expiresAt.UTC().Format("Monday 2 January 2006, 15:04 UTC"),
		When: when(r.daysLeft), Licence: r.kind.Type == Licence.Type}
	if v.Name == "" {
		v.Name = r.email
	}
	if dashboard != "" {
		v.Link = strings.TrimSuffix(dashboard, "/") + PasswordPath
		if v.Licence {
			v.Link = strings.TrimSuffix(dashboard, "/") + LicencePath
		}
	}
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, v); err != nil {
		panic(err) // the templates are constants: a test executes both
	}
	if err := htmlTmpl.Execute(&html, v); err != nil {
		panic(err)
	}
	return mail.Message{To: r.email, Subject: subject(r), Text: text.String(), HTML: html.String()}
}

var textTmpl = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Name}},
{{if .Licence}}
The Optralis licence of {{.Client}} expires {{.When}}, on {{.Date}}.
After that date no new machine can be enrolled. Renew it with your Optralis contact to keep
monitoring without interruption.
{{- if .Link}}

Licence details: {{.Link}}{{end}}

You receive this reminder as an administrator of {{.Client}}.
{{- else}}
Your Optralis password expires {{.When}}, on {{.Date}}.
After that date you will have to choose a new one before using the dashboard.
{{- if .Link}}

Change it now: {{.Link}}{{end}}
{{- end}}

— Optralis
`))

var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif; color: #1f2937">
<p>Hello {{.Name}},</p>
{{if .Licence -}}
<p>The Optralis licence of <strong>{{.Client}}</strong> expires <strong>{{.When}}</strong>, on {{.Date}}.</p>
<p>After that date no new machine can be enrolled. Renew it with your Optralis contact to keep monitoring without interruption.</p>
{{if .Link}}<p><a href="{{.Link}}">See the licence in the dashboard</a></p>
{{end}}<p style="color: #6b7280">You receive this reminder as an administrator of {{.Client}}.</p>
{{- else -}}
<p>Your Optralis password expires <strong>{{.When}}</strong>, on {{.Date}}.</p>
<p>After that date you will have to choose a new one before using the dashboard.</p>
{{if .Link}}<p><a href="{{.Link}}">Change your password now</a></p>
{{end}}
{{- end}}
<p>— Optralis</p>
</body></html>
`))
