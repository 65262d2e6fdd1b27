package machines

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/fleetcache"
)

// Overview is the fleet summary of GET /api/overview. The machine statuses partition the
// fleet (online + offline + alert = total: a machine in alert is not also counted online),
// as the list's status filter does.
type Overview struct {
	Machines struct {
		Total   int `json:"total"`
		Online  int `json:"online"`
		Offline int `json:"offline"`
		Alert   int `json:"alert"`
	} `json:"machines"`
	Certificates struct {
		Expiring int `json:"expiring"` // within 30 days
		Expired  int `json:"expired"`
		Revoked  int `json:"revoked"`
	} `json:"certificates"`
	Licence struct {
		Tier        string     `json:"tier"`
		MaxMachines int        `json:"max_machines"`
		Used        int        `json:"used"`
		ExpiresAt   *time.Time `json:"expires_at"`
		DaysLeft    *int       `json:"days_left"` // whole days to expiry, negative once expired; null without expiry
	} `json:"licence"`
	Groups int `json:"groups"`
}

// GetOverview counts the client's live machines by status and certificate status at now
// in one statement (one pass over the client's machines), with the licence and the group count. The machine count it finds
// refreshes the machines:count cache (licence checks read it).
func GetOverview(ctx context.Context, pool *pgxpool.Pool, store cache.Store, clientID string, now time.Time) (Overview, error) {
	var o Overview
	m, c, l := &o.Machines, &o.Certificates, &o.Licence
	err := pool.QueryRow(ctx, `
		WITH fleet AS (
			SELECT `+statusSQL("$2")+` AS status, `+certStatusSQL("$2", "$3")+` AS cert
			FROM machines m WHERE m.client_id = $1 AND m.deleted_at IS NULL),
		counts AS (
			SELECT count(*) AS total, count(*) FILTER (WHERE status = 'online') AS online,
			       count(*) FILTER (WHERE status = 'offline') AS offline, count(*) FILTER (WHERE status = 'alert') AS alert,
			       count(*) FILTER (WHERE cert = 'expiring') AS expiring, count(*) FILTER (WHERE cert = 'expired') AS expired,
			       count(*) FILTER (WHERE cert = 'revoked') AS revoked
			FROM fleet)
		SELECT n.total, n.online, n.offline, n.alert, n.expiring, n.expired, n.revoked,
		       c.license_tier, c.max_machines, c.license_expires_at,
		       (SELECT count(*) FROM machine_groups g WHERE g.client_id = c.id)
		FROM clients c CROSS JOIN counts n WHERE c.id = $1`, clientID, now, expiringBefore(now)).
		Scan(&m.Total, &m.Online, &m.Offline, &m.Alert, &c.Expiring, &c.Expired, &c.Revoked,
			&l.Tier, &l.MaxMachines, &l.ExpiresAt, &o.Groups)
	if err != nil {
		return Overview{}, db.Error(err, "machines: overview")
	}
	l.Used = m.Total
	if l.ExpiresAt != nil {
		d := int(math.Floor(l.ExpiresAt.Sub(now).Hours() / 24))
		l.DaysLeft = &d
	}
	store.Set(ctx, fleetcache.CountKey(clientID), m.Total, fleetcache.CountTTL)
	return o, nil
}
