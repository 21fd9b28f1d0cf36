// The PostgreSQL schema, as numbered migrations (applied in order, each once, under an
// advisory lock). Same tables and columns as the embedded engine, so records map alike;
// JSON is stored as text and flags as 0/1 for the same reason.

export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE secrets (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    description     TEXT,
    pinned_provider TEXT,
    current_version INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (name, scope)
  );
  CREATE TABLE secret_versions (
    secret_id   TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
  );
  CREATE TABLE credentials (
    name                  TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    auth                  TEXT NOT NULL,
    bindings              TEXT NOT NULL,
    hosts                 TEXT NOT NULL,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  );
  CREATE TABLE capabilities (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    credential    TEXT NOT NULL REFERENCES credentials(name),
    hosts         TEXT NOT NULL,
    methods       TEXT NOT NULL,
    path_prefixes TEXT NOT NULL,
    limits        TEXT NOT NULL,
    created_at    TEXT NOT NULL
  );
  CREATE TABLE oauth_tokens (
    credential TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE TABLE endpoint_overrides (
    provider              TEXT PRIMARY KEY,
    hosts                 TEXT NOT NULL,
    token_endpoint        TEXT,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  );
  CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    token_hash TEXT UNIQUE,
    public_key TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  );
  CREATE TABLE grants (
    agent_id          TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    capability        TEXT NOT NULL,
    methods           TEXT,
    rate_count        INTEGER,
    rate_period       BIGINT,
    expires_at        TEXT,
    created_at        TEXT NOT NULL,
    approve           TEXT,
    first_approved_at TEXT,
    PRIMARY KEY (agent_id, capability)
  );
  CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    capability   TEXT NOT NULL,
    method       TEXT NOT NULL,
    host         TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT
  );
  CREATE INDEX approvals_by_status ON approvals (status, requested_at);
  CREATE TABLE nonces (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
  );
  CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION,
    at     BIGINT NOT NULL
  );
  CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    capability  TEXT,
    method      TEXT,
    host        TEXT,
    path        TEXT,
    decision    TEXT NOT NULL,
    reason      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    outcome     TEXT,
    outcome_mac TEXT
  );
  CREATE INDEX audit_log_capability ON audit_log (capability, seq);
  CREATE TABLE audit_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE capability_policies (
    capability TEXT PRIMARY KEY,
    policy     TEXT NOT NULL
  );
  `,
  `
  ALTER TABLE secrets ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
  `,
  `
  ALTER TABLE secrets ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE agents ADD COLUMN context TEXT;
  ALTER TABLE capabilities ADD COLUMN websocket BOOLEAN NOT NULL DEFAULT false;
  `,
  `
  ALTER TABLE secrets ADD COLUMN allow_short INTEGER NOT NULL DEFAULT 0;
  `,
  `
  ALTER TABLE approvals ADD COLUMN details TEXT;
  `,
  // State seals and the audit anchor: a vault from before them is marked, and sealed by the
  // first process that unlocks it (a new vault has no meta yet, and is sealed by init).
  `
  INSERT INTO meta (key, value) SELECT 'unsealed', '1'
  WHERE EXISTS (SELECT 1 FROM meta) AND NOT EXISTS (SELECT 1 FROM meta WHERE key IN ('state_seal', 'audit_anchor'));
  `,
  // Flags are 0/1 in every table and in both engines: the one flag stored as BOOLEAN follows
  // (true becomes 1; an integer column stays as it is, so the step can run again).
  `
  ALTER TABLE capabilities ALTER COLUMN websocket DROP DEFAULT;
  ALTER TABLE capabilities ALTER COLUMN websocket TYPE INTEGER USING websocket::integer;
  ALTER TABLE capabilities ALTER COLUMN websocket SET DEFAULT 0;
  `,
];
