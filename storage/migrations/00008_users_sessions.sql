-- Signing in from a browser: staff users with passwords, and sessions
-- behind the sw_session cookie (staff and residents).

-- +goose Up
-- username is stored lower-case, so UNIQUE makes it case-insensitive.
-- password_hash is an argon2id PHC string; it never leaves the database.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    community_id  TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);

-- Only the SHA-256 of the cookie value is kept: a copy of the database
-- signs nobody in. csrf is what the page echoes in X-CSRF-Token.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    community_id  TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
