package heartbeat

import (
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
)

// The machine_inventory columns each collector feeds (written only by a new heartbeat:
// see store.go) (spec "Colonnes machine_inventory"):
// a heartbeat carrying a collector rewrites that collector's columns and no others.

// Security is the part of the security collector the inventory reads.
type Security struct {
	AntivirusName     *string           `json:"antivirus_name"`
	AntivirusVersion  *string           `json:"antivirus_version"`
	AntivirusEnabled  *bool             `json:"antivirus_enabled"`
	AntivirusUpdated  *bool             `json:"antivirus_updated"`
	FirewallEnabled   *bool             `json:"firewall_enabled"`
	BitlockerEnabled  *bool             `json:"bitlocker_enabled"`
	SecureBootEnabled *bool             `json:"secure_boot_enabled"`
	Ports             []json.RawMessage `json:"ports"`
	RiskyPorts        []json.RawMessage `json:"risky_ports"`
}

// Services is the part of the services collector the inventory reads.
type Services struct {
	Services []struct {
		Status string `json:"status"`
	} `json:"services"`
}

// Software is the part of the software collector the inventory reads (installed software
// and local users: the spec puts users under "software").
type Software struct {
	Software []json.RawMessage `json:"software"`
	Users    []struct {
		Admin bool `json:"admin"`
	} `json:"users"`
}

// Network is the part of the network collector the inventory reads.
type Network struct {
	Interfaces json.RawMessage `json:"interfaces"`
}

// Patches is the patches collector's inventory part.
type Patches struct {
	PendingUpdates  *int32     `json:"pending_updates"`
	SecurityUpdates *int32     `json:"security_updates"`
	RebootRequired  *bool      `json:"reboot_required"`
	AutoUpdate      *bool      `json:"auto_update"`
	LastCheck       *time.Time `json:"last_check"`
}

// Inventory is what the heartbeat's collectors change in machine_inventory.
type Inventory struct {
	security, services, software, network, patches []any // statement arguments after machine_id
}

const (
	upsertSecurity = `
INSERT INTO machine_inventory (machine_id, antivirus_name, antivirus_version, antivirus_enabled, antivirus_updated,
    firewall_enabled, bitlocker_enabled, secure_boot_enabled, ports_open, ports_risky_open, all_ports, risky_ports_details, updated_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13 WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id) DO UPDATE SET antivirus_name = EXCLUDED.antivirus_name, antivirus_version = EXCLUDED.antivirus_version,
    antivirus_enabled = EXCLUDED.antivirus_enabled, antivirus_updated = EXCLUDED.antivirus_updated,
    firewall_enabled = EXCLUDED.firewall_enabled, bitlocker_enabled = EXCLUDED.bitlocker_enabled,
    secure_boot_enabled = EXCLUDED.secure_boot_enabled, ports_open = EXCLUDED.ports_open,
    ports_risky_open = EXCLUDED.ports_risky_open, all_ports = EXCLUDED.all_ports,
    risky_ports_details = EXCLUDED.risky_ports_details, updated_at = EXCLUDED.updated_at`
	upsertServices = `
INSERT INTO machine_inventory (machine_id, services_total, services_running, services_failed, all_services, failed_services, updated_at)
SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb, $7 WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id) DO UPDATE SET services_total = EXCLUDED.services_total, services_running = EXCLUDED.services_running,
    services_failed = EXCLUDED.services_failed, all_services = EXCLUDED.all_services,
    failed_services = EXCLUDED.failed_services, updated_at = EXCLUDED.updated_at`
	upsertSoftware = `
INSERT INTO machine_inventory (machine_id, software_count, software_details, users_total, users_admin, users_details, updated_at)
SELECT $1, $2, $3::jsonb, $4, $5, $6::jsonb, $7 WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id) DO UPDATE SET software_count = EXCLUDED.software_count, software_details = EXCLUDED.software_details,
    users_total = EXCLUDED.users_total, users_admin = EXCLUDED.users_admin, users_details = EXCLUDED.users_details, updated_at = EXCLUDED.updated_at`
	upsertNetwork = `
INSERT INTO machine_inventory (machine_id, network_interfaces, updated_at) SELECT $1, $2::jsonb, $3 WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id) DO UPDATE SET network_interfaces = EXCLUDED.network_interfaces, updated_at = EXCLUDED.updated_at`
	upsertPatches = `
INSERT INTO machine_inventory (machine_id, pending_updates, security_updates, reboot_required, patches_auto_update, patches_last_check, updated_at)
SELECT $1, $2, $3, $4, $5, $6, $7 WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id) DO UPDATE SET pending_updates = EXCLUDED.pending_updates, security_updates = EXCLUDED.security_updates,
    reboot_required = EXCLUDED.reboot_required, patches_auto_update = EXCLUDED.patches_auto_update,
    patches_last_check = EXCLUDED.patches_last_check, updated_at = EXCLUDED.updated_at`
)

// jsonText is raw JSON as a text argument cast to jsonb in SQL; nil stays NULL.
func jsonText(raw []byte) *string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	s := string(raw)
	return &s
}

func jsonOf(v any) *string {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return jsonText(b)
}

// deriveInventory decodes the collectors that feed machine_inventory, adding to bad any
// that does not have the expected shape.
func deriveInventory(collectors map[string]json.RawMessage, bad problems) *Inventory {
	inv := &Inventory{}
	decode := func(name string, dst any) bool {
		raw, ok := collectors[name]
		if !ok {
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			bad.add("collectors."+name, "does not have the expected shape: %v", err)
			return false
		}
		return true
	}
	var sec Security
	if decode("security", &sec) {
		if sec.AntivirusName != nil {
			bad.text("collectors.security.antivirus_name", *sec.AntivirusName, 255, false)
		}
		risky := sec.RiskyPorts
		if risky == nil {
			risky = []json.RawMessage{}
		}
		ports := sec.Ports
		if ports == nil {
			ports = []json.RawMessage{}
		}
		inv.security = []any{sec.AntivirusName, sec.AntivirusVersion, sec.AntivirusEnabled, sec.AntivirusUpdated,
			sec.FirewallEnabled, sec.BitlockerEnabled, sec.SecureBootEnabled, int32(len(ports)), int32(len(risky)),
			jsonOf(ports), jsonOf(risky)}
	}
	var svc Services
	if decode("services", &svc) {
		var running, failed int32
		var failedList []json.RawMessage
		var all []json.RawMessage
		_ = json.Unmarshal(collectors["services"], &struct {
			Services *[]json.RawMessage `json:"services"`
		}{&all})
		for i, s := range svc.Services {
			switch s.Status {
			case "running":
				running++
			case "failed":
				failed++
				failedList = append(failedList, all[i])
			}
		}
		if failedList == nil {
			failedList = []json.RawMessage{}
		}
		if all == nil {
			all = []json.RawMessage{}
		}
		inv.services = []any{int32(len(svc.Services)), running, failed, jsonOf(all), jsonOf(failedList)}
	}
	var sw Software
	if decode("software", &sw) {
		var users []json.RawMessage
		_ = json.Unmarshal(collectors["software"], &struct {
			Users *[]json.RawMessage `json:"users"`
		}{&users})
		var admins int32
		for _, u := range sw.Users {
			if u.Admin {
				admins++
			}
		}
		if sw.Software == nil {
			sw.Software = []json.RawMessage{}
		}
		if users == nil {
			users = []json.RawMessage{}
		}
		inv.software = []any{int32(len(sw.Software)), jsonOf(sw.Software), int32(len(sw.Users)), admins, jsonOf(users)}
	}
	var nw Network
	if decode("network", &nw) {
		inv.network = []any{jsonText(nw.Interfaces)}
	}
	var pt Patches
	if decode("patches", &pt) {
		inv.patches = []any{pt.PendingUpdates, pt.SecurityUpdates, pt.RebootRequired, pt.AutoUpdate, pt.LastCheck}
	}
	return inv
}

// queue adds the inventory upserts to b (one statement per collector present), stamped
// updated_at = now (the heartbeat's instant; the last argument of each statement).
func (inv *Inventory) queue(b *pgx.Batch, machineID string, now time.Time) {
	if inv == nil {
		return
	}
	for _, s := range []struct {
		sql  string
		args []any
	}{{upsertSecurity, inv.security}, {upsertServices, inv.services}, {upsertSoftware, inv.software},
		{upsertNetwork, inv.network}, {upsertPatches, inv.patches}} {
		if s.args != nil {
			args := append(append(make([]any, 0, len(s.args)+2), machineID), s.args...)
			b.Queue(s.sql, append(args, now)...)
		}
	}
}
