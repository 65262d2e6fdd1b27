package machines

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
)

// Details is GET /api/machines/{id}: the machine, its certificate, and the latest of what
// its agent reported.
type Details struct {
	Machine       Machine           `json:"machine"`
	Certificate   Certificate       `json:"certificate"`
	LatestMetrics *Metrics          `json:"latest_metrics"` // null before the first heartbeat
	Disks         []Disk            `json:"disks"`          // the newest heartbeat's disks
	Inventory     *InventorySummary `json:"inventory"`      // null until the agent reports one
	Drift         []Drift           `json:"drift"`          // metrics whose drift is detected
	Alerts        []FiringAlert     `json:"alerts"`         // firing now, worst and newest first
}

// FiringAlert is a firing alert of the machine (GET /api/alerts/{id} has the rest).
type FiringAlert struct {
	ID             string     `json:"id"`
	RuleID         *string    `json:"rule_id"` // null once the rule was deleted
	RuleName       string     `json:"rule_name"`
	Severity       string     `json:"severity"`
	StartedAt      *time.Time `json:"started_at"`
	TriggeredAt    *time.Time `json:"triggered_at"`
	LastValue      *float64   `json:"last_value"`
	Threshold      *float64   `json:"threshold"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
}

// Machine is the machine row as the dashboard shows it.
type Machine struct {
	ID                       string     `json:"id"`
	Hostname                 string     `json:"hostname"`
	DisplayName              *string    `json:"display_name"`
	Notes                    string     `json:"notes"`
	Status                   Status     `json:"status"`
	LastSeen                 *time.Time `json:"last_seen"`
	HeartbeatDueAt           *time.Time `json:"heartbeat_due_at"`
	CPUPercent               *float64   `json:"cpu_percent"`
	RAMPercent               *float64   `json:"ram_percent"`
	LastMetricsAt            *time.Time `json:"last_metrics_at"`
	OS                       string     `json:"os"`
	OSVersion                string     `json:"os_version"`
	OSBuild                  *int       `json:"os_build"`
	Arch                     string     `json:"arch"`
	AgentVersion             *string    `json:"agent_version"`
	IPAddress                *string    `json:"ip_address"`
	FingerprintRegistered    bool       `json:"fingerprint_registered"`
	LastConfigSync           *time.Time `json:"last_config_sync"`
	CollectorConfigUpdatedAt time.Time  `json:"collector_config_updated_at"`
	Groups                   []Group    `json:"groups"`
	CreatedAt                time.Time  `json:"created_at"`
	UpdatedAt                time.Time  `json:"updated_at"`
}

// Certificate is the machine's certificate from its cert_* columns (kept in line with
// client_certificates by every heartbeat and revocation), its status computed now.
type Certificate struct {
	Status        certs.Status `json:"status"`
	Serial        *string      `json:"serial"`
	IssuedAt      *time.Time   `json:"issued_at"`
	ExpiresAt     *time.Time   `json:"expires_at"`
	RevokedAt     *time.Time   `json:"revoked_at"`
	DaysRemaining *int         `json:"days_remaining"` // negative once expired
}

// Metrics is the newest metrics row.
type Metrics struct {
	RecordedAt    time.Time `json:"recorded_at"`
	CPUPercent    float64   `json:"cpu_percent"`
	RAMPercent    float64   `json:"ram_percent"`
	RAMUsedBytes  *int64    `json:"ram_used_bytes"`
	RAMTotalBytes *int64    `json:"ram_total_bytes"`
	CPUTemp       *float64  `json:"cpu_temp"`
	BytesRecv     *int64    `json:"bytes_recv"`
	BytesSent     *int64    `json:"bytes_sent"`
	PacketLoss    *float64  `json:"packet_loss"`
	LatencyMS     *float64  `json:"latency_ms"`
	DiskLatencyMS *float64  `json:"disk_latency_ms"`
	UptimeSeconds *int64    `json:"uptime_seconds"`
	ProcessCount  *int      `json:"process_count"`
}

// Disk is one volume of the newest disk report.
type Disk struct {
	RecordedAt  time.Time `json:"recorded_at"`
	MountPoint  string    `json:"mount_point"`
	Device      *string   `json:"device"`
	FSType      *string   `json:"fs_type"`
	TotalGB     *float64  `json:"total_gb"`
	UsedGB      *float64  `json:"used_gb"`
	UsedPercent *float64  `json:"used_percent"`
	Model       *string   `json:"model"`
	Interface   *string   `json:"interface"`
}

// InventorySummary is machine_inventory without its long JSON lists (the inventory route
// serves those).
type InventorySummary struct {
	AntivirusName     *string    `json:"antivirus_name"`
	AntivirusVersion  *string    `json:"antivirus_version"`
	AntivirusEnabled  *bool      `json:"antivirus_enabled"`
	AntivirusUpdated  *bool      `json:"antivirus_updated"`
	FirewallEnabled   *bool      `json:"firewall_enabled"`
	BitlockerEnabled  *bool      `json:"bitlocker_enabled"`
	SecureBootEnabled *bool      `json:"secure_boot_enabled"`
	ServicesTotal     *int       `json:"services_total"`
	ServicesRunning   *int       `json:"services_running"`
	ServicesFailed    *int       `json:"services_failed"`
	SoftwareCount     *int       `json:"software_count"`
	UsersTotal        *int       `json:"users_total"`
	UsersAdmin        *int       `json:"users_admin"`
	PortsOpen         *int       `json:"ports_open"`
	PortsRiskyOpen    *int       `json:"ports_risky_open"`
	PendingUpdates    *int       `json:"pending_updates"`
	SecurityUpdates   *int       `json:"security_updates"`
	RebootRequired    *bool      `json:"reboot_required"`
	PatchesAutoUpdate *bool      `json:"patches_auto_update"`
	PatchesLastCheck  *time.Time `json:"patches_last_check"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// Drift is a metric_baselines row whose drift is detected.
type Drift struct {
	MetricType     string    `json:"metric_type"`
	BaselineMean   *float64  `json:"baseline_mean"`
	BaselineStddev *float64  `json:"baseline_stddev"`
	BaselineP95    *float64  `json:"baseline_p95"`
	CurrentValue   *float64  `json:"current_value"`
	ZScore         *float64  `json:"z_score"`
	Severity       *string   `json:"drift_severity"`
	Explanation    *string   `json:"drift_explanation"`
	LastUpdated    time.Time `json:"last_updated"`
}

// ErrNotFound answers a machine that does not exist, is another client's, or is deleted.
var ErrNotFound = certs.ErrMachineNotFound

// firingAlertsSQL is the machine's firing alerts as a JSON array, critical first, then the
// newest. It rides on the inventory query: a details request stays at four queries, the
// Lambda pool's size.
const firingAlertsSQL = `COALESCE((SELECT json_agg(json_build_object('id', h.id, 'rule_id', h.rule_id,
	    'rule_name', COALESCE(r.name, h.rule_name), 'severity', h.severity, 'started_at', h.started_at,
	    'triggered_at', h.triggered_at, 'last_value', h.last_value, 'threshold', h.threshold,
	    'acknowledged_at', h.acknowledged_at)
	    ORDER BY CASE h.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, h.triggered_at DESC, h.id)
	  FROM alert_rule_history h LEFT JOIN alert_rules r ON r.id = h.rule_id AND r.client_id = h.client_id
	  WHERE h.machine_id = m.id AND h.client_id = m.client_id AND h.state = 'firing'), '[]')`

// liveMachine scopes a details query: $1 the machine, $2 the caller's client.
const liveMachine = `m.id = $1 AND m.client_id = $2 AND m.deleted_at IS NULL`

// GetDetails reads a machine of the client with the spec's four queries in parallel
// (machine, latest metrics, latest disks, inventory and drift), each scoped to the client
// by its join to machines, so none can read another client's rows even alone.
func GetDetails(ctx context.Context, pool *pgxpool.Pool, clientID, machineID string, now time.Time) (Details, error) {
	var d Details
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		m, c := &d.Machine, &d.Certificate
		err := pool.QueryRow(ctx, `
			SELECT m.id, m.hostname, m.display_name, m.notes, `+statusSQL("$3")+`, m.last_seen, m.heartbeat_due_at,
			       m.last_cpu_percent, m.last_ram_percent, m.last_metrics_at, m.os, m.os_version, m.os_build, m.arch,
			       m.agent_version, m.ip_address, m.fingerprint_hash IS NOT NULL, m.last_config_sync,
			       m.collector_config_updated_at, `+groupsSQL+`, m.created_at, m.updated_at,
			       m.cert_serial, m.cert_issued_at, m.cert_expires_at, m.cert_revoked_at
			FROM machines m WHERE `+liveMachine, machineID, clientID, now).
			Scan(&m.ID, &m.Hostname, &m.DisplayName, &m.Notes, &m.Status, &m.LastSeen, &m.HeartbeatDueAt,
				&m.CPUPercent, &m.RAMPercent, &m.LastMetricsAt, &m.OS, &m.OSVersion, &m.OSBuild, &m.Arch,
				&m.AgentVersion, &m.IPAddress, &m.FingerprintRegistered, &m.LastConfigSync,
				&m.CollectorConfigUpdatedAt, &m.Groups, &m.CreatedAt, &m.UpdatedAt,
				&c.Serial, &c.IssuedAt, &c.ExpiresAt, &c.RevokedAt)
		if err != nil {
			return db.Error(err, "machines: details", db.On(db.NoRows, ErrNotFound))
		}
		serial := ""
		if c.Serial != nil {
			serial = *c.Serial
		}
		c.Status = certs.ComputeStatus(serial, c.RevokedAt, c.ExpiresAt, now)
		if c.ExpiresAt != nil {
			days := int(math.Floor(c.ExpiresAt.Sub(now).Hours() / 24)) // as the overview counts them
			c.DaysRemaining = &days
		}
		return nil
	})
	g.Go(func() error {
		var x Metrics
		err := pool.QueryRow(ctx, `
			SELECT x.recorded_at, x.cpu_percent, x.ram_percent, x.ram_used_bytes, x.ram_total_bytes, x.cpu_temp,
			       x.bytes_recv, x.bytes_sent, x.packet_loss, x.latency_ms, x.disk_latency_ms, x.uptime_seconds, x.process_count
			FROM machines m
			JOIN LATERAL (SELECT * FROM metrics WHERE machine_id = m.id ORDER BY recorded_at DESC LIMIT 1) x ON TRUE
			WHERE `+liveMachine, machineID, clientID).
			Scan(&x.RecordedAt, &x.CPUPercent, &x.RAMPercent, &x.RAMUsedBytes, &x.RAMTotalBytes, &x.CPUTemp,
				&x.BytesRecv, &x.BytesSent, &x.PacketLoss, &x.LatencyMS, &x.DiskLatencyMS, &x.UptimeSeconds, &x.ProcessCount)
		switch {
		case db.IsNoRows(err):
			return nil
		case err != nil:
			return db.Error(err, "machines: latest metrics")
		}
		d.LatestMetrics = &x
		return nil
	})
	g.Go(func() error {
		rows, err := pool.Query(ctx, `
			SELECT d.recorded_at, d.mount_point, d.device, d.fs_type, d.total_gb, d.used_gb, d.used_percent, d.model, d.interface
			FROM machines m
			JOIN disk_info d ON d.machine_id = m.id
			  AND d.recorded_at = (SELECT recorded_at FROM disk_info WHERE machine_id = m.id ORDER BY recorded_at DESC LIMIT 1)
			WHERE `+liveMachine+` ORDER BY d.mount_point`, machineID, clientID)
		if err != nil {
			return db.Error(err, "machines: latest disks")
		}
		defer rows.Close()
		d.Disks = []Disk{}
		for rows.Next() {
			var x Disk
			if err := rows.Scan(&x.RecordedAt, &x.MountPoint, &x.Device, &x.FSType, &x.TotalGB, &x.UsedGB, &x.UsedPercent,
				&x.Model, &x.Interface); err != nil {
				return db.Error(err, "machines: latest disks")
			}
			d.Disks = append(d.Disks, x)
		}
		return db.Error(rows.Err(), "machines: latest disks")
	})
	g.Go(func() error {
		var x InventorySummary
		var present bool
		err := pool.QueryRow(ctx, `
			SELECT i.machine_id IS NOT NULL, i.antivirus_name, i.antivirus_version, i.antivirus_enabled, i.antivirus_updated,
			       i.firewall_enabled, i.bitlocker_enabled, i.secure_boot_enabled, i.services_total, i.services_running,
			       i.services_failed, i.software_count, i.users_total, i.users_admin, i.ports_open, i.ports_risky_open,
			       i.pending_updates, i.security_updates, i.reboot_required, i.patches_auto_update, i.patches_last_check,
			       COALESCE(i.updated_at, m.updated_at),
			       COALESCE((SELECT json_agg(json_build_object('metric_type', b.metric_type, 'baseline_mean', b.baseline_mean,
			           'baseline_stddev', b.baseline_stddev, 'baseline_p95', b.baseline_p95, 'current_value', b.current_value,
			           'z_score', b.z_score, 'drift_severity', b.drift_severity, 'drift_explanation', b.drift_explanation,
			           'last_updated', b.last_updated) ORDER BY b.metric_type)
			         FROM metric_baselines b WHERE b.machine_id = m.id AND b.drift_detected), '[]'),
			       `+firingAlertsSQL+`
			FROM machines m LEFT JOIN machine_inventory i ON i.machine_id = m.id
			WHERE `+liveMachine, machineID, clientID).
			Scan(&present, &x.AntivirusName, &x.AntivirusVersion, &x.AntivirusEnabled, &x.AntivirusUpdated,
				&x.FirewallEnabled, &x.BitlockerEnabled, &x.SecureBootEnabled, &x.ServicesTotal, &x.ServicesRunning,
				&x.ServicesFailed, &x.SoftwareCount, &x.UsersTotal, &x.UsersAdmin, &x.PortsOpen, &x.PortsRiskyOpen,
				&x.PendingUpdates, &x.SecurityUpdates, &x.RebootRequired, &x.PatchesAutoUpdate, &x.PatchesLastCheck,
				&x.UpdatedAt, &d.Drift, &d.Alerts)
		switch {
		case db.IsNoRows(err):
			return nil // the machine query answers the 404
		case err != nil:
			return db.Error(err, "machines: inventory")
		}
		if present {
			d.Inventory = &x
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return Details{}, err
	}
	return d, nil
}
