// Package clients is customer onboarding: the platform admin creates and edits clients
// (licence, machine limit, enabled, agent channel) and invites their first admin; a
// client's users read their own client, its admins rename it.
package clients

import (
	"context"
	"log/slog"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/fleetcache"
)

// CacheTTL is the spec's lifetime of a cached client (client:id:<uuid>).
const CacheTTL = 5 * time.Minute

// CacheKey is the spec's cache key of a client.
func CacheKey(id string) string { return "client:id:" + id }

// Audit actions written by this package.
const (
	ActionCreated = "client_created"
	ActionUpdated = "client_updated"
	ActionInvited = "user_invited"
)

// ErrNotFound: no such client (or not the caller's).
var ErrNotFound = apperr.New(apperr.NotFound, "client not found")

// Deps are what the client handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
	Cache  cache.Store
	Auth   *auth.Service // invitations; ends the sessions of a disabled client's users
}

// Client is one client's record as cached under client:id:<uuid>, with its licence's
// retention.
type Client struct {
	ID                   string     `json:"id"`
	Name                 string     `json:"name"`
	LicenseTier          string     `json:"license_tier"`
	LicenseExpiresAt     *time.Time `json:"license_expires_at"`
	MaxMachines          int        `json:"max_machines"`
	Active               bool       `json:"is_active"`
	AgentChannel         string     `json:"agent_channel"`
	MetricsRetentionDays int        `json:"metrics_retention_days"`
	EventsRetentionDays  int        `json:"events_retention_days"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

// View is a client with its live machine count and licence usage.
type View struct {
	Client
	MachineCount int `json:"machine_count"`
	// LicenseUsage is machine_count / max_machines (1 = full); null when max_machines is 0.
	LicenseUsage *float64 `json:"license_usage"`
}

func view(c Client, machines int) View {
	v := View{Client: c, MachineCount: machines}
	if c.MaxMachines > 0 {
		u := float64(machines) / float64(c.MaxMachines)
		v.LicenseUsage = &u
	}
	return v
}

const clientSelect = `
	SELECT c.id::text, c.name, c.license_tier, c.license_expires_at, c.max_machines, c.is_active, c.agent_channel,
	       r.metrics_retention_days, r.events_retention_days, c.created_at, c.updated_at
	FROM clients c JOIN license_retention r ON r.license_tier = c.license_tier`

func scanClient(row pgx.Row) (Client, error) {
	var c Client
	err := row.Scan(&c.ID, &c.Name, &c.LicenseTier, &c.LicenseExpiresAt, &c.MaxMachines, &c.Active, &c.AgentChannel,
		&c.MetricsRetentionDays, &c.EventsRetentionDays, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

func byID(ctx context.Context, q db.Querier, id string, lock bool) (Client, error) {
	sql := clientSelect + ` WHERE c.id = $1`
	if lock {
		sql += ` FOR UPDATE OF c`
	}
	c, err := scanClient(q.QueryRow(ctx, sql, id))
	if err != nil {
		return Client{}, db.Error(err, "clients: by id", db.On(db.NoRows, ErrNotFound))
	}
	return c, nil
}

// Lookup returns a client through the cache (client:id:<uuid>, CacheTTL): a miss reads
// the database and fills the key unless a writer has just set it. Redis down is a miss.
func Lookup(ctx context.Context, s cache.Store, q db.Querier, id string) (Client, error) {
	var c Client
	if s.Get(ctx, CacheKey(id), &c) && c.ID == id {
		return c, nil
	}
	c, err := byID(ctx, q, id, false)
	if err != nil {
		return Client{}, err
	}
	if s.Enabled() {
		// NX: never over the value a writer stored after its commit, which is newer than
		// what this read may have seen.
		if b, err := json.Marshal(c); err == nil {
			if err := s.Redis.SetNX(ctx, s.Key(CacheKey(id)), b, CacheTTL).Err(); err != nil {
				s.Failed(ctx, "fill "+CacheKey(id), err)
			}
		}
	}
	return c, nil
}

// stored puts a client just committed into the cache, replacing what readers may hold,
// and drops the client's machine lists (they carry what a client change may alter). When
// the value cannot be written the key is deleted instead, so no stale copy outlives it.
func stored(ctx context.Context, s cache.Store, c Client) {
	fleetcache.Invalidate(ctx, s, c.ID)
	if s.Enabled() {
		if b, err := json.Marshal(c); err == nil {
			err = s.Redis.Set(ctx, s.Key(CacheKey(c.ID)), b, CacheTTL).Err()
			if err == nil {
				return
			}
			s.Failed(ctx, "write "+CacheKey(c.ID), err)
		}
	}
	s.Delete(ctx, CacheKey(c.ID))
}

// MachineCount is the client's live machines, through the cached machines:count:<id>.
func MachineCount(ctx context.Context, s cache.Store, q db.Querier, clientID string) (int, error) {
	return fleetcache.Count(ctx, s, clientID, func() (int, error) {
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM machines WHERE client_id = $1 AND deleted_at IS NULL`, clientID).Scan(&n); err != nil {
			return 0, db.Error(err, "clients: count machines")
		}
		return n, nil
	})
}

// Get is one client with its machine count.
func Get(ctx context.Context, d Deps, id string) (View, error) {
	c, err := Lookup(ctx, d.Cache, d.Pool, id)
	if err != nil {
		return View{}, err
	}
	n, err := MachineCount(ctx, d.Cache, d.Pool, id)
	if err != nil {
		return View{}, err
	}
	return view(c, n), nil
}

// List is every client by name, each with its live machine count (one query: the platform
// admin's view is a full list; MSP clients number in the hundreds, not the thousands).
func List(ctx context.Context, q db.Querier) ([]View, error) {
	rows, err := q.Query(ctx, `
		SELECT c.id::text, c.name, c.license_tier, c.license_expires_at, c.max_machines, c.is_active, c.agent_channel,
		       r.metrics_retention_days, r.events_retention_days, c.created_at, c.updated_at,
		       COALESCE(m.n, 0)
		FROM clients c JOIN license_retention r ON r.license_tier = c.license_tier
		LEFT JOIN (SELECT client_id, count(*) AS n FROM machines WHERE deleted_at IS NULL GROUP BY client_id) m ON m.client_id = c.id
		ORDER BY lower(c.name), c.id`)
	if err != nil {
		return nil, db.Error(err, "clients: list")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (View, error) {
		var c Client
		var n int
		err := r.Scan(&c.ID, &c.Name, &c.LicenseTier, &c.LicenseExpiresAt, &c.MaxMachines, &c.Active, &c.AgentChannel,
			&c.MetricsRetentionDays, &c.EventsRetentionDays, &c.CreatedAt, &c.UpdatedAt, &n)
		return view(c, n), err
	})
	if err != nil {
		return nil, db.Error(err, "clients: list")
	}
	if out == nil {
		out = []View{}
	}
	return out, nil
}

// Actor is who makes a change, for the audit trail.
type Actor struct {
	UserID string
	IP     string
}

// Create adds a client (validated by the caller).
func Create(ctx context.Context, d Deps, c Changes, a Actor) (View, error) {
	var out Client
	err := db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO clients (name, license_tier, license_expires_at, max_machines, is_active, agent_channel, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id::text`,
			*c.Name, *c.LicenseTier, c.LicenseExpiresAt.At, *c.MaxMachines, *c.Active, *c.AgentChannel, tx.Now).Scan(&id)
		if err != nil {
			return db.Error(err, "clients: create", db.On(db.ForeignKeyViolation, badTier))
		}
		if out, err = byID(ctx, tx, id, false); err != nil {
			return err
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: id, UserID: a.UserID, Action: ActionCreated, IP: a.IP,
			Details: map[string]any{"client": c.audit()}})
	})
	if err != nil {
		return View{}, err
	}
	stored(ctx, d.Cache, out)
	return view(out, 0), nil
}

var badTier = apperr.InvalidFields(map[string]string{"license_tier": tierProblem})

// Update applies changes to a client. Disabling it ends, in the same transaction, every
// session of its users (their access tokens are refused from the next request); its
// agents are refused by the database's certificate check. Re-enabling lets its users sign
// in again; the ended sessions stay ended.
func Update(ctx context.Context, d Deps, id string, c Changes, a Actor) (View, error) {
	var out Client
	var ended auth.Ended
	err := db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		before, err := byID(ctx, tx, id, true)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE clients SET name = COALESCE($2, name), license_tier = COALESCE($3, license_tier),
			       license_expires_at = CASE WHEN $4 THEN $5 ELSE license_expires_at END,
			       max_machines = COALESCE($6, max_machines), is_active = COALESCE($7, is_active),
			       agent_channel = COALESCE($8, agent_channel), updated_at = $9
			WHERE id = $1`,
			id, c.Name, c.LicenseTier, c.LicenseExpiresAt.Set, c.LicenseExpiresAt.At, c.MaxMachines, c.Active, c.AgentChannel, tx.Now)
		if err != nil {
			return db.Error(err, "clients: update", db.On(db.ForeignKeyViolation, badTier))
		}
		if out, err = byID(ctx, tx, id, false); err != nil {
			return err
		}
		details := map[string]any{"changes": c.audit()}
		if before.Active && !out.Active {
			users, err := userIDs(ctx, tx, id)
			if err != nil {
				return err
			}
			if ended, err = d.Auth.EndSessionsOfUsers(ctx, tx, users, "client_disabled"); err != nil {
				return err
			}
			details["sessions_ended"] = ended.Sessions
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: id, UserID: a.UserID, Action: ActionUpdated, IP: a.IP, Details: details})
	})
	if err != nil {
		return View{}, err
	}
	d.Auth.Publish(ctx, ended)
	if c.Active != nil {
		// The heartbeat guard refuses a disabled client's agents before reading their
		// bodies; enabling drops the mark (the database stays the authority either way).
		certs.Marks{Store: d.Cache}.ClientDisabled(context.WithoutCancel(ctx), id, !out.Active)
	}
	stored(ctx, d.Cache, out)
	n, err := MachineCount(ctx, d.Cache, d.Pool, id)
	if err != nil {
		return View{}, err
	}
	return view(out, n), nil
}

func userIDs(ctx context.Context, q db.Querier, clientID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM users WHERE client_id = $1`, clientID)
	if err != nil {
		return nil, db.Error(err, "clients: users")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, db.Error(err, "clients: users")
	}
	return ids, nil
}

// Invited is a new user and how their invitation was delivered.
type Invited struct {
	User       InvitedUser   `json:"user"`
	Invitation auth.Delivery `json:"invitation"`
}

// InvitedUser is the user an invitation created.
type InvitedUser struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
}

// ErrClientDisabled refuses an invitation into a disabled client: its users cannot sign in.
var ErrClientDisabled = apperr.New(apperr.Conflict, "the client is disabled: enable it before inviting its users")

// Invite creates a user of the client with no usable password and delivers an
// invitation (mail, or a one-time link when mail is disabled). Users and platform admins
// invite alike; a is the inviter.
func Invite(ctx context.Context, d Deps, in auth.Invitee, a Actor) (Invited, error) {
	var inv auth.Invitation
	err := db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		c, err := byID(ctx, tx, in.ClientID, false)
		if err != nil {
			return err
		}
		if !c.Active {
			return ErrClientDisabled
		}
		in.ClientName = c.Name
		if inv, err = d.Auth.Invite(ctx, tx, in); err != nil {
			return err
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: in.ClientID, UserID: a.UserID, Action: ActionInvited, IP: a.IP,
			Details: map[string]any{"user_id": inv.UserID, "email": inv.Email, "role": in.Role, "expires_at": inv.ExpiresAt}})
	})
	if err != nil {
		return Invited{}, err
	}
	return Invited{
		User:       InvitedUser{ID: inv.UserID, ClientID: in.ClientID, Email: inv.Email, Name: in.Name, Role: in.Role},
		Invitation: d.Auth.Deliver(ctx, inv),
	}, nil
}
