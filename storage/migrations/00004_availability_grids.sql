-- Responders' weekly availability windows, the grids (网格) of a community
-- that the readiness report measures coverage for, and scheduled jobs.

-- +goose Up
ALTER TABLE responders ADD COLUMN availability TEXT NOT NULL DEFAULT '[]';

CREATE TABLE grids (
    id            TEXT NOT NULL,
    community_id  TEXT NOT NULL REFERENCES communities(id),
    name          TEXT NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    lng           DOUBLE PRECISION NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (community_id, id)
);

-- One row per fired slot of a scheduled job: the job runs once per slot
-- however many replicas fired it, and a restart knows what it missed.
CREATE TABLE schedule_runs (
    job       TEXT NOT NULL,
    slot      BIGINT NOT NULL,
    fired_at  BIGINT NOT NULL,
    done_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job, slot)
);

-- +goose Down
DROP TABLE schedule_runs;
DROP TABLE grids;
ALTER TABLE responders DROP COLUMN availability;
