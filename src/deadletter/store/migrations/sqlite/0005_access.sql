-- API tokens (ops/tokens.py): only a SHA-256 of each token is stored. The prefix is the
-- token's first characters, not secret: it finds the row and names the token in lists.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);

-- Failures taken by `deadletter archive` (ops/archive.py). A row is claimed into the
-- batch written as blob `blob_key` (named in the claiming transaction, once the claim
-- shows which rows it won); `archived_at` is set once that blob was read back and
-- matched, and only then may the failure leave the database.
CREATE TABLE archived_failures (
    dead_letter_id TEXT PRIMARY KEY,
    blob_key       TEXT,
    claimed_at     REAL NOT NULL,
    archived_at    REAL
);
-- Batches claimed but not finished (a crash, a blob store that failed) are few.
CREATE INDEX archived_failures_unfinished ON archived_failures (blob_key)
    WHERE archived_at IS NULL;
