-- Training budgets per team (an organisation) and year, and what the team
-- spent on training. Money is in fen (分), never floating point.

-- +goose Up
CREATE TABLE training_budgets (
    community_id  TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    year          INTEGER NOT NULL,
    amount_fen    BIGINT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    updated_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (community_id, team_id, year)
);

-- One row per course paid for. day is the course's date in Asia/Shanghai
-- (YYYY-MM-DD, so it sorts); year is its year, the budget it counts against.
CREATE TABLE training_entries (
    id              TEXT NOT NULL,
    community_id    TEXT NOT NULL,
    team_id         TEXT NOT NULL,
    year            INTEGER NOT NULL,
    day             TEXT NOT NULL,
    course          TEXT NOT NULL,
    amount_fen      BIGINT NOT NULL,
    attendees       TEXT NOT NULL DEFAULT '[]',
    attendee_count  INTEGER NOT NULL,
    created_by      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (community_id, id)
);
CREATE INDEX training_entries_team ON training_entries (community_id, team_id, year);
CREATE INDEX training_entries_day ON training_entries (community_id, team_id, day);

-- +goose Down
DROP TABLE training_entries;
DROP TABLE training_budgets;
