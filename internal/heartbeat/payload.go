package heartbeat

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Payload is one heartbeat as the agent sends it.
type Payload struct {
	RecordedAt   time.Time                  `json:"recorded_at"`
	AgentVersion string                     `json:"agent_version,omitempty"`
	Metrics      *Metrics                   `json:"metrics"`
	Disks        []Disk                     `json:"disks,omitempty"`
	Events       []Event                    `json:"events,omitempty"`
	SMART        []SMART                    `json:"smart,omitempty"`
	Collectors   map[string]json.RawMessage `json:"collectors,omitempty"`
}

// Metrics are the machine readings of one heartbeat (table metrics). Optional readings
// are omitted when the machine has no sensor for them.
type Metrics struct {
	CPUPercent    *float64 `json:"cpu_percent"`
	RAMPercent    *float64 `json:"ram_percent"`
	RAMUsedBytes  *int64   `json:"ram_used_bytes,omitempty"`
	RAMTotalBytes *int64   `json:"ram_total_bytes,omitempty"`
	CPUTemp       *float64 `json:"cpu_temp,omitempty"`
	BytesRecv     *int64   `json:"bytes_recv,omitempty"`
	BytesSent     *int64   `json:"bytes_sent,omitempty"`
	PacketLoss    *float64 `json:"packet_loss,omitempty"`
	LatencyMS     *float64 `json:"latency_ms,omitempty"`
	DiskLatencyMS *float64 `json:"disk_latency_ms,omitempty"`
	UptimeSeconds *int64   `json:"uptime_seconds,omitempty"`
	ProcessCount  *int32   `json:"process_count,omitempty"`
}

// Disk is one disk_info row (every column of the spec's "Colonnes disk_info").
type Disk struct {
	MountPoint  string   `json:"mount_point"`
	Device      string   `json:"device,omitempty"`
	FSType      string   `json:"fs_type,omitempty"`
	TotalGB     *float64 `json:"total_gb,omitempty"`
	UsedGB      *float64 `json:"used_gb,omitempty"`
	UsedPercent *float64 `json:"used_percent,omitempty"`
	Model       string   `json:"model,omitempty"`
	Interface   string   `json:"interface,omitempty"`
}

// Event is one event_logs row; its position in the heartbeat is its seq.
type Event struct {
	EventTime time.Time `json:"event_time"`
	LogName   string    `json:"log_name,omitempty"`
	Source    string    `json:"source,omitempty"`
	EventID   *int32    `json:"event_id,omitempty"`
	Level     string    `json:"level,omitempty"`
	Message   string    `json:"message,omitempty"`
}

// SMART is one smart_data row.
type SMART struct {
	Device              string          `json:"device"`
	Model               string          `json:"model,omitempty"`
	SerialNumber        string          `json:"serial_number,omitempty"`
	HealthStatus        string          `json:"health_status,omitempty"`
	TemperatureC        *int32          `json:"temperature_c,omitempty"`
	PowerOnHours        *int64          `json:"power_on_hours,omitempty"`
	ReallocatedSectors  *int64          `json:"reallocated_sectors,omitempty"`
	PendingSectors      *int64          `json:"pending_sectors,omitempty"`
	UncorrectableErrors *int64          `json:"uncorrectable_errors,omitempty"`
	WearLevelPercent    *float64        `json:"wear_level_percent,omitempty"`
	Attributes          json.RawMessage `json:"attributes,omitempty"`
}

// Collectors are the spec's collector names (machine_collector_data.collector).
var Collectors = []string{"metrics", "storage", "storage_health", "network", "services", "security", "software", "patches"}

// Bounds of a heartbeat beyond the columns' own.
const (
	MaxDisks          = 64
	MaxEvents         = 1000
	MaxSMART          = 64
	MaxMessageRunes   = 32 << 10 // event message (TEXT): bounded all the same
	MaxCollectorBytes = 4 << 20  // one collector snapshot
	MaxFuture         = 5 * time.Minute
	maxDecimal10_2    = 99999999.99 // DECIMAL(10,2)
)

var eventLevels = map[string]bool{"critical": true, "error": true, "warning": true, "information": true, "verbose": true}

// healthStatuses maps what agents send as a SMART health status, lower-cased and trimmed,
// to the stored value (passed, warning, failed, unknown). Agents pass on what smartctl
// prints ("PASSED", "FAILED!", "OK" for SCSI disks, ...): an agent cannot help it, so the
// words are normalised rather than refused; a word nobody knows is stored as unknown.
var healthStatuses = map[string]string{
	"passed": "passed", "pass": "passed", "ok": "passed", "good": "passed", "healthy": "passed",
	"warning": "warning", "warn": "warning", "pre-fail": "warning", "prefail": "warning", "degraded": "warning",
	"failed": "failed", "failed!": "failed", "fail": "failed", "failing_now": "failed", "failing": "failed", "bad": "failed",
	"unknown": "unknown",
}

// NormalizeHealth is the stored health status for what an agent sent ("" stays "").
func NormalizeHealth(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return ""
	}
	if v, ok := healthStatuses[s]; ok {
		return v
	}
	return "unknown"
}

// Retention is how far back a client's heartbeat may be dated (license_retention).
type Retention struct {
	MetricsDays int
	EventsDays  int
}

// problems collects bad fields by name.
type problems map[string]string

func (p problems) add(field, format string, args ...any) {
	if _, dup := p[field]; !dup {
		p[field] = fmt.Sprintf(format, args...)
	}
}

func (p problems) text(field, s string, max int, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		p.add(field, "is required")
	case !utf8.ValidString(s):
		p.add(field, "must be valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		p.add(field, "must not contain NUL characters")
	case utf8.RuneCountInString(s) > max:
		p.add(field, "must be at most %d characters", max)
	}
}

func (p problems) percent(field string, v *float64) {
	if v != nil && !(*v >= 0 && *v <= 100) {
		p.add(field, "must be between 0 and 100")
	}
}

func (p problems) nonNegF(field string, v *float64, max float64) {
	if v != nil && !(*v >= 0 && *v <= max) {
		p.add(field, "must be between 0 and %g", max)
	}
}

func (p problems) nonNeg(field string, v *int64) {
	if v != nil && *v < 0 {
		p.add(field, "must not be negative")
	}
}

func (p problems) when(field string, t time.Time, now time.Time, days int) {
	switch {
	case t.IsZero():
		p.add(field, "is required (RFC 3339 timestamp)")
	case t.After(now.Add(MaxFuture)):
		p.add(field, "must not be more than 5 minutes in the future")
	case t.Before(now.AddDate(0, 0, -days)):
		p.add(field, "must not be older than the licence's retention (%d days)", days)
	}
}

// Validate checks everything before anything is written; it returns each bad field with
// what is wrong ("disks[2].used_percent": "must be between 0 and 100"), nil when valid.
//
// Validate also normalises what an agent collects without being able to vouch for it:
// collector snapshots and SMART attributes (free-form JSON) have \u0000, unpaired
// surrogates and invalid UTF-8 replaced by U+FFFD (see sanitizeJSON), and SMART health
// statuses are mapped to the stored words (NormalizeHealth). Every other text field is
// checked and refused (400 naming it) when PostgreSQL could not store it.
func (p *Payload) Validate(now time.Time, ret Retention) (map[string]string, *Inventory) {
	bad := problems{}
	p.sanitize(bad)
	bad.when("recorded_at", p.RecordedAt, now, ret.MetricsDays)
	bad.text("agent_version", p.AgentVersion, 50, false)
	bad.metrics(p.Metrics)
	bad.disks(p.Disks)
	bad.events(p.Events, now, ret.EventsDays)
	bad.smart(p.SMART)
	bad.collectors(p.Collectors)
	if len(bad) > 0 {
		return bad, nil
	}
	inv := deriveInventory(p.Collectors, bad)
	if len(bad) > 0 {
		return bad, nil
	}
	return nil, inv
}

// sanitize cleans the free-form JSON an agent collects and normalises SMART health words.
func (p *Payload) sanitize(bad problems) {
	for name, raw := range p.Collectors {
		clean, ok := sanitizeJSON(raw)
		if !ok {
			bad.add("collectors."+name, "must not nest deeper than %d levels", MaxJSONDepth)
		}
		p.Collectors[name] = clean
	}
	for i := range p.SMART {
		s := &p.SMART[i]
		s.HealthStatus = NormalizeHealth(s.HealthStatus)
		if len(s.Attributes) > 0 {
			clean, ok := sanitizeJSON(s.Attributes)
			if !ok {
				bad.add(fmt.Sprintf("smart[%d].attributes", i), "must not nest deeper than %d levels", MaxJSONDepth)
			}
			s.Attributes = clean
		}
	}
}

func (p problems) metrics(m *Metrics) {
	if m == nil {
		p.add("metrics", "is required")
		return
	}
	if m.CPUPercent == nil {
		p.add("metrics.cpu_percent", "is required")
	}
	if m.RAMPercent == nil {
		p.add("metrics.ram_percent", "is required")
	}
	p.metricRanges(m)
}

func (p problems) metricRanges(m *Metrics) {
	p.percent("metrics.cpu_percent", m.CPUPercent)
	p.percent("metrics.ram_percent", m.RAMPercent)
	p.percent("metrics.packet_loss", m.PacketLoss)
	p.nonNeg("metrics.ram_used_bytes", m.RAMUsedBytes)
	p.nonNeg("metrics.ram_total_bytes", m.RAMTotalBytes)
	p.nonNeg("metrics.bytes_recv", m.BytesRecv)
	p.nonNeg("metrics.bytes_sent", m.BytesSent)
	p.nonNeg("metrics.uptime_seconds", m.UptimeSeconds)
	p.nonNegF("metrics.latency_ms", m.LatencyMS, 1e9)
	p.nonNegF("metrics.disk_latency_ms", m.DiskLatencyMS, 1e9)
	if m.CPUTemp != nil && !(*m.CPUTemp >= -100 && *m.CPUTemp <= 200) {
		p.add("metrics.cpu_temp", "must be between -100 and 200")
	}
	if m.ProcessCount != nil && *m.ProcessCount < 0 {
		p.add("metrics.process_count", "must not be negative")
	}
	if m.RAMUsedBytes != nil && m.RAMTotalBytes != nil && *m.RAMUsedBytes > *m.RAMTotalBytes {
		p.add("metrics.ram_used_bytes", "must not exceed ram_total_bytes")
	}
}

func (p problems) disks(disks []Disk) {
	if len(disks) > MaxDisks {
		p.add("disks", "at most %d disks", MaxDisks)
	}
	mounts := map[string]bool{}
	for i, d := range disks {
		f := func(name string) string { return fmt.Sprintf("disks[%d].%s", i, name) }
		p.text(f("mount_point"), d.MountPoint, 255, true)
		if mounts[d.MountPoint] {
			p.add(f("mount_point"), "is listed twice")
		}
		mounts[d.MountPoint] = true
		p.text(f("device"), d.Device, 255, false)
		p.text(f("fs_type"), d.FSType, 50, false)
		p.text(f("model"), d.Model, 255, false)
		p.text(f("interface"), d.Interface, 50, false)
		p.nonNegF(f("total_gb"), d.TotalGB, maxDecimal10_2)
		p.nonNegF(f("used_gb"), d.UsedGB, maxDecimal10_2)
		p.percent(f("used_percent"), d.UsedPercent)
	}
}

func (p problems) events(events []Event, now time.Time, days int) {
	if len(events) > MaxEvents {
		p.add("events", "at most %d events", MaxEvents)
	}
	for i, e := range events {
		f := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		p.when(f("event_time"), e.EventTime, now, days)
		p.text(f("log_name"), e.LogName, 100, false)
		p.text(f("source"), e.Source, 255, false)
		p.text(f("message"), e.Message, MaxMessageRunes, false)
		if e.Level != "" && !eventLevels[e.Level] {
			p.add(f("level"), "must be one of critical, error, warning, information, verbose")
		}
	}
}

func (p problems) smart(devices []SMART) {
	if len(devices) > MaxSMART {
		p.add("smart", "at most %d devices", MaxSMART)
	}
	seen := map[string]bool{}
	for i, s := range devices {
		f := func(name string) string { return fmt.Sprintf("smart[%d].%s", i, name) }
		p.text(f("device"), s.Device, 255, true)
		if seen[s.Device] {
			p.add(f("device"), "is listed twice")
		}
		seen[s.Device] = true
		p.text(f("model"), s.Model, 255, false)
		p.text(f("serial_number"), s.SerialNumber, 100, false)
		p.nonNeg(f("power_on_hours"), s.PowerOnHours)
		p.nonNeg(f("reallocated_sectors"), s.ReallocatedSectors)
		p.nonNeg(f("pending_sectors"), s.PendingSectors)
		p.nonNeg(f("uncorrectable_errors"), s.UncorrectableErrors)
		p.percent(f("wear_level_percent"), s.WearLevelPercent)
		if len(s.Attributes) > 0 && !validJSONObject(s.Attributes) {
			p.add(f("attributes"), "must be a JSON object")
		}
	}
}

func (p problems) collectors(collectors map[string]json.RawMessage) {
	for name, raw := range collectors {
		f := "collectors." + name
		switch {
		case !knownCollector(name):
			p.add(f, "unknown collector; expected one of %s", strings.Join(Collectors, ", "))
		case len(raw) > MaxCollectorBytes:
			p.add(f, "must be at most %d bytes", MaxCollectorBytes)
		case !validJSONObject(raw):
			p.add(f, "must be a JSON object")
		}
	}
}

func knownCollector(name string) bool {
	for _, c := range Collectors {
		if c == name {
			return true
		}
	}
	return false
}

func validJSONObject(raw json.RawMessage) bool {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	return strings.HasPrefix(s, "{") && json.Valid(raw)
}

// NextInterval is the spec's dynamic interval: 30 s while the machine is in alert
// (CPU > 80 % or RAM > 85 %), otherwise 60 s.
func NextInterval(cpu, ram float64) int {
	if cpu > 80 || ram > 85 {
		return 30
	}
	return 60
}
