-- Lockgate event store (ADR 0002). Idempotent: applied at every start.
-- The events table is append-only; it is also the outbox that the relay follows (ADR 0004).

CREATE TABLE IF NOT EXISTS events (
    global_position bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- unique, increasing; NOT gap-free, NOT commit-ordered
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),   -- visibility horizon for tailing readers
    event_id        uuid        NOT NULL UNIQUE,                         -- = Nats-Msg-Id
    tenant_id       text        NOT NULL,
    stream_id       text        NOT NULL,                                -- '<category>-<id>'
    category        text        GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    version         integer     NOT NULL CHECK (version > 0),            -- 1-based position in the stream
    type            text        NOT NULL,                                -- wire tag '<context>.<event>.v<N>'
    schema_version  smallint    NOT NULL,
    data            json        NOT NULL,                                -- written once, read whole: json (ADR 0002)
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (tenant_id, stream_id, version) -- optimistic concurrency
);
CREATE INDEX IF NOT EXISTS events_tx_position ON events (tx_id, global_position);
CREATE INDEX IF NOT EXISTS events_tenant_tx_position ON events (tenant_id, tx_id, global_position);
CREATE INDEX IF NOT EXISTS events_tenant_type ON events (tenant_id, type, global_position);

-- A retried command (same idempotency key) is a no-op; written in the same statement as its events.
CREATE TABLE IF NOT EXISTS command_log (
    tenant_id       text        NOT NULL,
    idempotency_key text        NOT NULL,
    stream_id       text        NOT NULL,
    first_version   integer     NOT NULL,
    last_version    integer     NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);

-- How far each follower (relay, projectors) got, as a (tx_id, global_position) pair.
CREATE TABLE IF NOT EXISTS checkpoints (
    name            text        PRIMARY KEY,
    tx_id           xid8        NOT NULL,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Stored events are immutable: refuse UPDATE, DELETE and TRUNCATE at the database level, for every role.
CREATE OR REPLACE FUNCTION lockgate_refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lockgate events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only_rows') THEN
        CREATE TRIGGER events_append_only_rows BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION lockgate_refuse_event_change();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only_truncate') THEN
        CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION lockgate_refuse_event_change();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'command_log_append_only_rows') THEN
        CREATE TRIGGER command_log_append_only_rows BEFORE UPDATE OR DELETE ON command_log
            FOR EACH ROW EXECUTE FUNCTION lockgate_refuse_event_change();
    END IF;
    -- Without its keys, retried commands would be appended again.
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'command_log_append_only_truncate') THEN
        CREATE TRIGGER command_log_append_only_truncate BEFORE TRUNCATE ON command_log
            FOR EACH STATEMENT EXECUTE FUNCTION lockgate_refuse_event_change();
    END IF;
END;
$$;

-- Stores created before ADR 0002's revision kept ``data`` as jsonb: convert them once (a table rewrite).
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'data') = 'jsonb'::regtype THEN
        ALTER TABLE events ALTER COLUMN data TYPE json USING data::text::json;
    END IF;
END;
$$;

-- Large payloads (a graph ingestion's chunks of node records) are TOASTed: lz4 compresses about twice as fast
-- as the default pglz, and smaller (measured on a 25 MB batch). Only altered once (ALTER TABLE takes an
-- exclusive lock); a server built without lz4 keeps pglz.
DO $$
BEGIN
    IF (SELECT attcompression FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'data') <> 'l' THEN
        ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR undefined_object THEN
    NULL;
END;
$$;
