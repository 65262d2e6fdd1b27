package heartbeat

import (
	"time"

	json "github.com/goccy/go-json"
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

// Inventory is what the heartbeat's collectors change in machine_inventory: one part per
// collector present (nil when absent), each holding exactly the columns it rewrites.
type Inventory struct {
	security *invSecurity
	services *invServices
	software *invSoftware
	network  *invNetwork
	patches  *invPatches
}

// The parts' JSON names are machine_inventory's columns: the group writer hands them to
// jsonb_to_recordset.
type invSecurity struct {
	AntivirusName     *string         `json:"antivirus_name"`
	AntivirusVersion  *string         `json:"antivirus_version"`
	AntivirusEnabled  *bool           `json:"antivirus_enabled"`
	AntivirusUpdated  *bool           `json:"antivirus_updated"`
	FirewallEnabled   *bool           `json:"firewall_enabled"`
	BitlockerEnabled  *bool           `json:"bitlocker_enabled"`
	SecureBootEnabled *bool           `json:"secure_boot_enabled"`
	PortsOpen         int32           `json:"ports_open"`
	PortsRiskyOpen    int32           `json:"ports_risky_open"`
	AllPorts          json.RawMessage `json:"all_ports"`
	RiskyPortsDetails json.RawMessage `json:"risky_ports_details"`
}

type invServices struct {
	ServicesTotal   int32           `json:"services_total"`
	ServicesRunning int32           `json:"services_running"`
	ServicesFailed  int32           `json:"services_failed"`
	AllServices     json.RawMessage `json:"all_services"`
	FailedServices  json.RawMessage `json:"failed_services"`
}

type invSoftware struct {
	SoftwareCount   int32           `json:"software_count"`
	SoftwareDetails json.RawMessage `json:"software_details"`
	UsersTotal      int32           `json:"users_total"`
	UsersAdmin      int32           `json:"users_admin"`
	UsersDetails    json.RawMessage `json:"users_details"`
}

type invNetwork struct {
	NetworkInterfaces json.RawMessage `json:"network_interfaces"`
}

type invPatches struct {
	PendingUpdates    *int32     `json:"pending_updates"`
	SecurityUpdates   *int32     `json:"security_updates"`
	RebootRequired    *bool      `json:"reboot_required"`
	PatchesAutoUpdate *bool      `json:"patches_auto_update"`
	PatchesLastCheck  *time.Time `json:"patches_last_check"`
}

func jsonOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
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
		inv.security = &invSecurity{sec.AntivirusName, sec.AntivirusVersion, sec.AntivirusEnabled, sec.AntivirusUpdated,
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
		inv.services = &invServices{int32(len(svc.Services)), running, failed, jsonOf(all), jsonOf(failedList)}
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
		inv.software = &invSoftware{int32(len(sw.Software)), jsonOf(sw.Software), int32(len(sw.Users)), admins, jsonOf(users)}
	}
	var nw Network
	if decode("network", &nw) {
		inv.network = &invNetwork{nullJSON(nw.Interfaces)}
	}
	var pt Patches
	if decode("patches", &pt) {
		inv.patches = &invPatches{pt.PendingUpdates, pt.SecurityUpdates, pt.RebootRequired, pt.AutoUpdate, pt.LastCheck}
	}
	return inv
}

// nullJSON is raw JSON with an absent value as JSON null (stored as SQL NULL).
func nullJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
