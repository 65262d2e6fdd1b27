-- Time-series tables, identical in both modes. 00003_*_timescale.sql turns them into
-- hypertables; 00003_*_postgres.sql leaves them plain and adds the rollup tables.
-- No surrogate keys on the per-machine series: a hypertable's unique keys must contain the
-- time column, so each table's natural key (machine, time, ...) is its unique key, which also
-- makes a retried heartbeat idempotent with INSERT ... ON CONFLICT DO NOTHING. A random UUID
-- per row would be the one column compression cannot shrink: measured on realistic data it
-- took disk_info from 4 % to 12 % of its uncompressed size and slowed inserts by a quarter
-- (bench/compression.md).

-- +goose Up
CREATE TABLE metrics (
    machine_id      UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    recorded_at     TIMESTAMPTZ NOT NULL,
    cpu_percent     DOUBLE PRECISION NOT NULL CHECK (cpu_percent BETWEEN 0 AND 100),
    ram_percent     DOUBLE PRECISION NOT NULL CHECK (ram_percent BETWEEN 0 AND 100),
    ram_used_bytes  BIGINT CHECK (ram_used_bytes >= 0),
    ram_total_bytes BIGINT CHECK (ram_total_bytes >= 0),
    cpu_temp        DOUBLE PRECISION,
    bytes_recv      BIGINT CHECK (bytes_recv >= 0),
    bytes_sent      BIGINT CHECK (bytes_sent >= 0),
    packet_loss     DOUBLE PRECISION CHECK (packet_loss BETWEEN 0 AND 100),
    latency_ms      DOUBLE PRECISION CHECK (latency_ms >= 0),
    disk_latency_ms DOUBLE PRECISION CHECK (disk_latency_ms >= 0),
    uptime_seconds  BIGINT CHECK (uptime_seconds >= 0),
    process_count   INT CHECK (process_count >= 0),
    UNIQUE (machine_id, recorded_at)
);
CREATE INDEX idx_metrics_recorded_at ON metrics (recorded_at DESC);

CREATE TABLE disk_info (
    machine_id   UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    recorded_at  TIMESTAMPTZ NOT NULL,
    mount_point  VARCHAR(255) NOT NULL,
    device       VARCHAR(255),
    fs_type      VARCHAR(50),
    total_gb     DECIMAL(10, 2) CHECK (total_gb >= 0),
    used_gb      DECIMAL(10, 2) CHECK (used_gb >= 0),
    used_percent DECIMAL(5, 2) CHECK (used_percent BETWEEN 0 AND 100),
    model        VARCHAR(255),
    interface    VARCHAR(50),
    UNIQUE (machine_id, recorded_at, mount_point)
);
CREATE INDEX idx_disk_info_recorded_at ON disk_info (recorded_at DESC);

CREATE TABLE event_logs (
    machine_id  UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    recorded_at TIMESTAMPTZ NOT NULL,
    -- position of the event within its heartbeat: (machine, heartbeat time, seq) is the key
    seq         INT NOT NULL CHECK (seq >= 0),
    event_time  TIMESTAMPTZ NOT NULL,
    log_name    VARCHAR(100) NOT NULL DEFAULT '',
    source      VARCHAR(255) NOT NULL DEFAULT '',
    event_id    INT,
    level       VARCHAR(20) NOT NULL DEFAULT 'information'
                CHECK (level IN ('critical', 'error', 'warning', 'information', 'verbose')),
    message     TEXT NOT NULL DEFAULT '',
    UNIQUE (machine_id, recorded_at, seq)
);
CREATE INDEX idx_event_logs_recorded_at ON event_logs (recorded_at DESC);

CREATE TABLE smart_data (
    machine_id           UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    recorded_at          TIMESTAMPTZ NOT NULL,
    device               VARCHAR(255) NOT NULL,
    model                VARCHAR(255),
    serial_number        VARCHAR(100),
    health_status        VARCHAR(20) NOT NULL DEFAULT 'unknown'
                         CHECK (health_status IN ('passed', 'warning', 'failed', 'unknown')),
    temperature_c        INT,
    power_on_hours       BIGINT CHECK (power_on_hours >= 0),
    reallocated_sectors  BIGINT CHECK (reallocated_sectors >= 0),
    pending_sectors      BIGINT CHECK (pending_sectors >= 0),
    uncorrectable_errors BIGINT CHECK (uncorrectable_errors >= 0),
    wear_level_percent   DECIMAL(5, 2) CHECK (wear_level_percent BETWEEN 0 AND 100),
    attributes           JSONB,
    UNIQUE (machine_id, recorded_at, device)
);
CREATE INDEX idx_smart_data_recorded_at ON smart_data (recorded_at DESC);

-- Audit trail (login, certificate, token actions...). Fixed 30-day retention.
CREATE TABLE activity_logs (
    id         UUID NOT NULL DEFAULT gen_random_uuid(),
    client_id  UUID REFERENCES clients (id) ON DELETE CASCADE,
    user_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    machine_id UUID REFERENCES machines (id) ON DELETE SET NULL,
    action     VARCHAR(100) NOT NULL,
    details    JSONB NOT NULL DEFAULT '{}'::jsonb,
    ip_address VARCHAR(45),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_activity_logs_client ON activity_logs (client_id, created_at DESC);
CREATE INDEX idx_activity_logs_created_at ON activity_logs (created_at DESC);

-- Health checks behind the public status page. Fixed 30-day retention.
CREATE TABLE service_uptime (
    id               UUID NOT NULL DEFAULT gen_random_uuid(),
    service_name     VARCHAR(50) NOT NULL,
    status           VARCHAR(20) NOT NULL CHECK (status IN ('online', 'degraded', 'offline')),
    response_time_ms INT CHECK (response_time_ms >= 0),
    checked_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_service_uptime_checked_at ON service_uptime (checked_at DESC);

-- +goose Down
DROP TABLE IF EXISTS service_uptime, activity_logs, smart_data, event_logs, disk_info, metrics;
