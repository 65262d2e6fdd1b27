package notify

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/validate"
)

// MaxRecipients bounds an email channel's addresses.
const MaxRecipients = 20

// maxNameLen is the schema's limit on a channel name.
const maxNameLen = 100

// noQuery refuses every query parameter: these routes take none.
func noQuery(r *http.Request) error {
	if bad := httpx.QueryProblems(r.URL.Query()); len(bad) > 0 {
		return apperr.InvalidFields(bad)
	}
	return nil
}

// channelBody is a create or update body; nil fields were not sent.
type channelBody struct {
	Name         *string   `json:"name"`
	Kind         *string   `json:"kind"`
	Recipients   *[]string `json:"recipients"`
	URL          *string   `json:"url"`
	MinSeverity  *string   `json:"min_severity"`
	Enabled      *bool     `json:"enabled"`
	RotateSecret *bool     `json:"rotate_secret"`
}

var kinds = []string{"email", "webhook", "slack", "teams"}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// check validates the fields sent into a ChannelInput, naming each bad field.
func (b channelBody) check(p Policy, bad map[string]string) ChannelInput {
	var in ChannelInput
	if b.Name != nil {
		name := strings.TrimSpace(*b.Name)
		if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLen || !validate.Text(name) {
			bad["name"] = fmt.Sprintf("1 to %d characters, no control characters", maxNameLen)
		}
		in.Name = &name
	}
	if b.Recipients != nil {
		if len(*b.Recipients) > MaxRecipients {
			bad["recipients"] = fmt.Sprintf("at most %d addresses", MaxRecipients)
		} else {
			seen := map[string]bool{}
			in.Recipients = []string{}
			for _, addr := range *b.Recipients {
				addr = strings.TrimSpace(addr)
				if validate.Email(addr) != nil {
					bad["recipients"] = "not a valid email address: " + quote(addr)
					break
				}
				if k := strings.ToLower(addr); !seen[k] {
					seen[k] = true
					in.Recipients = append(in.Recipients, addr)
				}
			}
		}
	}
	if b.URL != nil {
		u := strings.TrimSpace(*b.URL)
		if err := p.CheckURL(u); err != nil {
			bad["url"] = err.Error()
		}
		in.URL = &u
	}
	if b.MinSeverity != nil {
		if !oneOf(*b.MinSeverity, []string{"info", "warning", "critical"}) {
			bad["min_severity"] = "one of info, warning, critical"
		}
		in.MinSeverity = b.MinSeverity
	}
	in.Enabled = b.Enabled
	in.RotateSecret = b.RotateSecret != nil && *b.RotateSecret
	return in
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// HandleList is GET /api/notification-channels: the caller's client's channels.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		list, err := ListChannels(r.Context(), d.Pool, a.ClientID)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"channels": list})
	})
}

// HandleGet is GET /api/notification-channels/{id}.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		c, err := GetChannel(r.Context(), d.Pool, a.ClientID, id)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, c)
	})
}

// HandleCreate is POST /api/notification-channels {name, kind, recipients? | url,
// min_severity?, enabled?}. A webhook's signing secret is generated and returned once.
func HandleCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b channelBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		bad := map[string]string{}
		if b.Name == nil {
			bad["name"] = "required"
		}
		kind := ""
		switch {
		case b.Kind == nil:
			bad["kind"] = "required: one of email, webhook, slack, teams"
		case !oneOf(*b.Kind, kinds):
			bad["kind"] = "one of email, webhook, slack, teams"
		default:
			kind = *b.Kind
		}
		if b.RotateSecret != nil {
			bad["rotate_secret"] = "only on update (a webhook gets a secret when created)"
		}
		in := b.check(d.Policy, bad)
		in.Kind = kind
		switch {
		case kind == "email" && b.URL != nil:
			bad["url"] = "an email channel has no url"
		case kind != "" && kind != "email" && b.URL == nil:
			bad["url"] = "required for a " + kind + " channel"
		}
		if kind != "" && kind != "email" && b.Recipients != nil {
			bad["recipients"] = "only an email channel has recipients"
		}
		if len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		c, err := CreateChannel(r.Context(), d.Pool, a, in, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, c)
	})
}

// HandleUpdate is PATCH /api/notification-channels/{id}: any of name, recipients (email),
// url (webhook, slack, teams), min_severity, enabled, rotate_secret (webhook). The kind
// cannot change.
func HandleUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b channelBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		bad := map[string]string{}
		if b.Kind != nil {
			bad["kind"] = "cannot be changed: create a new channel"
		}
		if b.Name == nil && b.Recipients == nil && b.URL == nil && b.MinSeverity == nil && b.Enabled == nil && b.RotateSecret == nil {
			bad["body"] = "give at least one of name, recipients, url, min_severity, enabled, rotate_secret"
		}
		in := b.check(d.Policy, bad)
		if len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		c, err := UpdateChannel(r.Context(), d.Pool, a, id, in, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, c)
	})
}

// HandleDelete is DELETE /api/notification-channels/{id}.
func HandleDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if err := DeleteChannel(r.Context(), d.Pool, a, id, d.Clock.Now()); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// HandleTest is POST /api/notification-channels/{id}/test: a test message sent now (one
// attempt, bounded by the delivery timeout); the answer is the outcome, also recorded in
// notification_history. A failed delivery is a 200 whose status says so: the request
// itself succeeded.
func HandleTest(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err == nil {
			err = noQuery(r)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		// No body, or an empty JSON object.
		body, err := httpx.ReadBody(r.Body, 1024)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if s := strings.TrimSpace(string(body)); s != "" {
			var none struct{}
			if err := httpx.DecodeJSONBytes(body, &none); err != nil {
				httpx.WriteError(w, r, d.Logger, err)
				return
			}
		}
		res, err := SendTest(r.Context(), d, a, id, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, res)
	})
}
