package clients

import (
	"regexp"
	"time"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/jsonfield"
)

// Limits of a client's fields.
const (
	MaxNameLen     = 255
	MaxMachinesCap = 1_000_000
	DefaultTier    = "Trial"
	DefaultMax     = 5
	DefaultChannel = "stable"
)

// Tiers are the licence tiers (license_retention), cheapest first.
var Tiers = []string{"Trial", "Starter", "Essentials", "Pro", "Business", "Enterprise"}

const tierProblem = "must be one of Trial, Starter, Essentials, Pro, Business, Enterprise"

// channelPattern is agent_releases.channel's rule: a client follows a channel that can be
// published.
var channelPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// body is a client as POST and PATCH send it: every member optional, each checked by name.
type body struct {
	Name             jsonfield.Member `json:"name"`
	LicenseTier      jsonfield.Member `json:"license_tier"`
	LicenseExpiresAt jsonfield.Member `json:"license_expires_at"`
	MaxMachines      jsonfield.Member `json:"max_machines"`
	Active           jsonfield.Member `json:"is_active"`
	AgentChannel     jsonfield.Member `json:"agent_channel"`
}

// expiry is license_expires_at in a change: Set, and then At (nil clears it).
type expiry struct {
	Set bool
	At  *time.Time
}

// Changes are validated client fields; nil (or an unset expiry) leaves a field as it is.
type Changes struct {
	Name             *string
	LicenseTier      *string
	LicenseExpiresAt expiry
	MaxMachines      *int
	Active           *bool
	AgentChannel     *string
}

func (c Changes) empty() bool {
	return c.Name == nil && c.LicenseTier == nil && !c.LicenseExpiresAt.Set && c.MaxMachines == nil && c.Active == nil && c.AgentChannel == nil
}

// audit lists the changed fields and their new values (no secret among them).
func (c Changes) audit() map[string]any {
	m := map[string]any{}
	if c.Name != nil {
		m["name"] = *c.Name
	}
	if c.LicenseTier != nil {
		m["license_tier"] = *c.LicenseTier
	}
	if c.LicenseExpiresAt.Set {
		m["license_expires_at"] = c.LicenseExpiresAt.At
	}
	if c.MaxMachines != nil {
		m["max_machines"] = *c.MaxMachines
	}
	if c.Active != nil {
		m["is_active"] = *c.Active
	}
	if c.AgentChannel != nil {
		m["agent_channel"] = *c.AgentChannel
	}
	return m
}

// changes validates the members present, naming each bad one.
func (b body) changes() (Changes, error) {
	var c Changes
	bad := map[string]string{}
	if b.Name.Set {
		s, ok := b.Name.String()
		if ok {
			var err error
			if s, err = jsonfield.Text(s, 1, MaxNameLen); err != nil {
				ok = false
			}
		}
		if !ok {
			bad["name"] = "must be 1 to 255 characters of text after trimming spaces"
		} else {
			c.Name = &s
		}
	}
	if b.LicenseTier.Set {
		s, ok := b.LicenseTier.String()
		if !ok || !validTier(s) {
			bad["license_tier"] = tierProblem
		} else {
			c.LicenseTier = &s
		}
	}
	if b.LicenseExpiresAt.Set {
		c.LicenseExpiresAt.Set = true
		if !b.LicenseExpiresAt.Null() {
			s, ok := b.LicenseExpiresAt.String()
			t, err := time.Parse(time.RFC3339, s)
			if !ok || err != nil || t.Year() < 2000 {
				bad["license_expires_at"] = "must be an RFC 3339 date-time (2027-01-31T23:59:59Z), or null for no expiry"
			} else {
				t = t.UTC()
				c.LicenseExpiresAt.At = &t
			}
		}
	}
	if b.MaxMachines.Set {
		n, ok := b.MaxMachines.Int()
		if !ok || n < 0 || n > MaxMachinesCap {
			bad["max_machines"] = "must be an integer between 0 and 1000000"
		} else {
			c.MaxMachines = &n
		}
	}
	if b.Active.Set {
		v, ok := b.Active.Bool()
		if !ok {
			bad["is_active"] = "must be true or false"
		} else {
			c.Active = &v
		}
	}
	if b.AgentChannel.Set {
		s, ok := b.AgentChannel.String()
		if !ok || !channelPattern.MatchString(s) {
			bad["agent_channel"] = "must be 1 to 20 lowercase letters, digits or hyphens, starting with a letter (e.g. stable, beta)"
		} else {
			c.AgentChannel = &s
		}
	}
	if len(bad) > 0 {
		return Changes{}, apperr.InvalidFields(bad)
	}
	return c, nil
}

// forCreate fills the defaults of a new client; the name is required.
func (c Changes) forCreate() (Changes, error) {
	if c.Name == nil {
		return c, apperr.InvalidFields(map[string]string{"name": "required"})
	}
	def := func(p **string, v string) {
		if *p == nil {
			*p = &v
		}
	}
	def(&c.LicenseTier, DefaultTier)
	def(&c.AgentChannel, DefaultChannel)
	if c.MaxMachines == nil {
		n := DefaultMax
		c.MaxMachines = &n
	}
	if c.Active == nil {
		t := true
		c.Active = &t
	}
	return c, nil
}

func validTier(s string) bool {
	for _, t := range Tiers {
		if s == t {
			return true
		}
	}
	return false
}
