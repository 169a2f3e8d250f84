-- Drills: schedules per community, and each drill run through the real
-- pipeline with its scope and after-action report.

-- +goose Up
CREATE TABLE drill_schedules (
    id            TEXT PRIMARY KEY,
    community_id  TEXT NOT NULL REFERENCES communities(id),
    spec          TEXT NOT NULL,
    doc           TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT true,
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX drill_schedules_community ON drill_schedules (community_id);

CREATE TABLE drills (
    id            TEXT PRIMARY KEY,
    community_id  TEXT NOT NULL,
    schedule_id   TEXT NOT NULL DEFAULT '',
    doc           TEXT NOT NULL,
    alarm_id      TEXT NOT NULL UNIQUE,
    incident_id   TEXT NOT NULL UNIQUE,
    started_at    BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    ended_at      BIGINT NOT NULL DEFAULT 0,
    report        TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX drills_community ON drills (community_id, started_at);

-- +goose Down
DROP TABLE drills;
DROP TABLE drill_schedules;
