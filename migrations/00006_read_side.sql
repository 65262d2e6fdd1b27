-- The read and administration side (issue 11): what the dashboard lists and edits.
--
-- machines: a deleted machine is marked (deleted_at) and leaves every list and count at
-- once; the cleanup job removes its series and then the row, never the request. The
-- heartbeat keeps, on the machine row, what a list row needs without touching the series:
-- when the next heartbeat is due (the interval the server answered), and the CPU/RAM of
-- the latest heartbeat. A stable hardware fingerprint lets a reinstalled agent take its
-- machine back instead of enrolling a duplicate.

-- +goose Up
ALTER TABLE machines
    ADD COLUMN deleted_at        TIMESTAMPTZ,
    ADD COLUMN fingerprint_hash  VARCHAR(64),
    ADD COLUMN display_name      VARCHAR(255),
    ADD COLUMN notes             TEXT NOT NULL DEFAULT '',
    ADD COLUMN heartbeat_due_at  TIMESTAMPTZ,
    ADD COLUMN last_metrics_at   TIMESTAMPTZ,
    ADD COLUMN last_cpu_percent  DOUBLE PRECISION,
    ADD COLUMN last_ram_percent  DOUBLE PRECISION;
-- one live machine per fingerprint and client (a deleted machine's fingerprint is free)
CREATE UNIQUE INDEX idx_machines_client_fingerprint ON machines (client_id, fingerprint_hash)
    WHERE fingerprint_hash IS NOT NULL AND deleted_at IS NULL;
-- live machines of a client in the list's default order (hostname, then id for paging)
CREATE INDEX idx_machines_client_live_hostname ON machines (client_id, LOWER(hostname), id)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_machines_deleted ON machines (deleted_at) WHERE deleted_at IS NOT NULL;

-- A machine may belong to several groups. Both foreign keys carry the client, so a
-- membership can only join a machine and a group of the same client.
CREATE TABLE machine_group_members (
    client_id  UUID NOT NULL,
    machine_id UUID NOT NULL,
    group_id   UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (machine_id, group_id),
    FOREIGN KEY (client_id, machine_id) REFERENCES machines (client_id, id) ON DELETE CASCADE,
    FOREIGN KEY (client_id, group_id) REFERENCES machine_groups (client_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_machine_group_members_group ON machine_group_members (group_id);
INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at)
    SELECT client_id, id, group_id, updated_at FROM machines WHERE group_id IS NOT NULL;
ALTER TABLE machines DROP COLUMN group_id;

-- The client's default collector configuration; a machine's own configuration overrides
-- it collector by collector. Either changing makes the next heartbeat say config_changed.
ALTER TABLE clients
    ADD COLUMN collector_config            JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN collector_config_updated_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity';

-- The latest agent release of each channel, published by a platform admin. Heartbeats
-- answer its version (cached in Redis as agent:version:<channel>).
CREATE TABLE agent_releases (
    channel      VARCHAR(20) PRIMARY KEY CHECK (channel ~ '^[a-z][a-z0-9-]{0,19}$'),
    version      VARCHAR(50) NOT NULL CHECK (btrim(version) <> ''),
    -- {"amd64": {"url": "...", "sha256": "..."}, ...}
    downloads    JSONB NOT NULL DEFAULT '{}'::jsonb,
    notes        TEXT NOT NULL DEFAULT '',
    published_at TIMESTAMPTZ NOT NULL,
    published_by UUID REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO agent_releases (channel, version, published_at)
    SELECT substr(key, length('agent_version:') + 1), value, updated_at FROM schema_settings
    WHERE key LIKE 'agent\_version:%' AND substr(key, length('agent_version:') + 1) ~ '^[a-z][a-z0-9-]{0,19}$';
DELETE FROM schema_settings WHERE key LIKE 'agent\_version:%';

-- Invitations reuse the single-use password tokens with a longer life.
ALTER TABLE password_reset_tokens
    ADD COLUMN purpose VARCHAR(10) NOT NULL DEFAULT 'reset' CHECK (purpose IN ('reset', 'invite'));

-- GET /api/activity pages a client's audit log newest first, by (created_at, id).
CREATE INDEX idx_activity_logs_client_id ON activity_logs (client_id, created_at DESC, id);

-- The active-certificate rule gains two refusals: a deleted machine (401, like an unknown
-- one) and a disabled client (OA403: the agent is known but not served).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_agent(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    r RECORD;
BEGIN
    SELECT c.client_id, c.machine_id, c.revoked_at, c.expires_at, m.deleted_at, cl.is_active INTO r
    FROM client_certificates c
    JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id
    JOIN clients cl ON cl.id = c.client_id
    WHERE c.serial = p_serial;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % not recorded, or its machine is gone', p_serial
            USING ERRCODE = 'OA401';
    END IF;
    IF r.client_id <> p_client OR r.machine_id <> p_machine THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % recorded for %:%, CN says %:%',
            p_serial, r.client_id, r.machine_id, p_client, p_machine USING ERRCODE = 'OA401';
    END IF;
    IF r.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial %: machine deleted', p_serial USING ERRCODE = 'OA401';
    END IF;
    IF r.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % revoked at %', p_serial,
            to_char(r.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') USING ERRCODE = 'OA401';
    END IF;
    IF r.expires_at <= p_now THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % expired', p_serial USING ERRCODE = 'OA401';
    END IF;
    IF NOT r.is_active THEN
        RAISE EXCEPTION 'agent refused: client % is disabled', p_client USING ERRCODE = 'OA403';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_agent(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    r RECORD;
BEGIN
    SELECT c.client_id, c.machine_id, c.revoked_at, c.expires_at INTO r
    FROM client_certificates c
    JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id
    WHERE c.serial = p_serial;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % not recorded, or its machine is gone', p_serial
            USING ERRCODE = 'OA401';
    END IF;
    IF r.client_id <> p_client OR r.machine_id <> p_machine THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % recorded for %:%, CN says %:%',
            p_serial, r.client_id, r.machine_id, p_client, p_machine USING ERRCODE = 'OA401';
    END IF;
    IF r.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % revoked at %', p_serial,
            to_char(r.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') USING ERRCODE = 'OA401';
    END IF;
    IF r.expires_at <= p_now THEN
        RAISE EXCEPTION 'agent certificate not accepted: serial % expired', p_serial USING ERRCODE = 'OA401';
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX IF EXISTS idx_activity_logs_client_id;
ALTER TABLE password_reset_tokens DROP COLUMN purpose;
INSERT INTO schema_settings (key, value, updated_at)
    SELECT 'agent_version:' || channel, version, published_at FROM agent_releases ON CONFLICT (key) DO NOTHING;
DROP TABLE agent_releases;
ALTER TABLE clients DROP COLUMN collector_config, DROP COLUMN collector_config_updated_at;
ALTER TABLE machines ADD COLUMN group_id UUID;
UPDATE machines m SET group_id = (SELECT g.group_id FROM machine_group_members g WHERE g.machine_id = m.id LIMIT 1);
ALTER TABLE machines ADD FOREIGN KEY (client_id, group_id) REFERENCES machine_groups (client_id, id) ON DELETE SET NULL (group_id);
DROP TABLE machine_group_members;
DROP INDEX IF EXISTS idx_machines_deleted, idx_machines_client_live_hostname, idx_machines_client_fingerprint;
ALTER TABLE machines DROP COLUMN deleted_at, DROP COLUMN fingerprint_hash, DROP COLUMN display_name, DROP COLUMN notes,
    DROP COLUMN heartbeat_due_at, DROP COLUMN last_metrics_at, DROP COLUMN last_cpu_percent, DROP COLUMN last_ram_percent;
