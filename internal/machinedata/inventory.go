package machinedata

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/db"
)

// Inventory is GET /api/machines/{id}/inventory: the requested sections, each null until
// its collector has reported.
type Inventory struct {
	MachineID string `json:"machine_id"`
	// UpdatedAt is when machine_inventory last changed (any section); null before any.
	UpdatedAt *time.Time     `json:"updated_at"`
	Sections  map[string]any `json:"sections"`
}

// Sections and the collector each comes from (spec "Colonnes machine_inventory"; users
// are reported by the software collector, ports by the security collector). storage and
// storage_health have no inventory columns: they are the collector's latest JSON.
var sectionCollector = map[string]string{
	"security": "security", "services": "services", "software": "software", "users": "software",
	"ports": "security", "network": "network", "patches": "patches",
	"storage": "storage", "storage_health": "storage_health",
}

// SectionNames lists the sections in the order the dashboard shows them.
var SectionNames = []string{"security", "services", "software", "users", "ports", "network", "patches", "storage", "storage_health"}

// Collected is when a section's collector last reported, from machine_collector_data.
type Collected struct {
	CollectedAt *time.Time `json:"collected_at"`
}

// SecuritySection is the security collector's protection state.
type SecuritySection struct {
	Collected
	AntivirusName     *string `json:"antivirus_name"`
	AntivirusVersion  *string `json:"antivirus_version"`
	AntivirusEnabled  *bool   `json:"antivirus_enabled"`
	AntivirusUpdated  *bool   `json:"antivirus_updated"`
	FirewallEnabled   *bool   `json:"firewall_enabled"`
	BitlockerEnabled  *bool   `json:"bitlocker_enabled"`
	SecureBootEnabled *bool   `json:"secure_boot_enabled"`
}

// ServicesSection is the services collector's counts and lists.
type ServicesSection struct {
	Collected
	Total    *int32          `json:"services_total"`
	Running  *int32          `json:"services_running"`
	Failed   *int32          `json:"services_failed"`
	All      json.RawMessage `json:"all_services"`
	FailedOf json.RawMessage `json:"failed_services"`
}

// SoftwareSection is the installed software.
type SoftwareSection struct {
	Collected
	Count   *int32          `json:"software_count"`
	Details json.RawMessage `json:"software_details"`
}

// UsersSection is the local accounts.
type UsersSection struct {
	Collected
	Total   *int32          `json:"users_total"`
	Admins  *int32          `json:"users_admin"`
	Details json.RawMessage `json:"users_details"`
}

// PortsSection is the listening ports, the risky ones apart.
type PortsSection struct {
	Collected
	Open         *int32          `json:"ports_open"`
	RiskyOpen    *int32          `json:"ports_risky_open"`
	All          json.RawMessage `json:"all_ports"`
	RiskyDetails json.RawMessage `json:"risky_ports_details"`
}

// NetworkSection is the network interfaces (MAC, addresses, state).
type NetworkSection struct {
	Collected
	Interfaces json.RawMessage `json:"network_interfaces"`
}

// PatchesSection is the update state.
type PatchesSection struct {
	Collected
	PendingUpdates  *int32     `json:"pending_updates"`
	SecurityUpdates *int32     `json:"security_updates"`
	RebootRequired  *bool      `json:"reboot_required"`
	AutoUpdate      *bool      `json:"patches_auto_update"`
	LastCheck       *time.Time `json:"patches_last_check"`
}

// RawSection is a collector's latest snapshot as the agent sent it.
type RawSection struct {
	Collected
	Data json.RawMessage `json:"data"`
}

// HandleInventory is GET /api/machines/{id}/inventory?section=...: one section, or all
// when section is absent.
func HandleInventory(d Deps) http.Handler {
	return d.serve(func(ctx context.Context, q url.Values, m machine) (any, error) {
		want := SectionNames
		if q.Has("section") {
			s := q.Get("section")
			if _, ok := sectionCollector[s]; !ok {
				return nil, problems{"section": "must be one of " + strings.Join(SectionNames, ", ")}.err()
			}
			want = []string{s}
		}
		return readInventory(ctx, d, m.id, want)
	})
}

func readInventory(ctx context.Context, d Deps, machineID string, want []string) (Inventory, error) {
	inv := Inventory{MachineID: machineID, Sections: map[string]any{}}
	collected := map[string]*time.Time{}
	raw := map[string]json.RawMessage{}
	rows, err := d.Pool.Query(ctx, `SELECT collector, data::text, collected_at FROM machine_collector_data WHERE machine_id = $1`, machineID)
	if err != nil {
		return inv, db.Error(err, "machinedata: collector data")
	}
	for rows.Next() {
		var name, data string
		var at time.Time
		if err := rows.Scan(&name, &data, &at); err != nil {
			rows.Close()
			return inv, db.Error(err, "machinedata: collector data")
		}
		at = at.UTC()
		collected[name], raw[name] = &at, json.RawMessage(data)
	}
	if err := rows.Err(); err != nil {
		return inv, db.Error(err, "machinedata: collector data")
	}
	var (
		sec                                         SecuritySection
		svc                                         ServicesSection
		sw                                          SoftwareSection
		us                                          UsersSection
		pt                                          PortsSection
		nw                                          NetworkSection
		pa                                          PatchesSection
		allSvc, failedSvc, swd, usd, ap, rp, ifaces *string
	)
	err = d.Pool.QueryRow(ctx, `
		SELECT antivirus_name, antivirus_version, antivirus_enabled, antivirus_updated, firewall_enabled, bitlocker_enabled,
		       secure_boot_enabled, services_total, services_running, services_failed, all_services::text, failed_services::text,
		       software_count, software_details::text, users_total, users_admin, users_details::text, ports_open,
		       ports_risky_open, all_ports::text, risky_ports_details::text, network_interfaces::text, pending_updates,
		       security_updates, reboot_required, patches_auto_update, patches_last_check, updated_at
		FROM machine_inventory WHERE machine_id = $1`, machineID).Scan(
		&sec.AntivirusName, &sec.AntivirusVersion, &sec.AntivirusEnabled, &sec.AntivirusUpdated, &sec.FirewallEnabled,
		&sec.BitlockerEnabled, &sec.SecureBootEnabled, &svc.Total, &svc.Running, &svc.Failed, &allSvc, &failedSvc,
		&sw.Count, &swd, &us.Total, &us.Admins, &usd, &pt.Open, &pt.RiskyOpen, &ap, &rp, &ifaces, &pa.PendingUpdates,
		&pa.SecurityUpdates, &pa.RebootRequired, &pa.AutoUpdate, &pa.LastCheck, &inv.UpdatedAt)
	if err != nil && !db.IsNoRows(err) {
		return inv, db.Error(err, "machinedata: inventory")
	}
	svc.All, svc.FailedOf, sw.Details, us.Details = rawJSON(allSvc), rawJSON(failedSvc), rawJSON(swd), rawJSON(usd)
	pt.All, pt.RiskyDetails, nw.Interfaces = rawJSON(ap), rawJSON(rp), rawJSON(ifaces)
	if inv.UpdatedAt != nil {
		*inv.UpdatedAt = inv.UpdatedAt.UTC()
	}
	if pa.LastCheck != nil {
		*pa.LastCheck = pa.LastCheck.UTC()
	}
	// A section exists once its collector has reported: its snapshot row, or (for data
	// older than the snapshot table) the column the collector always writes.
	type section struct {
		value    any
		col      *Collected
		fallback bool
	}
	st, sh := &RawSection{Data: raw["storage"]}, &RawSection{Data: raw["storage_health"]}
	sections := map[string]section{
		"security":       {&sec, &sec.Collected, sec.FirewallEnabled != nil || sec.AntivirusName != nil},
		"services":       {&svc, &svc.Collected, svc.Total != nil},
		"software":       {&sw, &sw.Collected, sw.Count != nil},
		"users":          {&us, &us.Collected, us.Total != nil},
		"ports":          {&pt, &pt.Collected, pt.Open != nil},
		"network":        {&nw, &nw.Collected, nw.Interfaces != nil},
		"patches":        {&pa, &pa.Collected, pa.PendingUpdates != nil || pa.RebootRequired != nil},
		"storage":        {st, &st.Collected, false},
		"storage_health": {sh, &sh.Collected, false},
	}
	for _, name := range want {
		s := sections[name]
		at := collected[sectionCollector[name]]
		s.col.CollectedAt = at
		if at == nil && !s.fallback {
			inv.Sections[name] = nil
			continue
		}
		inv.Sections[name] = s.value
	}
	return inv, nil
}
