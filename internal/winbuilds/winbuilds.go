// Package winbuilds is the windows_builds reference table and its refresh from the
// endoflife.date API.
package winbuilds

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
)

// Build is one known Windows build.
type Build struct {
	ID          string     `json:"id"`
	OSType      string     `json:"os_type"` // client or server
	BuildNumber int        `json:"build_number"`
	Name        string     `json:"name"`
	ReleaseDate *time.Time `json:"release_date,omitempty"`
	IsActive    bool       `json:"is_active"`
	SortOrder   int        `json:"sort_order"`
}

// Grouped is the table as the dashboard's dropdowns want it.
type Grouped struct {
	Client []Build `json:"client"`
	Server []Build `json:"server"`
}

// List returns every build grouped by type, in display order.
func List(ctx context.Context, q db.Querier) (Grouped, error) {
	rows, err := q.Query(ctx, `
		SELECT id::text, os_type, build_number, name, release_date, is_active, sort_order
		FROM windows_builds ORDER BY os_type, sort_order, build_number`)
	if err != nil {
		return Grouped{}, db.Error(err, "winbuilds: list")
	}
	builds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Build, error) {
		var b Build
		err := r.Scan(&b.ID, &b.OSType, &b.BuildNumber, &b.Name, &b.ReleaseDate, &b.IsActive, &b.SortOrder)
		return b, err
	})
	if err != nil {
		return Grouped{}, db.Error(err, "winbuilds: list")
	}
	g := Grouped{Client: []Build{}, Server: []Build{}}
	for _, b := range builds {
		if b.OSType == "server" {
			g.Server = append(g.Server, b)
		} else {
			g.Client = append(g.Client, b)
		}
	}
	return g, nil
}

// Change counts what a refresh did.
type Change struct {
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// Upsert writes the builds in one transaction: new (type, build) pairs are inserted
// active, known ones get the new name and release date. Then each type's sort order is
// renumbered by build number (10, 20, ...), so new builds fall into place. Rows the
// upstream no longer lists are kept (the seed has builds endoflife.date dropped). Rows
// inserted are stamped created_at = now.
func Upsert(ctx context.Context, pool *pgxpool.Pool, builds []Build, now time.Time) (Change, error) {
	var ch Change
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		type key struct {
			osType string
			build  int
		}
		type known struct {
			name string
			date *time.Time
		}
		// One refresh at a time: a second waits, then sees the first's rows.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('optralis.windows_builds'))`); err != nil {
			return db.Error(err, "winbuilds: lock")
		}
		existing := map[key]known{}
		rows, err := tx.Query(ctx, `SELECT os_type, build_number, name, release_date FROM windows_builds`)
		if err != nil {
			return db.Error(err, "winbuilds: read")
		}
		var k key
		var v known
		if _, err := pgx.ForEachRow(rows, []any{&k.osType, &k.build, &v.name, &v.date}, func() error {
			existing[k] = v
			return nil
		}); err != nil {
			return db.Error(err, "winbuilds: read")
		}
		for _, b := range builds {
			old, ok := existing[key{b.OSType, b.BuildNumber}]
			switch {
			case !ok:
				ch.Inserted++
			case old.name != b.Name || (b.ReleaseDate != nil && (old.date == nil || !old.date.Equal(*b.ReleaseDate))):
				ch.Updated++
			default:
				ch.Unchanged++
				continue
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO windows_builds AS w (os_type, build_number, name, release_date, created_at)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (os_type, build_number) DO UPDATE SET name = EXCLUDED.name,
				    release_date = COALESCE(EXCLUDED.release_date, w.release_date)`,
				b.OSType, b.BuildNumber, b.Name, b.ReleaseDate, tx.Now); err != nil {
				return db.Error(err, fmt.Sprintf("winbuilds: upsert %s %d", b.OSType, b.BuildNumber))
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE windows_builds w SET sort_order = o.rn * 10
			FROM (SELECT id, row_number() OVER (PARTITION BY os_type ORDER BY build_number) AS rn FROM windows_builds) o
			WHERE w.id = o.id AND w.sort_order IS DISTINCT FROM o.rn * 10`); err != nil {
			return db.Error(err, "winbuilds: sort order")
		}
		return nil
	})
	if err != nil {
		return Change{}, err
	}
	return ch, nil
}
