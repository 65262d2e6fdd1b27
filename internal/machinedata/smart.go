package machinedata

import (
	"context"
	"net/http"
	"net/url"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/db"
)

// SMARTDevice is a device's latest SMART reading.
type SMARTDevice struct {
	Device     string    `json:"device"`
	RecordedAt time.Time `json:"recorded_at"`
	Model      *string   `json:"model"`
	Serial     *string   `json:"serial_number"`
	SMARTReading
	Attributes json.RawMessage `json:"attributes"`
}

// SMARTReading is what a device's history tracks.
type SMARTReading struct {
	HealthStatus        string   `json:"health_status"`
	TemperatureC        *int32   `json:"temperature_c"`
	PowerOnHours        *int64   `json:"power_on_hours"`
	ReallocatedSectors  *int64   `json:"reallocated_sectors"`
	PendingSectors      *int64   `json:"pending_sectors"`
	UncorrectableErrors *int64   `json:"uncorrectable_errors"`
	WearLevelPercent    *float64 `json:"wear_level_percent"`
}

// SMARTPoint is a device's last reading of one hour.
type SMARTPoint struct {
	RecordedAt time.Time `json:"recorded_at"`
	SMARTReading
}

// SMARTLatest is GET /api/machines/{id}/smart without a device.
type SMARTLatest struct {
	MachineID     string        `json:"machine_id"`
	RetentionDays int           `json:"retention_days"`
	Devices       []SMARTDevice `json:"devices"`
}

// SMARTHistory is GET /api/machines/{id}/smart?device=...
type SMARTHistory struct {
	MachineID string `json:"machine_id"`
	Device    string `json:"device"`
	Window
	Points []SMARTPoint `json:"points"`
}

// MaxDeviceLen is smart_data.device's length.
const MaxDeviceLen = 255

// HandleSMART is GET /api/machines/{id}/smart: each device's latest reading within the
// licence's retention or, with ?device=, that device's history (the last reading of each
// hour) over period or from/to like the other histories.
func HandleSMART(d Deps) http.Handler {
	return d.serve(func(ctx context.Context, q url.Values, m machine) (any, error) {
		bad := problems{}
		device := bad.text(q, "device", MaxDeviceLen)
		now := d.Clock.Now()
		if device == "" && bad["device"] == "" {
			for _, name := range []string{"period", "from", "to"} {
				if q.Has(name) {
					bad["device"] = "is required with " + name + " (the history is per device)"
				}
			}
			if err := bad.err(); err != nil {
				return nil, err
			}
			devs, err := latestSMART(ctx, d, m.id, now.AddDate(0, 0, -m.metricsDays))
			return SMARTLatest{MachineID: m.id, RetentionDays: m.metricsDays, Devices: devs}, err
		}
		w := bad.window(q, now, m.metricsDays)
		if err := bad.err(); err != nil {
			return nil, err
		}
		pts, err := smartHistory(ctx, d, m.id, device, w)
		return SMARTHistory{MachineID: m.id, Device: device, Window: w, Points: pts}, err
	})
}

func latestSMART(ctx context.Context, d Deps, machineID string, since time.Time) ([]SMARTDevice, error) {
	rows, err := d.Pool.Query(ctx, `
		SELECT DISTINCT ON (device) device, recorded_at, model, serial_number, health_status, temperature_c, power_on_hours,
		       reallocated_sectors, pending_sectors, uncorrectable_errors, wear_level_percent::float8, attributes::text
		FROM smart_data WHERE machine_id = $1 AND recorded_at >= $2
		ORDER BY device, recorded_at DESC`, machineID, since)
	if err != nil {
		return nil, db.Error(err, "machinedata: smart")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SMARTDevice, error) {
		var s SMARTDevice
		var attrs *string
		err := row.Scan(&s.Device, &s.RecordedAt, &s.Model, &s.Serial, &s.HealthStatus, &s.TemperatureC, &s.PowerOnHours,
			&s.ReallocatedSectors, &s.PendingSectors, &s.UncorrectableErrors, &s.WearLevelPercent, &attrs)
		s.RecordedAt, s.Attributes = s.RecordedAt.UTC(), rawJSON(attrs)
		return s, err
	})
	return nonNil(out), db.Error(err, "machinedata: smart")
}

func smartHistory(ctx context.Context, d Deps, machineID, device string, w Window) ([]SMARTPoint, error) {
	rows, err := d.Pool.Query(ctx, `
		SELECT DISTINCT ON (date_trunc('hour', recorded_at)) recorded_at, health_status, temperature_c, power_on_hours,
		       reallocated_sectors, pending_sectors, uncorrectable_errors, wear_level_percent::float8
		FROM smart_data WHERE machine_id = $1 AND device = $2 AND recorded_at >= $3 AND recorded_at < $4
		ORDER BY date_trunc('hour', recorded_at), recorded_at DESC`, machineID, device, w.From, w.To)
	if err != nil {
		return nil, db.Error(err, "machinedata: smart history")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SMARTPoint, error) {
		var s SMARTPoint
		err := row.Scan(&s.RecordedAt, &s.HealthStatus, &s.TemperatureC, &s.PowerOnHours,
			&s.ReallocatedSectors, &s.PendingSectors, &s.UncorrectableErrors, &s.WearLevelPercent)
		s.RecordedAt = s.RecordedAt.UTC()
		return s, err
	})
	return nonNil(out), db.Error(err, "machinedata: smart history")
}

// rawJSON is a JSON column read as text; NULL stays null.
func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
