package adminfn

import (
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/notify"
)

// Notify is what the notification channels' test action sends with.
type Notify struct {
	Mail          mail.MessageSender // nil: mail disabled (a test of an email channel is 'skipped')
	AllowInsecure bool               // NOTIFY_ALLOW_INSECURE_URLS
	DashboardURL  string             // links in the messages
}

// NotifySettings are the notification settings the admin function reads.
type NotifySettings struct {
	AllowInsecure bool
	DashboardURL  string
}

// LoadNotify reads NOTIFY_ALLOW_INSECURE_URLS and the dashboard URL.
func LoadNotify(getenv func(string) string) (NotifySettings, error) {
	var n NotifySettings
	cors, err := config.CORS(getenv)
	if err != nil {
		return n, err
	}
	if n.DashboardURL, err = config.Dashboard(getenv, cors); err != nil {
		return n, err
	}
	n.AllowInsecure, err = config.NotifyAllowInsecureURLs(getenv)
	return n, err
}

// Notify is the settings with the function's SMTP sender (as invitations use).
func (n NotifySettings) Notify(core app.Core, smtp config.SMTP) Notify {
	return Notify{Mail: mail.MessageFromConfig(smtp, core.Logger), AllowInsecure: n.AllowInsecure, DashboardURL: n.DashboardURL}
}

// channelHandlers binds the notification channels' routes.
func channelHandlers(core app.Core, n Notify) app.Handlers {
	d := notify.Deps{Pool: core.Pool, Logger: core.Logger, Clock: core.Clock, Mail: n.Mail,
		Policy: notify.Policy{AllowInsecure: n.AllowInsecure}, DashboardURL: n.DashboardURL}
	return app.Handlers{
		"GET /api/notification-channels":            notify.HandleList(d),
		"POST /api/notification-channels":           notify.HandleCreate(d),
		"GET /api/notification-channels/{id}":       notify.HandleGet(d),
		"PATCH /api/notification-channels/{id}":     notify.HandleUpdate(d),
		"DELETE /api/notification-channels/{id}":    notify.HandleDelete(d),
		"POST /api/notification-channels/{id}/test": notify.HandleTest(d),
	}
}
