-- Contingency plans (versioned documents), plan runs and duties.

-- +goose Up
CREATE TABLE plans (
    id            TEXT NOT NULL,
    version       INTEGER NOT NULL,
    community_id  TEXT NOT NULL DEFAULT '',
    types         TEXT NOT NULL,
    sev_from      INTEGER NOT NULL,
    sev_to        INTEGER NOT NULL,
    title         TEXT NOT NULL,
    doc           TEXT NOT NULL,
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE plan_runs (
    id            TEXT PRIMARY KEY,
    incident_id   TEXT NOT NULL UNIQUE,
    plan_id       TEXT NOT NULL,
    version       INTEGER NOT NULL,
    title         TEXT NOT NULL,
    started_at    BIGINT NOT NULL
);

-- A duty is a plan step given to one party; steps copied at activation,
-- so a new plan version never changes a run under way.
CREATE TABLE duties (
    id             TEXT PRIMARY KEY,
    run_id         TEXT NOT NULL,
    incident_id    TEXT NOT NULL,
    community_id   TEXT NOT NULL,
    step_id        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    title          TEXT NOT NULL,
    instructions   TEXT NOT NULL DEFAULT '',
    assignee       TEXT NOT NULL,
    org_id         TEXT NOT NULL DEFAULT '',
    responder_id   TEXT NOT NULL DEFAULT '',
    resident_id    TEXT NOT NULL DEFAULT '',
    phone          TEXT NOT NULL DEFAULT '',
    due_minutes    DOUBLE PRECISION NOT NULL,
    depends_on     TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL,
    assigned_at    BIGINT NOT NULL DEFAULT 0,
    due_at         BIGINT NOT NULL DEFAULT 0,
    acked_at       BIGINT NOT NULL DEFAULT 0,
    done_at        BIGINT NOT NULL DEFAULT 0,
    overdue_at     BIGINT NOT NULL DEFAULT 0,
    acked_by       TEXT NOT NULL DEFAULT '',
    done_by        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX duties_run ON duties (run_id, seq);
CREATE INDEX duties_org ON duties (org_id, status);
CREATE INDEX duties_phone ON duties (phone, status);

-- What a volunteer checking on a vulnerable resident needs to know.
ALTER TABLE residents ADD COLUMN needs TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN contact TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE residents DROP COLUMN contact;
ALTER TABLE residents DROP COLUMN needs;
DROP TABLE duties;
DROP TABLE plan_runs;
DROP TABLE plans;
