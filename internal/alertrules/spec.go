// Package alertrules is a client's alert rules (what to watch, where, how loud) and their
// API: list, create, read, change, delete, each change audited.
package alertrules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/jsonfield"
)

// Kinds, metrics and severities the schema accepts (migrations/00012).
var (
	Kinds      = []string{"metric", "offline", "smart", "service", "certificate", "updates", "reboot", "drift"}
	Metrics    = []string{"cpu", "ram", "disk", "cpu_temp", "packet_loss", "latency"}
	Severities = []string{"info", "warning", "critical"}
)

// Bounds of a rule's numbers.
const (
	MaxSeconds     = 86400  // pending_seconds, min_firing_seconds, grace_seconds
	MaxDays        = 365    // days
	MaxLatencyMS   = 600000 // a latency threshold (ms): 10 minutes is already "no answer"
	MaxCPUTemp     = 150    // °C
	MaxNameLen     = 100    // characters
	MaxPatternLen  = 200    // characters of a service_pattern
	maxPercent     = 100    // cpu, ram, disk, packet_loss
	unusedByKind   = "not used by kind %s"
	requiredByKind = "required for kind %s"
)

// Spec is what a rule says: every field a client sets. Nil pointers are NULL columns.
type Spec struct {
	Name              string   `json:"name"`
	Kind              string   `json:"kind"`
	Metric            *string  `json:"metric"`
	Threshold         *float64 `json:"threshold"`
	RecoveryThreshold *float64 `json:"recovery_threshold"`
	PendingSeconds    int      `json:"pending_seconds"`
	MinFiringSeconds  int      `json:"min_firing_seconds"`
	GraceSeconds      *int     `json:"grace_seconds"`
	ServicePattern    *string  `json:"service_pattern"`
	Days              *int     `json:"days"`
	Severity          string   `json:"severity"`
	GroupID           *string  `json:"group_id"`
	MachineID         *string  `json:"machine_id"`
	Enabled           bool     `json:"enabled"`
}

// field is one member of a body: Set when present, V nil when null.
type field[T any] struct {
	Set bool
	V   *T
}

// Patch is a create or PATCH body, each member type-checked.
type Patch struct {
	Name, Kind, Metric, ServicePattern, Severity, GroupID, MachineID field[string]
	Threshold, RecoveryThreshold                                     field[float64]
	PendingSeconds, MinFiringSeconds, GraceSeconds, Days             field[int]
	Enabled                                                          field[bool]
}

// Body is the JSON of POST /api/alert-rules and PATCH /api/alert-rules/{id}.
type Body struct {
	Name              jsonfield.Member `json:"name"`
	Kind              jsonfield.Member `json:"kind"`
	Metric            jsonfield.Member `json:"metric"`
	Threshold         jsonfield.Member `json:"threshold"`
	RecoveryThreshold jsonfield.Member `json:"recovery_threshold"`
	PendingSeconds    jsonfield.Member `json:"pending_seconds"`
	MinFiringSeconds  jsonfield.Member `json:"min_firing_seconds"`
	GraceSeconds      jsonfield.Member `json:"grace_seconds"`
	ServicePattern    jsonfield.Member `json:"service_pattern"`
	Days              jsonfield.Member `json:"days"`
	Severity          jsonfield.Member `json:"severity"`
	GroupID           jsonfield.Member `json:"group_id"`
	MachineID         jsonfield.Member `json:"machine_id"`
	Enabled           jsonfield.Member `json:"enabled"`
}

func oneOf(set []string) string { return "must be one of " + strings.Join(set, ", ") }

// str reads a string member; nullable members may be null, the others may not.
func str(m jsonfield.Member, name string, nullable bool, check func(string) (string, error), bad map[string]string) field[string] {
	if !m.Set {
		return field[string]{}
	}
	if m.Null() {
		if !nullable {
			bad[name] = "must not be null"
		}
		return field[string]{Set: true}
	}
	s, ok := m.String()
	if !ok {
		bad[name] = "must be a string"
		return field[string]{Set: true}
	}
	s, err := check(s)
	if err != nil {
		bad[name] = err.Error()
	}
	return field[string]{Set: true, V: &s}
}

func num[T int | float64](m jsonfield.Member, name string, nullable bool, bad map[string]string) field[T] {
	if !m.Set {
		return field[T]{}
	}
	if m.Null() {
		if !nullable {
			bad[name] = "must not be null"
		}
		return field[T]{Set: true}
	}
	var v T
	if !m.Decode(&v) {
		var zero T
		if _, isInt := any(zero).(int); isInt {
			bad[name] = "must be a whole number"
		} else {
			bad[name] = "must be a number"
		}
		return field[T]{Set: true}
	}
	return field[T]{Set: true, V: &v}
}

func enum(set []string) func(string) (string, error) {
	return func(s string) (string, error) {
		if !slices.Contains(set, s) {
			return s, fmt.Errorf("%s", oneOf(set))
		}
		return s, nil
	}
}

// ParseID accepts a UUID for a scope member (group_id, machine_id).
func ParseID(what string) func(string) (string, error) {
	return func(s string) (string, error) {
		id, ok := httpx.ParseID(s)
		if !ok {
			return s, fmt.Errorf("must be a %s id (uuid)", what)
		}
		return id, nil
	}
}

// Parse type-checks a body's members, naming each bad one.
func (b Body) Parse() (Patch, map[string]string) {
	bad := map[string]string{}
	text := func(max int) func(string) (string, error) {
		return func(s string) (string, error) { return jsonfield.Text(s, 1, max) }
	}
	p := Patch{
		Name:              str(b.Name, "name", false, text(MaxNameLen), bad),
		Kind:              str(b.Kind, "kind", false, enum(Kinds), bad),
		Metric:            str(b.Metric, "metric", true, enum(Metrics), bad),
		ServicePattern:    str(b.ServicePattern, "service_pattern", true, text(MaxPatternLen), bad),
		Severity:          str(b.Severity, "severity", false, enum(Severities), bad),
		GroupID:           str(b.GroupID, "group_id", true, ParseID("group"), bad),
		MachineID:         str(b.MachineID, "machine_id", true, ParseID("machine"), bad),
		Threshold:         num[float64](b.Threshold, "threshold", true, bad),
		RecoveryThreshold: num[float64](b.RecoveryThreshold, "recovery_threshold", true, bad),
		PendingSeconds:    num[int](b.PendingSeconds, "pending_seconds", false, bad),
		MinFiringSeconds:  num[int](b.MinFiringSeconds, "min_firing_seconds", false, bad),
		GraceSeconds:      num[int](b.GraceSeconds, "grace_seconds", true, bad),
		Days:              num[int](b.Days, "days", true, bad),
	}
	if b.Enabled.Set {
		v, ok := b.Enabled.Bool()
		if !ok {
			bad["enabled"] = "must be true or false"
		}
		p.Enabled = field[bool]{Set: true, V: &v}
	}
	return p, bad
}

// Empty reports whether the body changes nothing.
func (p Patch) Empty() bool {
	return !(p.Name.Set || p.Kind.Set || p.Metric.Set || p.ServicePattern.Set || p.Severity.Set || p.GroupID.Set ||
		p.MachineID.Set || p.Threshold.Set || p.RecoveryThreshold.Set || p.PendingSeconds.Set || p.MinFiringSeconds.Set ||
		p.GraceSeconds.Set || p.Days.Set || p.Enabled.Set)
}

// NewSpec is a rule's values before a create body applies: warning, enabled, all machines.
func NewSpec() Spec { return Spec{Severity: "warning", Enabled: true} }

// Apply merges the patch into s and checks the whole rule: each kind's required members,
// members its kind does not use (refused when sent, dropped when inherited from a former
// kind), ranges and the relations between members. bad names each problem.
func (p Patch) Apply(s Spec, bad map[string]string) Spec {
	set := func(f field[string], dst *string) {
		if f.Set && f.V != nil {
			*dst = *f.V
		}
	}
	set(p.Name, &s.Name)
	set(p.Kind, &s.Kind)
	set(p.Severity, &s.Severity)
	if p.Metric.Set {
		s.Metric = p.Metric.V
	}
	if p.ServicePattern.Set {
		s.ServicePattern = p.ServicePattern.V
	}
	if p.GroupID.Set {
		s.GroupID = p.GroupID.V
	}
	if p.MachineID.Set {
		s.MachineID = p.MachineID.V
	}
	if p.Threshold.Set {
		s.Threshold = p.Threshold.V
	}
	if p.RecoveryThreshold.Set {
		s.RecoveryThreshold = p.RecoveryThreshold.V
	}
	if p.PendingSeconds.Set && p.PendingSeconds.V != nil {
		s.PendingSeconds = *p.PendingSeconds.V
	}
	if p.MinFiringSeconds.Set && p.MinFiringSeconds.V != nil {
		s.MinFiringSeconds = *p.MinFiringSeconds.V
	}
	if p.GraceSeconds.Set {
		s.GraceSeconds = p.GraceSeconds.V
	}
	if p.Days.Set {
		s.Days = p.Days.V
	}
	if p.Enabled.Set && p.Enabled.V != nil {
		s.Enabled = *p.Enabled.V
	}
	if len(bad) > 0 {
		return s // a member did not parse: the checks below would repeat it
	}
	if s.Name == "" {
		bad["name"] = "required"
	}
	if s.Kind == "" {
		bad["kind"] = "required: " + oneOf(Kinds)
		return s
	}

	// Members the kind does not use: refused when this body sends them, dropped when an
	// earlier kind left them.
	uses := map[string]bool{}
	switch s.Kind {
	case "metric":
		uses["metric"], uses["threshold"], uses["recovery_threshold"] = true, true, true
	case "offline":
		uses["grace_seconds"] = true
	case "service":
		uses["service_pattern"] = true
	case "certificate", "updates", "reboot":
		uses["days"] = true
	}
	drop := func(name string, sent bool, isSet bool, clear func()) {
		if uses[name] || !isSet {
			return
		}
		if sent {
			bad[name] = fmt.Sprintf(unusedByKind, s.Kind)
		}
		clear()
	}
	drop("metric", p.Metric.Set, s.Metric != nil, func() { s.Metric = nil })
	drop("threshold", p.Threshold.Set, s.Threshold != nil, func() { s.Threshold = nil })
	drop("recovery_threshold", p.RecoveryThreshold.Set, s.RecoveryThreshold != nil, func() { s.RecoveryThreshold = nil })
	drop("grace_seconds", p.GraceSeconds.Set, s.GraceSeconds != nil, func() { s.GraceSeconds = nil })
	drop("service_pattern", p.ServicePattern.Set, s.ServicePattern != nil, func() { s.ServicePattern = nil })
	drop("days", p.Days.Set, s.Days != nil, func() { s.Days = nil })

	need := func(name string, missing bool) {
		if uses[name] && missing && bad[name] == "" {
			bad[name] = fmt.Sprintf(requiredByKind, s.Kind)
		}
	}
	need("metric", s.Metric == nil)
	need("threshold", s.Threshold == nil)
	need("grace_seconds", s.GraceSeconds == nil)
	need("service_pattern", s.ServicePattern == nil)
	need("days", s.Days == nil)

	if s.Metric != nil && bad["threshold"] == "" {
		lo, hi, unit := thresholdRange(*s.Metric)
		inRange := func(name string, v *float64) bool {
			if v != nil && (*v < lo || *v > hi) {
				bad[name] = fmt.Sprintf("must be from %g to %g (%s) for metric %s", lo, hi, unit, *s.Metric)
				return false
			}
			return true
		}
		okT, okR := inRange("threshold", s.Threshold), inRange("recovery_threshold", s.RecoveryThreshold)
		if okT && okR && s.Threshold != nil && s.RecoveryThreshold != nil && *s.RecoveryThreshold > *s.Threshold {
			bad["recovery_threshold"] = "must not exceed threshold: the alert resolves below it (every metric is higher-is-worse)"
		}
	}
	seconds := func(name string, v *int) {
		if v != nil && (*v < 0 || *v > MaxSeconds) {
			bad[name] = fmt.Sprintf("must be from 0 to %d seconds", MaxSeconds)
		}
	}
	seconds("pending_seconds", &s.PendingSeconds)
	seconds("min_firing_seconds", &s.MinFiringSeconds)
	seconds("grace_seconds", s.GraceSeconds)
	if s.Days != nil && (*s.Days < 0 || *s.Days > MaxDays) {
		bad["days"] = fmt.Sprintf("must be from 0 to %d days", MaxDays)
	}
	if s.GroupID != nil && s.MachineID != nil {
		msg := "give group_id or machine_id, not both (neither: every machine)"
		bad["group_id"], bad["machine_id"] = msg, msg
	}
	return s
}

func thresholdRange(metric string) (lo, hi float64, unit string) {
	switch metric {
	case "cpu_temp":
		return 0, MaxCPUTemp, "°C"
	case "latency":
		return 0, MaxLatencyMS, "ms"
	}
	return 0, maxPercent, "%"
}

// closes reports whether changing a rule from old to s ends its open episodes: the kind,
// the metric or the scope changed (the episodes describe a condition the rule no longer
// watches), or the rule was disabled (nothing would ever resolve them).
func closes(old, s Spec) bool {
	eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return old.Kind != s.Kind || !eq(old.Metric, s.Metric) || !eq(old.GroupID, s.GroupID) ||
		!eq(old.MachineID, s.MachineID) || (old.Enabled && !s.Enabled)
}

// changes lists what differs between two versions of a rule, for the audit log.
func changes(old, s Spec) map[string]any {
	out := map[string]any{}
	add := func(name string, a, b any) {
		if fmt.Sprint(deref(a)) != fmt.Sprint(deref(b)) {
			out[name] = map[string]any{"from": deref(a), "to": deref(b)}
		}
	}
	add("name", old.Name, s.Name)
	add("kind", old.Kind, s.Kind)
	add("metric", old.Metric, s.Metric)
	add("threshold", old.Threshold, s.Threshold)
	add("recovery_threshold", old.RecoveryThreshold, s.RecoveryThreshold)
	add("pending_seconds", old.PendingSeconds, s.PendingSeconds)
	add("min_firing_seconds", old.MinFiringSeconds, s.MinFiringSeconds)
	add("grace_seconds", old.GraceSeconds, s.GraceSeconds)
	add("service_pattern", old.ServicePattern, s.ServicePattern)
	add("days", old.Days, s.Days)
	add("severity", old.Severity, s.Severity)
	add("group_id", old.GroupID, s.GroupID)
	add("machine_id", old.MachineID, s.MachineID)
	add("enabled", old.Enabled, s.Enabled)
	return out
}

func deref(v any) any {
	switch p := v.(type) {
	case *string:
		if p != nil {
			return *p
		}
		return nil
	case *float64:
		if p != nil {
			return *p
		}
		return nil
	case *int:
		if p != nil {
			return *p
		}
		return nil
	}
	return v
}
