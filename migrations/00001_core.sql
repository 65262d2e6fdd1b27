-- Core relational schema: tenants, people, machines, enrolment, configuration.
-- Time-series tables live in 00002; their TimescaleDB / plain-PostgreSQL specifics in the
-- *_timescale.sql / *_postgres.sql migrations (only one family is applied to a database).

-- +goose Up

-- Settings the schema itself records, such as the time-series mode chosen at first migration.
CREATE TABLE schema_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Licence tier -> retention (spec "Rétention par Licence"). Aggregates follow the metrics figure.
CREATE TABLE license_retention (
    license_tier           VARCHAR(20) PRIMARY KEY,
    metrics_retention_days INT NOT NULL CHECK (metrics_retention_days > 0),
    events_retention_days  INT NOT NULL CHECK (events_retention_days > 0)
);
INSERT INTO license_retention (license_tier, metrics_retention_days, events_retention_days) VALUES
    ('Trial', 7, 7),
    ('Starter', 30, 30),
    ('Essentials', 30, 30),
    ('Pro', 90, 90),
    ('Business', 90, 90),
    ('Enterprise', 365, 365);

-- A client is one managed service provider (the tenant).
CREATE TABLE clients (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name               VARCHAR(255) NOT NULL CHECK (btrim(name) <> ''),
    license_tier       VARCHAR(20) NOT NULL DEFAULT 'Trial' REFERENCES license_retention (license_tier),
    license_expires_at TIMESTAMPTZ,
    max_machines       INT NOT NULL DEFAULT 5 CHECK (max_machines >= 0),
    is_active          BOOLEAN NOT NULL DEFAULT TRUE,
    agent_channel      VARCHAR(20) NOT NULL DEFAULT 'stable',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- People using the dashboard. Platform admins belong to no client; everyone else to exactly one.
CREATE TABLE users (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id            UUID REFERENCES clients (id) ON DELETE CASCADE,
    email                VARCHAR(255) NOT NULL,
    password_hash        TEXT NOT NULL,
    name                 VARCHAR(255) NOT NULL DEFAULT '',
    role                 VARCHAR(20) NOT NULL DEFAULT 'user'
                         CHECK (role IN ('user', 'admin', 'platform_admin')),
    is_active            BOOLEAN NOT NULL DEFAULT TRUE,
    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_login_at        TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT users_role_scope CHECK ((role = 'platform_admin') = (client_id IS NULL))
);
CREATE UNIQUE INDEX idx_users_email_lower ON users (LOWER(email));
CREATE INDEX idx_users_client_id ON users (client_id);

-- Refresh tokens: opaque values stored hashed, grouped in families for theft detection.
CREATE TABLE refresh_tokens (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id      UUID NOT NULL,
    token_hash     VARCHAR(64) NOT NULL,
    rotation_count INT NOT NULL DEFAULT 0 CHECK (rotation_count >= 0),
    is_revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at     TIMESTAMPTZ,
    revoked_reason VARCHAR(50),
    ip_address     VARCHAR(45),
    user_agent     TEXT,
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX idx_refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX idx_refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_expires ON refresh_tokens (expires_at);

-- Single-use password reset tokens (valid 1 hour), stored hashed.
CREATE TABLE password_reset_tokens (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash VARCHAR(64) NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX idx_password_reset_tokens_hash ON password_reset_tokens (token_hash);
CREATE INDEX idx_password_reset_tokens_user ON password_reset_tokens (user_id);

-- Access-token blacklist, kept for audit (Redis holds the hot copy).
CREATE TABLE token_blacklist (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    jti        VARCHAR(64) NOT NULL,
    user_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    reason     VARCHAR(50) NOT NULL DEFAULT 'logout',
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX idx_token_blacklist_jti ON token_blacklist (jti);
CREATE INDEX idx_token_blacklist_expires ON token_blacklist (expires_at);

CREATE TABLE machine_groups (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id  UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name       VARCHAR(50) NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 50),
    color      VARCHAR(7) NOT NULL DEFAULT '#3B82F6' CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- lets machines reference (client_id, id) so a machine can only join its own client's group
    UNIQUE (client_id, id)
);
CREATE UNIQUE INDEX idx_machine_groups_client_name ON machine_groups (client_id, LOWER(name));

CREATE TABLE machines (
    id                          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id                   UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    group_id                    UUID,
    hostname                    VARCHAR(255) NOT NULL,
    os                          VARCHAR(50) NOT NULL DEFAULT '',
    os_version                  VARCHAR(255) NOT NULL DEFAULT '',
    os_build                    INT,
    arch                        VARCHAR(20) NOT NULL DEFAULT '',
    agent_version               VARCHAR(50),
    ip_address                  VARCHAR(45),
    last_seen                   TIMESTAMPTZ,
    collector_config            JSONB NOT NULL DEFAULT '{}'::jsonb,
    collector_config_updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_config_sync            TIMESTAMPTZ,
    cert_serial                 VARCHAR(64),
    cert_issued_at              TIMESTAMPTZ,
    cert_expires_at             TIMESTAMPTZ,
    cert_revoked_at             TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (client_id, id),
    FOREIGN KEY (client_id, group_id) REFERENCES machine_groups (client_id, id) ON DELETE SET NULL (group_id)
);
CREATE INDEX idx_machines_client_id ON machines (client_id);
CREATE INDEX idx_machines_hostname_lower ON machines (LOWER(hostname));
CREATE INDEX idx_machines_group_id ON machines (group_id);

-- One row per issued machine certificate (spec "Table client_certificates").
-- The spec's unique index "WHERE revoked_at IS NULL AND expires_at > NOW()" cannot be built
-- (index predicates must be immutable). Instead: issuing a certificate revokes (supersedes)
-- every earlier unrevoked one in the same transaction, so "unrevoked" is at most one row per
-- machine, and this index enforces it. At most one unrevoked => at most one active.
CREATE TABLE client_certificates (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id         UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    machine_id        UUID NOT NULL,
    serial            VARCHAR(64) NOT NULL,
    issued_at         TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ,
    revocation_reason TEXT,
    created_by        UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK (expires_at > issued_at),
    -- the machine must belong to the certificate's client
    FOREIGN KEY (client_id, machine_id) REFERENCES machines (client_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX idx_client_certificates_serial ON client_certificates (serial);
CREATE INDEX idx_client_certificates_machine_id ON client_certificates (machine_id);
CREATE UNIQUE INDEX idx_client_certificates_active_machine ON client_certificates (machine_id)
    WHERE revoked_at IS NULL;
CREATE INDEX idx_client_certificates_expires ON client_certificates (expires_at) WHERE revoked_at IS NULL;

CREATE TABLE install_tokens (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id   UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    token_hash  VARCHAR(255) NOT NULL,
    name        VARCHAR(100) NOT NULL DEFAULT '',
    expires_at  TIMESTAMPTZ NOT NULL,
    usage_count INT NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    max_usage   INT NOT NULL DEFAULT 0 CHECK (max_usage >= 0),
    revoked_at  TIMESTAMPTZ,
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK (max_usage = 0 OR usage_count <= max_usage)
);
CREATE UNIQUE INDEX idx_install_tokens_hash ON install_tokens (token_hash);
CREATE INDEX idx_install_tokens_client ON install_tokens (client_id);
CREATE INDEX idx_install_tokens_expires ON install_tokens (expires_at);

-- Latest JSON snapshot of each collector per machine (spec "Tables Snapshot").
CREATE TABLE machine_collector_data (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    machine_id   UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    collector    VARCHAR(30) NOT NULL CHECK (collector IN
                 ('metrics', 'storage', 'storage_health', 'network', 'services', 'security', 'software', 'patches')),
    data         JSONB NOT NULL,
    collected_at TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (machine_id, collector)
);

-- Backward-compatible enriched inventory, one row per machine (spec "Colonnes machine_inventory").
CREATE TABLE machine_inventory (
    machine_id          UUID PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    antivirus_name      VARCHAR(255),
    antivirus_version   TEXT,
    antivirus_enabled   BOOLEAN,
    antivirus_updated   BOOLEAN,
    firewall_enabled    BOOLEAN,
    bitlocker_enabled   BOOLEAN,
    secure_boot_enabled BOOLEAN,
    services_total      INT,
    services_running    INT,
    services_failed     INT,
    all_services        JSONB,
    failed_services     JSONB,
    software_count      INT,
    software_details    JSONB,
    users_total         INT,
    users_admin         INT,
    users_details       JSONB,
    ports_open          INT,
    ports_risky_open    INT,
    all_ports           JSONB,
    risky_ports_details JSONB,
    network_interfaces  JSONB,
    pending_updates     INT,
    security_updates    INT,
    reboot_required     BOOLEAN,
    patches_auto_update BOOLEAN,
    patches_last_check  TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Per-machine statistical summaries (hourly/daily) kept per licence like raw metrics.
CREATE TABLE metric_aggregates (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    machine_id   UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    metric_type  VARCHAR(50) NOT NULL,
    period       VARCHAR(10) NOT NULL CHECK (period IN ('hour', 'day')),
    period_start TIMESTAMPTZ NOT NULL,
    avg_value    DOUBLE PRECISION,
    min_value    DOUBLE PRECISION,
    max_value    DOUBLE PRECISION,
    p95_value    DOUBLE PRECISION,
    sample_count INT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (machine_id, metric_type, period, period_start)
);
CREATE INDEX idx_metric_aggregates_period_start ON metric_aggregates (period_start);

CREATE TABLE notification_history (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id         UUID REFERENCES clients (id) ON DELETE CASCADE,
    user_id           UUID REFERENCES users (id) ON DELETE SET NULL,
    machine_id        UUID REFERENCES machines (id) ON DELETE SET NULL,
    channel           VARCHAR(20) NOT NULL DEFAULT 'email',
    notification_type VARCHAR(50) NOT NULL,
    recipient         VARCHAR(255) NOT NULL DEFAULT '',
    subject           TEXT NOT NULL DEFAULT '',
    status            VARCHAR(20) NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'failed', 'skipped')),
    error             TEXT,
    sent_at           TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_notification_history_sent_at ON notification_history (sent_at);
CREATE INDEX idx_notification_history_client ON notification_history (client_id, notification_type, sent_at);

CREATE TABLE alert_rule_history (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id    UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    machine_id   UUID REFERENCES machines (id) ON DELETE CASCADE,
    rule_name    VARCHAR(100) NOT NULL,
    metric_type  VARCHAR(50) NOT NULL,
    severity     VARCHAR(20) NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    value        DOUBLE PRECISION,
    threshold    DOUBLE PRECISION,
    message      TEXT NOT NULL DEFAULT '',
    triggered_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    resolved_at  TIMESTAMPTZ
);
CREATE INDEX idx_alert_rule_history_triggered_at ON alert_rule_history (triggered_at);
CREATE INDEX idx_alert_rule_history_machine ON alert_rule_history (machine_id, triggered_at);

CREATE TABLE ai_analysis_results (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id     UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    machine_id    UUID REFERENCES machines (id) ON DELETE CASCADE,
    analysis_type VARCHAR(50) NOT NULL,
    summary       TEXT NOT NULL DEFAULT '',
    result        JSONB NOT NULL DEFAULT '{}'::jsonb,
    model         VARCHAR(100),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at    TIMESTAMPTZ
);
CREATE INDEX idx_ai_analysis_results_created_at ON ai_analysis_results (created_at);
CREATE INDEX idx_ai_analysis_results_expires_at ON ai_analysis_results (expires_at);

CREATE TABLE ai_trigger_history (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id    UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    machine_id   UUID REFERENCES machines (id) ON DELETE CASCADE,
    trigger_type VARCHAR(50) NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    details      JSONB NOT NULL DEFAULT '{}'::jsonb,
    executed_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_ai_trigger_history_executed_at ON ai_trigger_history (executed_at);

CREATE TABLE ai_routine_history (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id         UUID REFERENCES clients (id) ON DELETE CASCADE,
    routine_name      VARCHAR(100) NOT NULL,
    status            VARCHAR(20) NOT NULL CHECK (status IN ('success', 'failed', 'partial')),
    machines_analyzed INT NOT NULL DEFAULT 0,
    details           JSONB NOT NULL DEFAULT '{}'::jsonb,
    error             TEXT,
    executed_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_ai_routine_history_executed_at ON ai_routine_history (executed_at);

-- Drift detection baselines (spec "Table metric_baselines").
CREATE TABLE metric_baselines (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    machine_id         UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    metric_type        VARCHAR(50) NOT NULL,
    baseline_mean      DECIMAL(10, 2),
    baseline_stddev    DECIMAL(10, 2),
    baseline_p95       DECIMAL(10, 2),
    current_value      DECIMAL(10, 2),
    z_score            DECIMAL(10, 2),
    warning_threshold  DECIMAL(5, 2) NOT NULL DEFAULT 2.0,
    critical_threshold DECIMAL(5, 2) NOT NULL DEFAULT 3.0,
    drift_detected     BOOLEAN NOT NULL DEFAULT FALSE,
    drift_severity     VARCHAR(20) CHECK (drift_severity IN ('warning', 'critical')),
    drift_explanation  TEXT,
    last_updated       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (machine_id, metric_type)
);

-- OS prerequisites for the agent installer; exactly one row (spec "agent_requirements").
CREATE TABLE agent_requirements (
    id                       UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    singleton                BOOLEAN NOT NULL DEFAULT TRUE UNIQUE CHECK (singleton),
    windows_client_enabled   BOOLEAN NOT NULL DEFAULT TRUE,
    windows_client_min_build INT NOT NULL DEFAULT 0 CHECK (windows_client_min_build >= 0),
    windows_server_enabled   BOOLEAN NOT NULL DEFAULT TRUE,
    windows_server_min_build INT NOT NULL DEFAULT 0 CHECK (windows_server_min_build >= 0),
    linux_enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    unsupported_os_message   TEXT NOT NULL DEFAULT '',
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
INSERT INTO agent_requirements DEFAULT VALUES;

-- Known Windows builds for the dashboard's minimum-build dropdowns (spec "windows_builds").
CREATE TABLE windows_builds (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    os_type      VARCHAR(20) NOT NULL CHECK (os_type IN ('client', 'server')),
    build_number INT NOT NULL CHECK (build_number > 0),
    name         VARCHAR(100) NOT NULL,
    release_date DATE,
    is_active    BOOLEAN NOT NULL DEFAULT TRUE,
    sort_order   INT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (os_type, build_number)
);
-- Windows 10 21H2 shares build 19044 with LTSC 2021; the LTSC name is kept for that build.
INSERT INTO windows_builds (os_type, build_number, name, release_date, sort_order) VALUES
    ('client', 17763, 'Windows 10 LTSC 2019', '2018-11-13', 10),
    ('client', 18362, 'Windows 10 (1903)', '2019-05-21', 20),
    ('client', 18363, 'Windows 10 (1909)', '2019-11-12', 30),
    ('client', 19041, 'Windows 10 (2004)', '2020-05-27', 40),
    ('client', 19042, 'Windows 10 (20H2)', '2020-10-20', 50),
    ('client', 19043, 'Windows 10 (21H1)', '2021-05-18', 60),
    ('client', 19044, 'Windows 10 LTSC 2021', '2021-11-16', 70),
    ('client', 19045, 'Windows 10 (22H2)', '2022-10-18', 80),
    ('client', 22000, 'Windows 11 (21H2)', '2021-10-04', 90),
    ('client', 22621, 'Windows 11 (22H2)', '2022-09-20', 100),
    ('client', 22631, 'Windows 11 (23H2)', '2023-10-31', 110),
    ('client', 26100, 'Windows 11 (24H2)', '2024-10-01', 120),
    ('server', 14393, 'Windows Server 2016', '2016-10-12', 10),
    ('server', 17763, 'Windows Server 2019', '2018-11-13', 20),
    ('server', 20348, 'Windows Server 2022', '2021-08-18', 30),
    ('server', 26100, 'Windows Server 2025', '2024-11-01', 40);

-- +goose Down
DROP TABLE IF EXISTS windows_builds, agent_requirements, metric_baselines, ai_routine_history,
    ai_trigger_history, ai_analysis_results, alert_rule_history, notification_history,
    metric_aggregates, machine_inventory, machine_collector_data, install_tokens,
    client_certificates, machines, machine_groups, token_blacklist, password_reset_tokens,
    refresh_tokens, users, clients, license_retention, schema_settings;
