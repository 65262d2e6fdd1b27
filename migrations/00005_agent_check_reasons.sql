-- The active-certificate rule, defined once: certs.CheckPresented (the agent guard) and the
-- heartbeat batch both call this function, so Go keeps only the checks that need no
-- database (certs.Inspect: CN form, validity period). It replaces 00004's body with the
-- same signature and the same decision, and its SQLSTATE OA401 message now names the
-- reason (for the log only: the agent always gets one generic 401).
--
-- A certificate is accepted when its serial is recorded, for the client and machine its CN
-- names, the machine still exists (and belongs to that client), it is unrevoked, and the
-- record's expiry is after p_now. p_now is the application's clock (the caller's
-- transaction instant), never the server's now().

-- +goose Up
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

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_agent(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM client_certificates c
        JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id
        WHERE c.serial = p_serial AND c.client_id = p_client AND c.machine_id = p_machine
          AND c.revoked_at IS NULL AND c.expires_at > p_now
    ) THEN
        RAISE EXCEPTION 'agent certificate not accepted' USING ERRCODE = 'OA401';
    END IF;
END
$$;
-- +goose StatementEnd
