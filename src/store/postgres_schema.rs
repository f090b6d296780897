//! The PostgreSQL schema, by version. Applied on open, idempotently.

/// Statements of schema version 1.
pub(crate) const V1: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    plan        JSON NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_request ON runs (request_id, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, updated_at);

CREATE TABLE IF NOT EXISTS outcomes (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY,
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    instance  TEXT NOT NULL,
    step      TEXT NOT NULL,
    status    TEXT NOT NULL,
    due_at    BIGINT,
    body      JSON NOT NULL,
    PRIMARY KEY (run_id, instance)
);
CREATE INDEX IF NOT EXISTS outcomes_due ON outcomes (due_at) WHERE status = 'waiting';

CREATE TABLE IF NOT EXISTS requests (
    id                TEXT PRIMARY KEY,
    body              JSON NOT NULL,
    state             TEXT NOT NULL,
    reason            TEXT,
    received          TEXT NOT NULL,
    deadline          TEXT NOT NULL,
    extended          BOOLEAN NOT NULL DEFAULT FALSE,
    extension_reason  TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, received);
CREATE INDEX IF NOT EXISTS requests_deadline ON requests (deadline);

CREATE TABLE IF NOT EXISTS leases (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    worker      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    actor      TEXT,
    detail     JSON NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS evidence (
    id          BIGSERIAL PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    instance    TEXT NOT NULL,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    content     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_step ON evidence (run_id, instance);
"#;

/// Statements of schema version 2: the requests received through the Data Rights Protocol
/// and where their status callbacks stand, and the console's sessions.
pub(crate) const V2: &str = r#"
CREATE TABLE IF NOT EXISTS drp_requests (
    request_id        TEXT PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    agent             TEXT NOT NULL,
    agent_request_id  TEXT,
    status_callback   TEXT,
    sent              TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    seen_at           BIGINT NOT NULL DEFAULT 0,
    checked_at        BIGINT NOT NULL DEFAULT 0,
    next_at           BIGINT
);
CREATE INDEX IF NOT EXISTS drp_requests_due ON drp_requests (next_at) WHERE next_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    last_used  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_used ON console_sessions (last_used);
-- Requests received before: their agent is in their id (`drp-AGENT-` and 24 hex digits).
INSERT INTO drp_requests (request_id, agent)
    SELECT id, substr(id, 5, length(id) - 29) FROM requests
    WHERE id LIKE 'drp-%' AND length(id) > 29
    ON CONFLICT (request_id) DO NOTHING;
"#;

/// Made on every open (also in a store created before it existed): one apply run per request
/// that has not ended, so two processes starting the same request cannot both create one.
pub(crate) const ONE_LIVE_RUN: &str = "CREATE UNIQUE INDEX IF NOT EXISTS runs_one_live \
    ON runs (request_id) WHERE mode = 'apply' AND status NOT IN ('completed', 'abandoned')";
