//! The SQLite schema, by version. Applied on open, idempotently.

/// Statements of schema version 1.
pub(crate) const V1: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    plan        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_request ON runs (request_id, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, updated_at);

CREATE TABLE IF NOT EXISTS outcomes (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    instance  TEXT NOT NULL,
    step      TEXT NOT NULL,
    status    TEXT NOT NULL,
    due_at    INTEGER,
    body      TEXT NOT NULL,
    PRIMARY KEY (run_id, instance)
);
CREATE INDEX IF NOT EXISTS outcomes_due ON outcomes (due_at) WHERE status = 'waiting';

CREATE TABLE IF NOT EXISTS requests (
    id                TEXT PRIMARY KEY,
    body              TEXT NOT NULL,
    state             TEXT NOT NULL,
    reason            TEXT,
    received          TEXT NOT NULL,
    deadline          TEXT NOT NULL,
    extended          INTEGER NOT NULL DEFAULT 0,
    extension_reason  TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, received);
CREATE INDEX IF NOT EXISTS requests_deadline ON requests (deadline);

CREATE TABLE IF NOT EXISTS leases (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    worker      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    actor      TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE IF NOT EXISTS evidence (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    instance    TEXT NOT NULL,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    content     BLOB NOT NULL,
    created_at  INTEGER NOT NULL
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
    attempts          INTEGER NOT NULL DEFAULT 0,
    seen_at           INTEGER NOT NULL DEFAULT 0,
    checked_at        INTEGER NOT NULL DEFAULT 0,
    next_at           INTEGER
);
CREATE INDEX IF NOT EXISTS drp_requests_due ON drp_requests (next_at) WHERE next_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    last_used  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_used ON console_sessions (last_used);
-- Requests received before: their agent is in their id (`drp-AGENT-` and 24 hex digits).
INSERT OR IGNORE INTO drp_requests (request_id, agent)
    SELECT id, substr(id, 5, length(id) - 29) FROM requests
    WHERE id LIKE 'drp-%' AND length(id) > 29;
"#;

/// Made on every open (also in a store created before it existed): one apply run per request
/// that has not ended, so two processes starting the same request cannot both create one.
pub(crate) const ONE_LIVE_RUN: &str = "CREATE UNIQUE INDEX IF NOT EXISTS runs_one_live \
    ON runs (request_id) WHERE mode = 'apply' AND status NOT IN ('completed', 'abandoned')";
