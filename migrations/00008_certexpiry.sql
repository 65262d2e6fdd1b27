-- Agent certificate renewal (POST /agent/certificate/renew) and the certexpiry digest.
--
-- certificate_pem keeps each issued certificate (public data: the agent presents it on
-- every connection). A renewal whose answer the agent lost is retried with the same CSR
-- and the now-superseded certificate; within a short grace window the server answers with
-- the certificate it already issued for that key, read back from here, instead of signing
-- another one. Certificates issued before this migration have none (NULL).

-- +goose Up
ALTER TABLE client_certificates ADD COLUMN certificate_pem TEXT;

-- +goose Down
ALTER TABLE client_certificates DROP COLUMN certificate_pem;
