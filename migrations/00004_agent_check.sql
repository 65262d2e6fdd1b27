-- The agent certificate check as one SQL statement, so the heartbeat can run it at the head
-- of its write batch (one round trip per heartbeat) instead of as a query before it. It
-- raises SQLSTATE OA401 unless the serial is the machine's active certificate (recorded for
-- that client and machine, unrevoked, unexpired); the error aborts the whole batch, so a
-- revoked agent writes nothing, on its very next request.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION optralis_assert_agent(p_serial TEXT, p_client UUID, p_machine UUID, p_now TIMESTAMPTZ)
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

-- +goose Down
DROP FUNCTION IF EXISTS optralis_assert_agent(TEXT, UUID, UUID, TIMESTAMPTZ);
