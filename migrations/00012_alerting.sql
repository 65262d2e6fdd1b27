-- Alerting (issue 13): rules per client, their state per (rule, machine) in
-- alert_rule_history, notification channels, maintenance windows, and the notification
-- log that deduplicates deliveries. docs/alerting.md describes the model.
--
-- alert_rules: what to watch. A rule applies to every live machine of its client, or to
-- one group (scope_group_id), or to one machine (scope_machine_id); both foreign keys carry
-- the client, so a rule can only name its own client's group or machine. Every "metric"
-- is "higher is worse", so a rule fires at value >= threshold and resolves at value <
-- recovery_threshold (hysteresis: recovery_threshold <= threshold; NULL: the threshold).
--
-- alert_rule_history: one row per episode of a (rule, machine): state 'pending' from the
-- first evaluation that saw the condition (started_at), 'firing' once it held for the
-- rule's pending duration (triggered_at), 'resolved' once the recovery condition holds and
-- the alert fired for at least min_firing_seconds (resolved_at). A pending episode whose
-- condition clears before it fires is deleted: it never was an alert. At most one open
-- episode (resolved_at IS NULL) per (rule, machine).
--
-- notification_history: one row per (channel, alert event) delivered, muted or failed;
-- dedup_key = 'alert:<episode id>:<firing|resolved>' under a unique index per channel, so a
-- retried job sends nothing twice; message_id groups the rows sent as one message.

-- +goose Up
CREATE TABLE alert_rules (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id          UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name               VARCHAR(100) NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    kind               VARCHAR(20) NOT NULL
        CHECK (kind IN ('metric', 'offline', 'smart', 'service', 'certificate', 'updates', 'reboot', 'drift')),
    -- kind 'metric': which value; 'disk' is the fullest disk's used percent
    metric             VARCHAR(20) CHECK (metric IN ('cpu', 'ram', 'disk', 'cpu_temp', 'packet_loss', 'latency')),
    threshold          DOUBLE PRECISION,
    recovery_threshold DOUBLE PRECISION,
    -- how long the condition must hold before the alert fires (Prometheus "for")
    pending_seconds    INT NOT NULL DEFAULT 0 CHECK (pending_seconds BETWEEN 0 AND 86400),
    -- how long a firing alert stays firing at least (against flapping)
    min_firing_seconds INT NOT NULL DEFAULT 0 CHECK (min_firing_seconds BETWEEN 0 AND 86400),
    -- kind 'offline': how long after the heartbeat that was due the machine is offline
    grace_seconds      INT CHECK (grace_seconds BETWEEN 0 AND 86400),
    -- kind 'service': failed services whose name matches this glob (* and ?), case-insensitive
    service_pattern    VARCHAR(200) CHECK (service_pattern IS NULL OR char_length(btrim(service_pattern)) > 0),
    -- kind 'updates' / 'reboot': pending security updates / reboot required for this many days;
    -- kind 'certificate': the active certificate expires within this many days (expired and
    -- revoked without a successor always fire)
    days               INT CHECK (days BETWEEN 0 AND 365),
    severity           VARCHAR(10) NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    scope_group_id     UUID,
    scope_machine_id   UUID,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    is_default         BOOLEAN NOT NULL DEFAULT FALSE,
    created_by         UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (client_id, id),
    FOREIGN KEY (client_id, scope_group_id) REFERENCES machine_groups (client_id, id) ON DELETE CASCADE,
    FOREIGN KEY (client_id, scope_machine_id) REFERENCES machines (client_id, id) ON DELETE CASCADE,
    CHECK (scope_group_id IS NULL OR scope_machine_id IS NULL),
    CHECK ((kind = 'metric') = (metric IS NOT NULL)),
    CHECK (kind <> 'metric' OR threshold IS NOT NULL),
    CHECK (recovery_threshold IS NULL OR (threshold IS NOT NULL AND recovery_threshold <= threshold)),
    CHECK (kind <> 'offline' OR grace_seconds IS NOT NULL),
    CHECK ((kind = 'service') = (service_pattern IS NOT NULL)),
    CHECK (kind NOT IN ('updates', 'reboot', 'certificate') OR days IS NOT NULL)
);
CREATE INDEX idx_alert_rules_client ON alert_rules (client_id, created_at, id);
CREATE INDEX idx_alert_rules_enabled_kind ON alert_rules (kind) WHERE enabled;

ALTER TABLE alert_rule_history
    ADD COLUMN rule_id         UUID REFERENCES alert_rules (id) ON DELETE SET NULL,
    ADD COLUMN state           VARCHAR(10) NOT NULL DEFAULT 'firing' CHECK (state IN ('pending', 'firing', 'resolved')),
    ADD COLUMN started_at      TIMESTAMPTZ,
    ADD COLUMN last_value      DOUBLE PRECISION,
    ADD COLUMN last_evaluated_at TIMESTAMPTZ,
    -- what the evaluation saw: {"mount_point": "/", "services": ["spooler"], ...}
    ADD COLUMN details         JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN acknowledged_at TIMESTAMPTZ,
    ADD COLUMN acknowledged_by UUID REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN ack_comment     TEXT,
    -- the notification pipeline's progress: set once the event was handed to every channel
    -- (sent, muted or given up); NULL while it still has work
    ADD COLUMN firing_notified_at   TIMESTAMPTZ,
    ADD COLUMN resolved_notified_at TIMESTAMPTZ;
-- NULL while pending: triggered_at is when the alert fired. The application stamps it.
ALTER TABLE alert_rule_history ALTER COLUMN triggered_at DROP NOT NULL, ALTER COLUMN triggered_at DROP DEFAULT;
CREATE UNIQUE INDEX idx_alert_rule_history_open ON alert_rule_history (rule_id, machine_id) WHERE resolved_at IS NULL;
CREATE INDEX idx_alert_rule_history_client ON alert_rule_history (client_id, started_at DESC, id);
CREATE INDEX idx_alert_rule_history_to_notify ON alert_rule_history (client_id)
    WHERE (state = 'firing' AND firing_notified_at IS NULL) OR (state = 'resolved' AND resolved_notified_at IS NULL);

CREATE TABLE notification_channels (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id    UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name         VARCHAR(100) NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    kind         VARCHAR(10) NOT NULL CHECK (kind IN ('email', 'webhook', 'slack', 'teams')),
    -- email: the addresses; empty: the client's active admins
    recipients   TEXT[] NOT NULL DEFAULT '{}',
    -- webhook, slack, teams: where to post (a Slack/Teams incoming-webhook URL is a secret)
    url          TEXT,
    -- webhook: the HMAC-SHA256 signing key (write-only through the API)
    secret       TEXT,
    min_severity VARCHAR(10) NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (client_id, id),
    CHECK ((kind = 'email') = (url IS NULL)),
    CHECK (kind = 'webhook' OR secret IS NULL)
);
CREATE INDEX idx_notification_channels_client ON notification_channels (client_id, created_at, id);

-- A window mutes notifications (evaluation continues) for every machine of its client, a
-- group or one machine: from starts_at for duration_seconds, once or again every day or
-- week (in UTC) until recurrence_until.
CREATE TABLE maintenance_windows (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id        UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name             VARCHAR(100) NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    scope_group_id   UUID,
    scope_machine_id UUID,
    starts_at        TIMESTAMPTZ NOT NULL,
    duration_seconds INT NOT NULL CHECK (duration_seconds BETWEEN 60 AND 604800),
    recurrence       VARCHAR(10) NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'daily', 'weekly')),
    recurrence_until TIMESTAMPTZ,
    created_by       UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (client_id, id),
    FOREIGN KEY (client_id, scope_group_id) REFERENCES machine_groups (client_id, id) ON DELETE CASCADE,
    FOREIGN KEY (client_id, scope_machine_id) REFERENCES machines (client_id, id) ON DELETE CASCADE,
    CHECK (scope_group_id IS NULL OR scope_machine_id IS NULL),
    CHECK (recurrence = 'none' OR duration_seconds <= CASE recurrence WHEN 'daily' THEN 86400 ELSE 604800 END),
    CHECK (recurrence_until IS NULL OR (recurrence <> 'none' AND recurrence_until > starts_at))
);
CREATE INDEX idx_maintenance_windows_client ON maintenance_windows (client_id, starts_at, id);

-- Whether a window (its columns) covers instant t. Pure arithmetic on its arguments.
-- +goose StatementBegin
CREATE FUNCTION optralis_window_covers(p_starts TIMESTAMPTZ, p_duration INT, p_recurrence TEXT,
    p_until TIMESTAMPTZ, p_t TIMESTAMPTZ) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT p_t >= p_starts AND (p_until IS NULL OR p_t < p_until + make_interval(secs => p_duration)) AND
        CASE p_recurrence
            WHEN 'none' THEN p_t < p_starts + make_interval(secs => p_duration)
            WHEN 'daily' THEN mod(extract(epoch FROM p_t - p_starts)::numeric, 86400) < p_duration
                AND (p_until IS NULL OR p_starts + make_interval(days => floor(extract(epoch FROM p_t - p_starts) / 86400)::int) < p_until)
            WHEN 'weekly' THEN mod(extract(epoch FROM p_t - p_starts)::numeric, 604800) < p_duration
                AND (p_until IS NULL OR p_starts + make_interval(days => 7 * floor(extract(epoch FROM p_t - p_starts) / 604800)::int) < p_until)
            ELSE FALSE
        END
$$;
-- +goose StatementEnd

ALTER TABLE notification_history
    ADD COLUMN channel_id UUID REFERENCES notification_channels (id) ON DELETE SET NULL,
    ADD COLUMN alert_id   UUID REFERENCES alert_rule_history (id) ON DELETE SET NULL,
    ADD COLUMN message_id UUID,
    ADD COLUMN attempts   INT NOT NULL DEFAULT 0;
ALTER TABLE notification_history DROP CONSTRAINT notification_history_status_check;
ALTER TABLE notification_history ADD CONSTRAINT notification_history_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'skipped', 'muted'));
CREATE UNIQUE INDEX idx_notification_history_channel_dedup ON notification_history (channel_id, dedup_key)
    WHERE channel_id IS NOT NULL AND dedup_key IS NOT NULL;
CREATE INDEX idx_notification_history_alert ON notification_history (alert_id) WHERE alert_id IS NOT NULL;

-- Every client gets the default rules and an email channel to its admins, stamped with the
-- client's own created_at (the application's clock, not the database's).
-- +goose StatementBegin
CREATE FUNCTION optralis_default_alerting(p_client UUID, p_at TIMESTAMPTZ) RETURNS VOID LANGUAGE sql AS $$
    INSERT INTO alert_rules (client_id, name, kind, metric, threshold, recovery_threshold, pending_seconds,
        min_firing_seconds, grace_seconds, days, severity, is_default, created_at, updated_at)
    VALUES (p_client, 'Machine offline', 'offline', NULL, NULL, NULL, 0, 0, 300, NULL, 'critical', TRUE, p_at, p_at),
           (p_client, 'Disk almost full', 'metric', 'disk', 90, 85, 0, 300, NULL, NULL, 'warning', TRUE, p_at, p_at),
           (p_client, 'SMART health failing', 'smart', NULL, NULL, NULL, 0, 0, NULL, NULL, 'critical', TRUE, p_at, p_at),
           (p_client, 'Certificate expiring', 'certificate', NULL, NULL, NULL, 0, 0, NULL, 14, 'warning', TRUE, p_at, p_at);
    INSERT INTO notification_channels (client_id, name, kind, min_severity, created_at, updated_at)
    VALUES (p_client, 'Client administrators (email)', 'email', 'warning', p_at, p_at);
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION optralis_clients_default_alerting() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM optralis_default_alerting(NEW.id, NEW.created_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER clients_default_alerting AFTER INSERT ON clients
    FOR EACH ROW EXECUTE FUNCTION optralis_clients_default_alerting();
SELECT optralis_default_alerting(id, created_at) FROM clients;

-- +goose Down
DROP TRIGGER IF EXISTS clients_default_alerting ON clients;
DROP FUNCTION IF EXISTS optralis_clients_default_alerting();
DROP FUNCTION IF EXISTS optralis_default_alerting(UUID, TIMESTAMPTZ);
DROP INDEX IF EXISTS idx_notification_history_alert;
DROP INDEX IF EXISTS idx_notification_history_channel_dedup;
DELETE FROM notification_history WHERE status = 'muted';
ALTER TABLE notification_history DROP CONSTRAINT notification_history_status_check;
ALTER TABLE notification_history ADD CONSTRAINT notification_history_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'skipped'));
ALTER TABLE notification_history DROP COLUMN IF EXISTS attempts, DROP COLUMN IF EXISTS message_id,
    DROP COLUMN IF EXISTS alert_id, DROP COLUMN IF EXISTS channel_id;
DROP FUNCTION IF EXISTS optralis_window_covers(TIMESTAMPTZ, INT, TEXT, TIMESTAMPTZ, TIMESTAMPTZ);
DROP TABLE IF EXISTS maintenance_windows;
DROP TABLE IF EXISTS notification_channels;
DROP INDEX IF EXISTS idx_alert_rule_history_to_notify;
DROP INDEX IF EXISTS idx_alert_rule_history_client;
DROP INDEX IF EXISTS idx_alert_rule_history_open;
DELETE FROM alert_rule_history WHERE triggered_at IS NULL;
ALTER TABLE alert_rule_history ALTER COLUMN triggered_at SET DEFAULT NOW(), ALTER COLUMN triggered_at SET NOT NULL;
ALTER TABLE alert_rule_history DROP COLUMN IF EXISTS resolved_notified_at, DROP COLUMN IF EXISTS firing_notified_at,
    DROP COLUMN IF EXISTS ack_comment, DROP COLUMN IF EXISTS acknowledged_by, DROP COLUMN IF EXISTS acknowledged_at,
    DROP COLUMN IF EXISTS details, DROP COLUMN IF EXISTS last_evaluated_at, DROP COLUMN IF EXISTS last_value,
    DROP COLUMN IF EXISTS started_at, DROP COLUMN IF EXISTS state, DROP COLUMN IF EXISTS rule_id;
DROP TABLE IF EXISTS alert_rules;
