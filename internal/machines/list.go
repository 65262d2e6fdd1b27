package machines

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/fleetcache"
)

// Group is a group a machine belongs to, as list rows and details show it.
type Group struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Color string `json:"color"`
}

// Row is one machine of the list.
type Row struct {
	ID            string       `json:"id"`
	Hostname      string       `json:"hostname"`
	DisplayName   *string      `json:"display_name"`
	Status        Status       `json:"status"`
	LastSeen      *time.Time   `json:"last_seen"`
	CPUPercent    *float64     `json:"cpu_percent"`
	RAMPercent    *float64     `json:"ram_percent"`
	OS            string       `json:"os"`
	OSVersion     string       `json:"os_version"`
	Arch          string       `json:"arch"`
	AgentVersion  *string      `json:"agent_version"`
	IPAddress     *string      `json:"ip_address"`
	CertStatus    certs.Status `json:"cert_status"`
	CertExpiresAt *time.Time   `json:"cert_expires_at"`
	Groups        []Group      `json:"groups"`
	Alerts        AlertSummary `json:"alerts"`
	CreatedAt     time.Time    `json:"created_at"`
}

// AlertSummary is a machine's firing alerts as a list row shows them: how many, and the
// worst severity among them (null when none fires).
type AlertSummary struct {
	Firing   int     `json:"firing"`
	Severity *string `json:"severity"`
}

// Page is a list answer.
type Page struct {
	Machines []Row `json:"machines"`
	// NextCursor fetches the following page; null on the last one.
	NextCursor *string `json:"next_cursor"`
	// Total counts the machines matching the filters, on every page.
	Total int `json:"total"`
}

// args numbers a statement's parameters as clauses are added.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// groupsSQL is a machine's groups as a JSON array, by name.
const groupsSQL = `COALESCE((SELECT json_agg(json_build_object('id', g.id, 'name', g.name, 'color', g.color) ORDER BY LOWER(g.name), g.id)
		FROM machine_group_members gm JOIN machine_groups g ON g.id = gm.group_id AND g.client_id = gm.client_id
		WHERE gm.machine_id = m.id), '[]')`

// alertsSQL is a machine's firing alerts as {"firing": n, "severity": worst or null}; the
// partial index idx_alert_rule_history_machine_firing answers it per row.
const alertsSQL = `(SELECT json_build_object('firing', count(*),
		'severity', (ARRAY['info', 'warning', 'critical'])[max(CASE h.severity WHEN 'info' THEN 1 WHEN 'warning' THEN 2 WHEN 'critical' THEN 3 END)])
		FROM alert_rule_history h WHERE h.machine_id = m.id AND h.client_id = m.client_id AND h.state = 'firing')`

// where is the query's filters over the client's live machines.
func (q ListQuery) where(a *args, clientID string, now time.Time) string {
	w := []string{"m.client_id = " + a.add(clientID), "m.deleted_at IS NULL"}
	if q.Search != "" {
		// LIKE's wildcards in the search are literal; LOWER on both sides makes the
		// comparison case-insensitive the database's way.
		p := a.add("%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Search) + "%")
		w = append(w, fmt.Sprintf("(LOWER(m.hostname) LIKE LOWER(%[1]s) OR LOWER(COALESCE(m.display_name, '')) LIKE LOWER(%[1]s))", p))
	}
	if q.GroupID != "" {
		w = append(w, fmt.Sprintf(`EXISTS (SELECT 1 FROM machine_group_members gm
			WHERE gm.machine_id = m.id AND gm.client_id = m.client_id AND gm.group_id = %s)`, a.add(q.GroupID)))
	}
	if q.Status != "" {
		w = append(w, statusSQL(a.add(now))+" = "+a.add(string(q.Status)))
	}
	if q.OS != "" {
		w = append(w, "LOWER(m.os) = "+a.add(q.OS))
	}
	if q.CertStatus != "" {
		w = append(w, certStatusSQL(a.add(now), a.add(expiringBefore(now)))+" = "+a.add(string(q.CertStatus)))
	}
	if q.Alerts != "" {
		firing := `EXISTS (SELECT 1 FROM alert_rule_history h WHERE h.machine_id = m.id AND h.client_id = m.client_id AND h.state = 'firing')`
		if q.Alerts == "none" {
			firing = "NOT " + firing
		}
		w = append(w, firing)
	}
	return strings.Join(w, " AND ")
}

// List answers one page of the client's machines at now. The page and the total are two
// queries run in parallel; an unfiltered total is the client's machine count, which the
// machines:count cache holds.
func List(ctx context.Context, pool *pgxpool.Pool, store cache.Store, clientID string, q ListQuery, now time.Time) (Page, error) {
	key := sorts[strings.TrimPrefix(q.Sort, "-")]
	order, cmp := "ASC", ">"
	if strings.HasPrefix(q.Sort, "-") {
		order, cmp = "DESC", "<"
	}
	var a args
	where := q.where(&a, clientID, now)
	if q.After != nil {
		v, _ := q.After.value() // checked when the cursor was parsed
		where += fmt.Sprintf(" AND (%s, m.id) %s (%s, %s::uuid)", key.expr, cmp, a.add(v), a.add(q.After.ID))
	}
	sql := fmt.Sprintf(`
		SELECT m.id, m.hostname, m.display_name, %s, m.last_seen, m.last_cpu_percent, m.last_ram_percent,
		       m.os, m.os_version, m.arch, m.agent_version, m.ip_address, %s, m.cert_expires_at, %s, %s, m.created_at, %s
		FROM machines m WHERE %s
		ORDER BY %[5]s %[7]s, m.id %[7]s LIMIT %[8]s`,
		statusSQL(a.add(now)), certStatusSQL(a.add(now), a.add(expiringBefore(now))), groupsSQL, alertsSQL, key.expr, where, order,
		a.add(q.Limit+1))

	var page Page
	var lastKey string
	var g errgroup.Group
	g.Go(func() error {
		rows, err := pool.Query(ctx, sql, a...)
		if err != nil {
			return db.Error(err, "machines: list")
		}
		defer rows.Close()
		page.Machines = make([]Row, 0, q.Limit)
		for rows.Next() {
			var r Row
			var sortValue any
			if err := rows.Scan(&r.ID, &r.Hostname, &r.DisplayName, &r.Status, &r.LastSeen, &r.CPUPercent, &r.RAMPercent,
				&r.OS, &r.OSVersion, &r.Arch, &r.AgentVersion, &r.IPAddress, &r.CertStatus, &r.CertExpiresAt, &r.Groups,
				&r.Alerts, &r.CreatedAt, &sortValue); err != nil {
				return db.Error(err, "machines: list")
			}
			if len(page.Machines) == q.Limit {
				// One row past the page: there is a next page, after the last row kept.
				last := page.Machines[q.Limit-1]
				page.NextCursor = ptr(Cursor{Sort: q.Sort, Key: lastKey, ID: last.ID}.encode())
				break
			}
			page.Machines = append(page.Machines, r)
			lastKey = keyString(sortValue)
		}
		return db.Error(rows.Err(), "machines: list")
	})
	g.Go(func() (err error) {
		page.Total, err = count(ctx, pool, store, clientID, q, now)
		return err
	})
	if err := g.Wait(); err != nil {
		return Page{}, err
	}
	return page, nil
}

func count(ctx context.Context, pool db.Querier, store cache.Store, clientID string, q ListQuery, now time.Time) (int, error) {
	var a args
	query := "SELECT count(*) FROM machines m WHERE " + q.where(&a, clientID, now)
	fill := func() (int, error) {
		var n int
		if err := pool.QueryRow(ctx, query, a...).Scan(&n); err != nil {
			return 0, db.Error(err, "machines: count")
		}
		return n, nil
	}
	if q.filtered() {
		return fill()
	}
	return fleetcache.Count(ctx, store, clientID, fill)
}

func ptr[T any](v T) *T { return &v }
