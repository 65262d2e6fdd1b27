// Package agentrelease publishes the latest agent release of each channel (version and
// per-architecture downloads), which heartbeats answer as latest_agent_version.
package agentrelease

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/heartbeat"
)

// Bounds of a release (agent_releases' columns, and sane sizes for the rest).
const (
	MaxVersionLen = 50
	MaxURLLen     = 2048
	MaxNotesLen   = 10000
)

// Architectures a release may carry a download for.
func Architectures() []string { return []string{"amd64", "arm64", "386", "arm"} }

var (
	channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	// versionRE is semantic versioning's shape, with an optional leading v: 1.4.2,
	// v2.0.0-rc.1, 1.0.0+build.5.
	versionRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// Download is where an architecture's agent binary is and its SHA-256 (lower-case hex).
type Download struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// Release is a channel's latest agent release.
type Release struct {
	Channel     string              `json:"channel"`
	Version     string              `json:"version"`
	Downloads   map[string]Download `json:"downloads"`
	Notes       string              `json:"notes"`
	PublishedAt time.Time           `json:"published_at"`
	PublishedBy *string             `json:"published_by"` // the platform admin; null once deleted
}

// CheckChannel refuses a channel name agent_releases would not hold.
func CheckChannel(channel string) error {
	if !channelRE.MatchString(channel) {
		return apperr.InvalidFields(map[string]string{"channel": "must be 1 to 20 characters: a lower-case letter, then lower-case letters, digits or hyphens"})
	}
	return nil
}

// Validate checks a release to publish, writing its SHA-256s in lower case.
func (r *Release) Validate() error {
	bad := map[string]string{}
	if !channelRE.MatchString(r.Channel) {
		bad["channel"] = "must be 1 to 20 characters: a lower-case letter, then lower-case letters, digits or hyphens"
	}
	r.Version = strings.TrimSpace(r.Version)
	if len(r.Version) > MaxVersionLen || !versionRE.MatchString(r.Version) {
		bad["version"] = "must be a semantic version of at most 50 characters, e.g. 1.4.2 or 2.0.0-rc.1"
	}
	if len(r.Downloads) == 0 {
		bad["downloads"] = "required: at least one architecture (" + strings.Join(Architectures(), ", ") + ")"
	}
	for arch, dl := range r.Downloads {
		field := "downloads." + arch
		if !slices.Contains(Architectures(), arch) {
			bad[field] = "unknown architecture: use " + strings.Join(Architectures(), ", ")
			continue
		}
		if err := checkURL(dl.URL); err != "" {
			bad[field+".url"] = err
		}
		if !sha256RE.MatchString(dl.SHA256) {
			bad[field+".sha256"] = "must be the SHA-256 of the binary: 64 hexadecimal digits"
		}
		dl.SHA256 = strings.ToLower(dl.SHA256)
		r.Downloads[arch] = dl
	}
	r.Notes = strings.TrimSpace(r.Notes)
	if !utf8.ValidString(r.Notes) || utf8.RuneCountInString(r.Notes) > MaxNotesLen ||
		strings.IndexFunc(r.Notes, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }) >= 0 {
		bad["notes"] = fmt.Sprintf("at most %d characters of text", MaxNotesLen)
	}
	if len(bad) > 0 {
		return apperr.InvalidFields(bad)
	}
	return nil
}

// checkURL accepts an absolute https URL with a host and no credentials: agents download
// from it unattended.
func checkURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "required"
	case len(s) > MaxURLLen:
		return fmt.Sprintf("at most %d characters", MaxURLLen)
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return "must be an https:// URL"
	case u.User != nil:
		return "must not contain credentials"
	case strings.ContainsAny(s, " \t\r\n"):
		return "must not contain white space"
	}
	return ""
}

// List returns every channel's release, by channel.
func List(ctx context.Context, q db.Querier) ([]Release, error) {
	rows, err := q.Query(ctx, `
		SELECT channel, version, downloads, notes, published_at, published_by::text FROM agent_releases ORDER BY channel`)
	if err != nil {
		return nil, db.Error(err, "agentrelease: list")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Release, error) {
		var r Release
		var downloads []byte
		if err := row.Scan(&r.Channel, &r.Version, &downloads, &r.Notes, &r.PublishedAt, &r.PublishedBy); err != nil {
			return r, err
		}
		r.Downloads = map[string]Download{}
		return r, json.Unmarshal(downloads, &r.Downloads)
	})
	if err != nil {
		return nil, db.Error(err, "agentrelease: list")
	}
	return out, nil
}

// Publish makes r its channel's latest release (replacing the previous one), audits it,
// and drops the channel's cached version so the next heartbeats answer the new one.
// userID and ip are the publisher's.
func Publish(ctx context.Context, pool *pgxpool.Pool, store cache.Store, r Release, userID, ip string, now time.Time) (Release, error) {
	if err := r.Validate(); err != nil {
		return Release{}, err
	}
	downloads, err := json.Marshal(r.Downloads)
	if err != nil {
		return Release{}, err
	}
	err = db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO agent_releases (channel, version, downloads, notes, published_at, published_by)
			VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::uuid)
			ON CONFLICT (channel) DO UPDATE SET version = EXCLUDED.version, downloads = EXCLUDED.downloads,
			    notes = EXCLUDED.notes, published_at = EXCLUDED.published_at, published_by = EXCLUDED.published_by
			RETURNING published_at, published_by::text`, r.Channel, r.Version, downloads, r.Notes, tx.Now, userID).
			Scan(&r.PublishedAt, &r.PublishedBy); err != nil {
			return db.Error(err, "agentrelease: publish")
		}
		archs := make([]string, 0, len(r.Downloads))
		for a := range r.Downloads {
			archs = append(archs, a)
		}
		slices.Sort(archs)
		return audit.Log(ctx, tx, tx.Now, audit.Entry{UserID: userID, IP: ip, Action: "agent_version_published",
			Details: map[string]any{"channel": r.Channel, "version": r.Version, "architectures": archs}})
	})
	if err != nil {
		return Release{}, err
	}
	// After the commit: a heartbeat that refills the key from now on reads the new row.
	store.Delete(context.WithoutCancel(ctx), heartbeat.AgentVersionCacheKey(r.Channel))
	return r, nil
}
