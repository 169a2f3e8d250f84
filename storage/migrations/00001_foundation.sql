-- Portable schema: it runs unchanged on PostgreSQL and SQLite.
-- Times are BIGINT unix milliseconds; lists and documents are JSON in TEXT.

-- +goose Up
CREATE TABLE communities (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_en     TEXT NOT NULL DEFAULT '',
    lat         DOUBLE PRECISION NOT NULL,
    lng         DOUBLE PRECISION NOT NULL,
    locale      TEXT NOT NULL DEFAULT 'zh-CN',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE organisations (
    id            TEXT PRIMARY KEY,
    community_id  TEXT NOT NULL REFERENCES communities(id),
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    duty_phone    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX organisations_community ON organisations (community_id, kind);

CREATE TABLE responders (
    id             TEXT PRIMARY KEY,
    community_id   TEXT NOT NULL REFERENCES communities(id),
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL,
    skills         TEXT NOT NULL DEFAULT '[]',
    certificates   TEXT NOT NULL DEFAULT '[]',
    party_member   BOOLEAN NOT NULL DEFAULT false,
    kind           TEXT NOT NULL DEFAULT 'volunteer',
    team_id        TEXT NOT NULL DEFAULT '',
    lat            DOUBLE PRECISION NOT NULL,
    lng            DOUBLE PRECISION NOT NULL,
    available      BOOLEAN NOT NULL DEFAULT true,
    busy_incident  TEXT NOT NULL DEFAULT '',
    locale         TEXT NOT NULL DEFAULT 'zh-CN',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (community_id, phone)
);
CREATE INDEX responders_near ON responders (community_id, lat, lng);
CREATE INDEX responders_phone ON responders (phone);

CREATE TABLE tokens (
    hash          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    community_id  TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);

CREATE TABLE alarms (
    id            TEXT PRIMARY KEY,
    community_id  TEXT NOT NULL,
    resident      TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    type          TEXT NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    lng           DOUBLE PRECISION NOT NULL,
    has_location  BOOLEAN NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    note          TEXT NOT NULL DEFAULT '',
    drill         BOOLEAN NOT NULL DEFAULT false,
    received_at   BIGINT NOT NULL,
    incident_id   TEXT NOT NULL DEFAULT '',
    opened        BOOLEAN NOT NULL DEFAULT false,
    processed_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alarms_resident ON alarms (community_id, resident);
CREATE INDEX alarms_incident ON alarms (incident_id);

CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    community_id    TEXT NOT NULL,
    type            TEXT NOT NULL,
    category        TEXT NOT NULL,
    severity        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    lat             DOUBLE PRECISION NOT NULL,
    lng             DOUBLE PRECISION NOT NULL,
    address         TEXT NOT NULL DEFAULT '',
    reports         INTEGER NOT NULL DEFAULT 1,
    drill           BOOLEAN NOT NULL DEFAULT false,
    wave            INTEGER NOT NULL DEFAULT 0,
    accepted        INTEGER NOT NULL DEFAULT 0,
    needed          INTEGER NOT NULL DEFAULT 1,
    version         BIGINT NOT NULL DEFAULT 0,
    opened_at       BIGINT NOT NULL,
    last_report_at  BIGINT NOT NULL,
    closed_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX incidents_open ON incidents (community_id, type, status, last_report_at);
CREATE INDEX incidents_status ON incidents (status, opened_at);

-- A row per (community, type) that correlation locks, so two replicas never
-- open two incidents for the same fire at the same moment.
CREATE TABLE correlation_locks (
    community_id  TEXT NOT NULL,
    type          TEXT NOT NULL,
    n             BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (community_id, type)
);

CREATE TABLE timeline (
    id           TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_incident ON timeline (incident_id, at);

CREATE TABLE waves (
    incident_id  TEXT NOT NULL,
    wave         INTEGER NOT NULL,
    radius_m     DOUBLE PRECISION NOT NULL,
    started_at   BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    PRIMARY KEY (incident_id, wave)
);

CREATE TABLE offers (
    id            TEXT PRIMARY KEY,
    incident_id   TEXT NOT NULL,
    responder_id  TEXT NOT NULL,
    wave          INTEGER NOT NULL,
    status        TEXT NOT NULL,
    distance_m    DOUBLE PRECISION NOT NULL,
    created_at    BIGINT NOT NULL,
    answered_at   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (incident_id, responder_id)
);
CREATE INDEX offers_responder ON offers (responder_id, status);

-- Every text the service sends, keyed so a redelivered event never sends twice.
CREATE TABLE sms_outbox (
    id            TEXT PRIMARY KEY,
    dedup_key     TEXT NOT NULL UNIQUE,
    community_id  TEXT NOT NULL DEFAULT '',
    incident_id   TEXT NOT NULL DEFAULT '',
    offer_id      TEXT NOT NULL DEFAULT '',
    to_phone      TEXT NOT NULL,
    body          TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    status        TEXT NOT NULL,
    provider_sid  TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX sms_outbox_status ON sms_outbox (status, created_at);
CREATE INDEX sms_outbox_sid ON sms_outbox (provider_sid);

-- What the dev sink "sent" when no Twilio credentials are configured.
CREATE TABLE dev_sms (
    sid         TEXT PRIMARY KEY,
    to_phone    TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE inbound_sms (
    sid          TEXT PRIMARY KEY,
    from_phone   TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    outcome      TEXT NOT NULL DEFAULT ''
);

-- Events committed with the state change that caused them; the relay
-- publishes them to JetStream and deletes them.
CREATE TABLE event_outbox (
    id          TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    not_before  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE INDEX event_outbox_created ON event_outbox (created_at);

-- +goose Down
DROP TABLE event_outbox;
DROP TABLE inbound_sms;
DROP TABLE dev_sms;
DROP TABLE sms_outbox;
DROP TABLE offers;
DROP TABLE waves;
DROP TABLE timeline;
DROP TABLE correlation_locks;
DROP TABLE incidents;
DROP TABLE alarms;
DROP TABLE tokens;
DROP TABLE responders;
DROP TABLE organisations;
DROP TABLE communities;
