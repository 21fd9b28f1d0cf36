// The SQLite schema: vault.db as numbered migrations (PRAGMA user_version), and the audit
// log's own file. Same tables and columns as PostgreSQL's (postgres-schema.ts), so one core
// (core.ts) reads and writes both.

export const AUDIT_SCHEMA_VERSION = 1;
export const AUDIT_SCHEMA = `
  CREATE TABLE audit.audit_log (
    seq         INTEGER PRIMARY KEY,
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
  ) STRICT;
  CREATE INDEX audit.audit_log_capability ON audit_log (capability, seq);
  CREATE TABLE audit.audit_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
`;

export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
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
  ) STRICT;
  CREATE TABLE secret_versions (
    secret_id   TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
  ) STRICT;
  `,
  `
  CREATE TABLE credentials (
    name                  TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    auth                  TEXT NOT NULL,
    bindings              TEXT NOT NULL,
    hosts                 TEXT NOT NULL,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  ) STRICT;
  CREATE TABLE capabilities (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    credential    TEXT NOT NULL REFERENCES credentials(name),
    hosts         TEXT NOT NULL,
    methods       TEXT NOT NULL,
    path_prefixes TEXT NOT NULL,
    limits        TEXT NOT NULL,
    created_at    TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE oauth_tokens (
    credential TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE endpoint_overrides (
    provider              TEXT PRIMARY KEY,
    hosts                 TEXT NOT NULL,
    token_endpoint        TEXT,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    token_hash TEXT UNIQUE,
    public_key TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  ) STRICT;
  CREATE TABLE grants (
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    capability   TEXT NOT NULL,
    methods      TEXT,
    rate_count   INTEGER,
    rate_period  INTEGER,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (agent_id, capability)
  ) STRICT;
  `,
  `
  CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  `,
  `
  ALTER TABLE grants ADD COLUMN approve TEXT;
  ALTER TABLE grants ADD COLUMN first_approved_at TEXT;
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
  ) STRICT;
  CREATE INDEX approvals_by_status ON approvals (status, requested_at);
  `,
  `
  CREATE TABLE nonces (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at     INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE capability_policies (
    capability TEXT PRIMARY KEY,
    policy     TEXT NOT NULL
  ) STRICT;
  `,
  `
  ALTER TABLE secrets ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
  `,
  `
  ALTER TABLE secrets ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE agents ADD COLUMN context TEXT;
  ALTER TABLE capabilities ADD COLUMN websocket INTEGER NOT NULL DEFAULT 0;
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
];
