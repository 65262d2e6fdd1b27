package machinedata

import (
	"context"
	"net/http"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/collectorcfg"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// MaxConfigBytes bounds a collector configuration body.
const MaxConfigBytes = 16 << 10

// MachineConfig is a machine's collector configuration as the dashboard shows it.
type MachineConfig struct {
	MachineID string `json:"machine_id"`
	// Own are the machine's overrides; ClientDefault the client's; Effective what the
	// agent runs: built-in defaults, overlaid by ClientDefault, then by Own.
	Own           collectorcfg.Config `json:"own"`
	ClientDefault collectorcfg.Config `json:"client_default"`
	Effective     collectorcfg.Config `json:"effective"`
	// UpdatedAt is the later of the machine's and the client's last change.
	UpdatedAt time.Time `json:"updated_at"`
	// LastConfigSync is when the agent last fetched its configuration (null: never).
	LastConfigSync *time.Time `json:"last_config_sync"`
	// Pending: changed since that fetch; the agent's next heartbeat answers config_changed.
	Pending bool `json:"pending"`
}

// ClientConfig is the client's default collector configuration.
type ClientConfig struct {
	ClientDefault collectorcfg.Config `json:"client_default"`
	// Effective is what a machine without overrides runs.
	Effective collectorcfg.Config `json:"effective"`
	// UpdatedAt is null until the default is first set.
	UpdatedAt *time.Time `json:"updated_at"`
}

func stored(raws ...[]byte) ([]collectorcfg.Config, error) {
	out := make([]collectorcfg.Config, len(raws))
	for i, raw := range raws {
		c, err := collectorcfg.Stored(raw)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func machineConfig(ctx context.Context, q db.Querier, clientID, machineID string) (MachineConfig, error) {
	v := MachineConfig{MachineID: machineID}
	var own, def []byte
	err := q.QueryRow(ctx, `
		SELECT m.collector_config::text, c.collector_config::text,
		       GREATEST(m.collector_config_updated_at, c.collector_config_updated_at), m.last_config_sync
		FROM machines m JOIN clients c ON c.id = m.client_id
		WHERE m.id = $1 AND m.client_id = $2 AND m.deleted_at IS NULL`, machineID, clientID).Scan(&own, &def, &v.UpdatedAt, &v.LastConfigSync)
	if err != nil {
		return v, db.Error(err, "machinedata: collector config", db.On(db.NoRows, certs.ErrMachineNotFound))
	}
	cs, err := stored(own, def)
	if err != nil {
		return v, err
	}
	v.Own, v.ClientDefault, v.Effective = cs[0], cs[1], collectorcfg.Effective(cs[1], cs[0])
	v.UpdatedAt = v.UpdatedAt.UTC()
	v.Pending = v.LastConfigSync == nil || v.UpdatedAt.After(*v.LastConfigSync)
	if v.LastConfigSync != nil {
		*v.LastConfigSync = v.LastConfigSync.UTC()
	}
	return v, nil
}

func clientConfig(ctx context.Context, q db.Querier, clientID string) (ClientConfig, error) {
	var v ClientConfig
	var def []byte
	err := q.QueryRow(ctx, `
		SELECT collector_config::text, NULLIF(collector_config_updated_at, '-infinity')
		FROM clients WHERE id = $1`, clientID).Scan(&def, &v.UpdatedAt)
	if err != nil {
		return v, db.Error(err, "machinedata: client collector config")
	}
	cs, err := stored(def)
	if err != nil {
		return v, err
	}
	v.ClientDefault, v.Effective = cs[0], collectorcfg.Effective(cs[0])
	if v.UpdatedAt != nil {
		*v.UpdatedAt = v.UpdatedAt.UTC()
	}
	return v, nil
}

// readConfig decodes and validates a PUT body: the configuration object itself.
func readConfig(r *http.Request) (collectorcfg.Config, []byte, error) {
	var body map[string]json.RawMessage
	if err := httpx.DecodeJSONLimit(r, &body, MaxConfigBytes); err != nil {
		return nil, nil, err
	}
	if body == nil {
		return nil, nil, apperr.New(apperr.Invalid, "the body must be a JSON object of collectors")
	}
	cfg, err := collectorcfg.Parse(body)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(cfg)
	return cfg, b, err
}

// HandleGetMachineConfig is GET /api/machines/{id}/collector-config.
func HandleGetMachineConfig(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := target(r)
		var v MachineConfig
		if err == nil {
			v, err = machineConfig(r.Context(), d.Pool, p.ClientID, id)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

// HandlePutMachineConfig is PUT /api/machines/{id}/collector-config: replaces the
// machine's overrides (an empty object removes them all), stamped now, so the agent's
// next heartbeat answers config_changed true. Audited.
func HandlePutMachineConfig(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := putMachineConfig(d, r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

func putMachineConfig(d Deps, r *http.Request) (MachineConfig, error) {
	p, id, err := target(r)
	if err != nil {
		return MachineConfig{}, err
	}
	cfg, raw, err := readConfig(r)
	if err != nil {
		return MachineConfig{}, err
	}
	ctx := r.Context()
	var v MachineConfig
	err = db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE machines SET collector_config = $3::jsonb, collector_config_updated_at = $4, updated_at = $4
			WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL`, id, p.ClientID, string(raw), tx.Now)
		if err != nil {
			return db.Error(err, "machinedata: set collector config")
		}
		if tag.RowsAffected() == 0 {
			return certs.ErrMachineNotFound
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: p.ClientID, UserID: p.UserID, MachineID: id,
			Action: "machine_collector_config_updated", IP: httpx.ClientIP(r), Details: map[string]any{"collector_config": cfg}}); err != nil {
			return err
		}
		v, err = machineConfig(ctx, tx, p.ClientID, id)
		return err
	})
	return v, err
}

// HandleGetClientConfig is GET /api/client/collector-config.
func HandleGetClientConfig(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal.From(r.Context())
		if !ok || p.ClientID == "" {
			httpx.WriteError(w, r, d.Logger, apperr.ErrUnauthenticated)
			return
		}
		v, err := clientConfig(r.Context(), d.Pool, p.ClientID)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

// HandlePutClientConfig is PUT /api/client/collector-config (client admins): replaces the
// client's default, stamped now, so every agent of the client sees config_changed on its
// next heartbeat. Audited.
func HandlePutClientConfig(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := putClientConfig(d, r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

func putClientConfig(d Deps, r *http.Request) (ClientConfig, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return ClientConfig{}, apperr.ErrUnauthenticated
	}
	cfg, raw, err := readConfig(r)
	if err != nil {
		return ClientConfig{}, err
	}
	ctx := r.Context()
	var v ClientConfig
	err = db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE clients SET collector_config = $2::jsonb, collector_config_updated_at = $3, updated_at = $3
			WHERE id = $1`, p.ClientID, string(raw), tx.Now); err != nil {
			return db.Error(err, "machinedata: set client collector config")
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: p.ClientID, UserID: p.UserID,
			Action: "client_collector_config_updated", IP: httpx.ClientIP(r), Details: map[string]any{"collector_config": cfg}}); err != nil {
			return err
		}
		v, err = clientConfig(ctx, tx, p.ClientID)
		return err
	})
	return v, err
}
