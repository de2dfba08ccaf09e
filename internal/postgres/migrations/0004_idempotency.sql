-- The responses of WorkOS-compatible POSTs by Idempotency-Key, so that a
-- retried request (on any instance, after a restart) is answered with the
-- first response instead of being performed again. A row with a NULL
-- status is claimed by a request still running. Rows older than 24 hours
-- are expired and pruned by the server; the table holds no relationship
-- data and has no change-log trigger.
CREATE TABLE idempotency_keys (
    key        text PRIMARY KEY,
    digest     bytea NOT NULL,
    status     integer,
    revision   bigint NOT NULL DEFAULT 0,
    body       bytea NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
