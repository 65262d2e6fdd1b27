// Package collectorcfg is what an agent collects and how often: the configuration a
// client sets as its default and a machine overrides, validated strictly and merged.
package collectorcfg

import (
	"fmt"
	"sort"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
)

// Entry configures one collector. A missing field inherits the layer below (the client's
// default, then the built-in default); an effective configuration has both set.
type Entry struct {
	Enabled         *bool `json:"enabled,omitempty"`
	IntervalSeconds *int  `json:"interval_seconds,omitempty"`
}

// Config maps collector names to their entries.
type Config map[string]Entry

// Interval bounds: no collector runs more often than the heartbeat's fastest interval
// (30 s, spec "Intervalle Dynamique") nor less often than daily.
const (
	MinIntervalSeconds = 30
	MaxIntervalSeconds = 86400
)

// defaultIntervals are the built-in intervals (seconds) of the configurable collectors:
// the spec's eight snapshot collectors and the event logs. Cheap, fast-moving readings are
// frequent; inventories that change rarely are hourly or daily.
var defaultIntervals = map[string]int{
	"metrics":        60,
	"storage":        300,
	"storage_health": 3600,
	"network":        60,
	"services":       300,
	"security":       3600,
	"software":       86400,
	"patches":        21600,
	"events":         300,
}

// Names lists the configurable collectors, sorted.
func Names() []string {
	out := make([]string, 0, len(defaultIntervals))
	for n := range defaultIntervals {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Effective is the configuration an agent runs: every collector, enabled at its built-in
// interval, overlaid field by field by each layer in turn (the client's default, then the
// machine's own). Names a layer has that are not collectors are ignored.
func Effective(layers ...Config) Config {
	out := Config{}
	for name, iv := range defaultIntervals {
		enabled, interval := true, iv
		out[name] = Entry{Enabled: &enabled, IntervalSeconds: &interval}
	}
	for _, l := range layers {
		for name, e := range l {
			cur, ok := out[name]
			if !ok {
				continue
			}
			if e.Enabled != nil {
				v := *e.Enabled
				cur.Enabled = &v
			}
			if e.IntervalSeconds != nil {
				v := *e.IntervalSeconds
				cur.IntervalSeconds = &v
			}
			out[name] = cur
		}
	}
	return out
}

// Stored decodes a configuration read from the database (written by Parse's callers;
// "{}" or empty when none was ever set).
func Stored(raw []byte) (Config, error) {
	c := Config{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("collectorcfg: stored configuration: %w", err)
	}
	return c, nil
}

// Parse validates a submitted configuration, given as the body's top-level object:
// {"<collector>": {"enabled": bool, "interval_seconds": int}, ...}. Each entry sets at
// least one field. Every problem is reported under its field name ("software",
// "metrics.interval_seconds"): unknown collectors and fields are refused, not ignored.
func Parse(body map[string]json.RawMessage) (Config, error) {
	bad := map[string]string{}
	out := Config{}
	for name, raw := range body {
		if _, ok := defaultIntervals[name]; !ok {
			bad[name] = "unknown collector; expected one of " + strings.Join(Names(), ", ")
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			bad[name] = "must be an object with enabled and/or interval_seconds"
			continue
		}
		if len(fields) == 0 {
			bad[name] = "must set enabled, interval_seconds or both"
			continue
		}
		var e Entry
		for field, v := range fields {
			key := name + "." + field
			switch field {
			case "enabled":
				var b bool
				if s := string(v); s != "true" && s != "false" || json.Unmarshal(v, &b) != nil {
					bad[key] = "must be true or false"
					continue
				}
				if !b && name == "metrics" {
					bad[key] = "the metrics collector cannot be disabled: every heartbeat carries its readings"
					continue
				}
				e.Enabled = &b
			case "interval_seconds":
				var n int
				if err := json.Unmarshal(v, &n); err != nil || n < MinIntervalSeconds || n > MaxIntervalSeconds {
					bad[key] = fmt.Sprintf("must be a whole number of seconds between %d and %d", MinIntervalSeconds, MaxIntervalSeconds)
					continue
				}
				e.IntervalSeconds = &n
			default:
				bad[key] = "unknown field; expected enabled or interval_seconds"
			}
		}
		out[name] = e
	}
	if len(bad) > 0 {
		return nil, apperr.InvalidFields(bad)
	}
	return out, nil
}
