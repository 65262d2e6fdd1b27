-- Group ingest (issue 14): the heartbeat writer checks a whole group of heartbeats in one
-- statement, so the active-certificate and licence rules gain non-raising forms that return
-- a refusal code and reason per row (NULLs when accepted): a refused heartbeat is left out
-- of the group's writes while the others commit. The raising functions keep their
-- signatures and decisions for their other callers (the agent guard, renewal) and now call
-- the non-raising ones, so each rule is still defined once.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION optralis_agent_refusal(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ,
    OUT code TEXT, OUT reason TEXT)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r RECORD;
BEGIN
    SELECT c.client_id, c.machine_id, c.revoked_at, c.expires_at, m.deleted_at, cl.is_active INTO r
    FROM client_certificates c
    JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id
    JOIN clients cl ON cl.id = c.client_id
    WHERE c.serial = p_serial;
    IF NOT FOUND THEN
        code := 'OA401';
        reason := format('agent certificate not accepted: serial %s not recorded, or its machine is gone', p_serial);
    ELSIF r.client_id <> p_client OR r.machine_id <> p_machine THEN
        code := 'OA401';
        reason := format('agent certificate not accepted: serial %s recorded for %s:%s, CN says %s:%s',
            p_serial, r.client_id, r.machine_id, p_client, p_machine);
    ELSIF r.deleted_at IS NOT NULL THEN
        code := 'OA401';
        reason := format('agent certificate not accepted: serial %s: machine deleted', p_serial);
    ELSIF r.revoked_at IS NOT NULL THEN
        code := 'OA401';
        reason := format('agent certificate not accepted: serial %s revoked at %s', p_serial,
            to_char(r.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    ELSIF r.expires_at <= p_now THEN
        code := 'OA401';
        reason := format('agent certificate not accepted: serial %s expired', p_serial);
    ELSIF NOT r.is_active THEN
        code := 'OA403';
        reason := format('agent refused: client %s is disabled', p_client);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_agent(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    f RECORD;
BEGIN
    SELECT * INTO f FROM optralis_agent_refusal(p_serial, p_client, p_machine, p_now);
    IF f.code IS NOT NULL THEN
        RAISE EXCEPTION '%', f.reason USING ERRCODE = f.code;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION optralis_licence_refusal(p_client UUID, p_now TIMESTAMPTZ, p_grace INTERVAL,
    OUT code TEXT, OUT reason TEXT)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    expires TIMESTAMPTZ;
BEGIN
    SELECT license_expires_at INTO expires FROM clients WHERE id = p_client;
    IF expires IS NOT NULL AND expires + p_grace <= p_now THEN
        code := 'OA402';
        reason := format('agent refused: the licence of client %s expired at %s, grace period over', p_client,
            to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_licence(p_client UUID, p_now TIMESTAMPTZ, p_grace INTERVAL)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    f RECORD;
BEGIN
    SELECT * INTO f FROM optralis_licence_refusal(p_client, p_now, p_grace);
    IF f.code IS NOT NULL THEN
        RAISE EXCEPTION '%', f.reason USING ERRCODE = f.code;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_licence(p_client UUID, p_now TIMESTAMPTZ, p_grace INTERVAL)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    expires TIMESTAMPTZ;
BEGIN
    SELECT license_expires_at INTO expires FROM clients WHERE id = p_client;
    IF expires IS NOT NULL AND expires + p_grace <= p_now THEN
        RAISE EXCEPTION 'agent refused: the licence of client % expired at %, grace period over', p_client,
            to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') USING ERRCODE = 'OA402';
    END IF;
END
$$;
-- +goose StatementEnd
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
DROP FUNCTION IF EXISTS optralis_licence_refusal(UUID, TIMESTAMPTZ, INTERVAL);
DROP FUNCTION IF EXISTS optralis_agent_refusal(TEXT, UUID, UUID, TIMESTAMPTZ);
