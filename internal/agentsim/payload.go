package agentsim

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"
)

// state is one simulated machine: its disks fill slowly, its load follows the day.
type state struct {
	rng         *mrand.Rand
	phase       float64 // hours: machines do not all peak at once
	base        float64 // baseline load
	disks       []disk
	last        time.Time // last recorded_at: strictly increasing per machine
	lastSMART   time.Time
	lastCollect time.Time
	busy        atomic.Bool
	bytesRecv   int64
	bytesSent   int64
}

type disk struct {
	mount, device, fs, model, iface string
	total, used                     float64
}

func newState(i int) *state {
	rng := mrand.New(mrand.NewPCG(uint64(i)+1, 0x0971a11))
	s := &state{rng: rng, phase: rng.Float64() * 4, base: 10 + rng.Float64()*30}
	n := 1 + rng.IntN(4)
	for d := range n {
		total := []float64{128, 256, 476.3, 931.5, 1863}[rng.IntN(5)]
		s.disks = append(s.disks, disk{mount: []string{`C:\`, `D:\`, `E:\`, `F:\`}[d], device: fmt.Sprintf(`\\.\PHYSICALDRIVE%d`, d),
			fs: "NTFS", model: []string{"Samsung 980", "WD Blue SN570", "Crucial MX500", "Seagate Barracuda"}[rng.IntN(4)],
			iface: []string{"NVMe", "SATA"}[rng.IntN(2)], total: total, used: total * (0.2 + rng.Float64()*0.5)})
	}
	return s
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// next is the machine's heartbeat at now: diurnal CPU/RAM with noise and occasional spikes
// above the alert thresholds, disks filling slowly, a few event logs, SMART hourly and the
// collector snapshots every five minutes.
func (s *state) next(now time.Time) map[string]any {
	at := now.Truncate(time.Millisecond)
	if !at.After(s.last) {
		at = s.last.Add(time.Millisecond)
	}
	s.last = at
	hour := float64(at.Hour()) + float64(at.Minute())/60 + s.phase
	day := math.Max(0, math.Sin((hour-8)/24*2*math.Pi)) // working hours peak
	cpu := clamp(s.base+35*day+s.rng.NormFloat64()*6, 0.5, 100)
	ram := clamp(40+25*day+s.rng.NormFloat64()*4, 5, 100)
	if s.rng.Float64() < 0.03 { // a spike above the alert thresholds
		cpu, ram = 81+s.rng.Float64()*19, 86+s.rng.Float64()*14
	}
	s.bytesRecv += int64(s.rng.IntN(5 << 20))
	s.bytesSent += int64(s.rng.IntN(1 << 20))
	p := map[string]any{
		"recorded_at":   at.Format(time.RFC3339Nano),
		"agent_version": "1.4.2",
		"metrics": map[string]any{"cpu_percent": round2(cpu), "ram_percent": round2(ram), "ram_used_bytes": int64(ram / 100 * 16e9),
			"ram_total_bytes": int64(16e9), "cpu_temp": round2(40 + cpu*0.4), "bytes_recv": s.bytesRecv, "bytes_sent": s.bytesSent,
			"packet_loss": round2(math.Max(0, s.rng.NormFloat64()*0.3)), "latency_ms": round2(8 + s.rng.ExpFloat64()*6),
			"disk_latency_ms": round2(0.5 + s.rng.ExpFloat64()), "uptime_seconds": int64(3600 * 24 * 3),
			"process_count": 150 + s.rng.IntN(120)},
	}
	disks := make([]any, len(s.disks))
	for i := range s.disks {
		d := &s.disks[i]
		d.used = math.Min(d.total*0.99, d.used+s.rng.Float64()*0.01)
		disks[i] = map[string]any{"mount_point": d.mount, "device": d.device, "fs_type": d.fs, "total_gb": d.total,
			"used_gb": round2(d.used), "used_percent": round2(d.used / d.total * 100), "model": d.model, "interface": d.iface}
	}
	p["disks"] = disks
	if n := s.rng.IntN(4); n > 0 {
		events := make([]any, n)
		for i := range events {
			lvl := []string{"information", "information", "warning", "error"}[s.rng.IntN(4)]
			events[i] = map[string]any{"event_time": at.Add(-time.Duration(s.rng.IntN(60)) * time.Second).Format(time.RFC3339),
				"log_name": "System", "source": "Service Control Manager", "event_id": 7036 + s.rng.IntN(10), "level": lvl,
				"message": "The Windows Update service entered the running state."}
		}
		p["events"] = events
	}
	if at.Sub(s.lastSMART) >= time.Hour {
		s.lastSMART = at
		smart := make([]any, len(s.disks))
		for i, d := range s.disks {
			smart[i] = map[string]any{"device": d.device, "model": d.model, "serial_number": fmt.Sprintf("SN%08d", s.rng.IntN(1e8)),
				"health_status": "passed", "temperature_c": 35 + s.rng.IntN(15), "power_on_hours": 5000 + s.rng.IntN(20000),
				"reallocated_sectors": 0, "pending_sectors": 0, "uncorrectable_errors": 0, "wear_level_percent": s.rng.IntN(30)}
		}
		p["smart"] = smart
	}
	if at.Sub(s.lastCollect) >= 5*time.Minute {
		s.lastCollect = at
		p["collectors"] = map[string]any{
			"security": map[string]any{"antivirus_name": "Windows Defender", "antivirus_version": "4.18.24090", "antivirus_enabled": true,
				"antivirus_updated": true, "firewall_enabled": true, "bitlocker_enabled": s.rng.IntN(2) == 0, "secure_boot_enabled": true,
				"ports":       []any{map[string]any{"port": 135, "protocol": "tcp"}, map[string]any{"port": 445, "protocol": "tcp"}},
				"risky_ports": []any{map[string]any{"port": 445, "protocol": "tcp"}}},
			"services": map[string]any{"services": []any{map[string]any{"name": "wuauserv", "status": "running"},
				map[string]any{"name": "Spooler", "status": "running"}, map[string]any{"name": "BITS", "status": "stopped"}}},
			"software": map[string]any{"software": []any{map[string]any{"name": "7-Zip", "version": "24.08"},
				map[string]any{"name": "Google Chrome", "version": "131.0"}}, "users": []any{map[string]any{"name": "admin", "admin": true}}},
			"network": map[string]any{"interfaces": []any{map[string]any{"name": "Ethernet", "mac": "00:15:5d:01:02:03", "ips": []string{"10.0.0.12"}, "up": true}}},
			"patches": map[string]any{"pending_updates": s.rng.IntN(6), "security_updates": s.rng.IntN(2), "reboot_required": false, "auto_update": true,
				"last_check": at.Add(-time.Hour).Format(time.RFC3339)},
			"storage": map[string]any{"disks": len(s.disks)},
		}
	}
	return p
}
