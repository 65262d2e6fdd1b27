-- Plain-PostgreSQL mode (Aurora/RDS have no TimescaleDB): the time-series tables stay plain
-- and the hourly rollups are tables with the continuous aggregates' names and columns, kept
-- fresh by internal/rollup. Application queries are the same in both modes.
-- Applied only when the database is migrated in "postgres" mode (see internal/migrate).

-- +goose Up
INSERT INTO schema_settings (key, value) VALUES ('timeseries_mode', 'postgres')
    ON CONFLICT (key) DO NOTHING;

-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT value FROM schema_settings WHERE key = 'timeseries_mode') <> 'postgres' THEN
        RAISE EXCEPTION 'database is in % mode, refusing to apply postgres migrations',
            (SELECT value FROM schema_settings WHERE key = 'timeseries_mode');
    END IF;
END
$$;
-- +goose StatementEnd

CREATE TABLE metrics_hourly (
    bucket       TIMESTAMPTZ NOT NULL,
    machine_id   UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    cpu_avg      DOUBLE PRECISION,
    cpu_min      DOUBLE PRECISION,
    cpu_max      DOUBLE PRECISION,
    ram_avg      DOUBLE PRECISION,
    ram_min      DOUBLE PRECISION,
    ram_max      DOUBLE PRECISION,
    cpu_temp_avg DOUBLE PRECISION,
    cpu_temp_min DOUBLE PRECISION,
    cpu_temp_max DOUBLE PRECISION,
    sample_count BIGINT NOT NULL,
    PRIMARY KEY (machine_id, bucket)
);
CREATE INDEX idx_metrics_hourly_bucket ON metrics_hourly (bucket);

CREATE TABLE disk_hourly (
    bucket         TIMESTAMPTZ NOT NULL,
    machine_id     UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    mount_point    VARCHAR(255) NOT NULL,
    disk_usage_avg NUMERIC,
    disk_usage_max NUMERIC,
    sample_count   BIGINT NOT NULL,
    PRIMARY KEY (machine_id, mount_point, bucket)
);
CREATE INDEX idx_disk_hourly_bucket ON disk_hourly (bucket);

CREATE TABLE network_hourly (
    bucket          TIMESTAMPTZ NOT NULL,
    machine_id      UUID NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    bytes_recv_avg  NUMERIC,
    bytes_recv_max  BIGINT,
    bytes_sent_avg  NUMERIC,
    bytes_sent_max  BIGINT,
    packet_loss_avg DOUBLE PRECISION,
    packet_loss_max DOUBLE PRECISION,
    latency_avg     DOUBLE PRECISION,
    latency_max     DOUBLE PRECISION,
    sample_count    BIGINT NOT NULL,
    PRIMARY KEY (machine_id, bucket)
);
CREATE INDEX idx_network_hourly_bucket ON network_hourly (bucket);

-- +goose Down
DROP TABLE IF EXISTS network_hourly, disk_hourly, metrics_hourly;
DELETE FROM schema_settings WHERE key = 'timeseries_mode';
