-- One-tap links, voice calls, template-only texts and registered residents.

-- +goose Up
-- Every text names its template and parameters, so a provider that sends by
-- registered template id can be added, and nothing is free-form.
ALTER TABLE sms_outbox ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_outbox ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sms_outbox ADD COLUMN locale TEXT NOT NULL DEFAULT 'zh-CN';
-- sms, or voice for a call that reads the text out with a keypad menu.
ALTER TABLE sms_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';
-- Set when this text went out inside another one (several open offers to
-- one person become one text).
ALTER TABLE sms_outbox ADD COLUMN bundled_into TEXT NOT NULL DEFAULT '';
CREATE INDEX sms_outbox_recipient ON sms_outbox (to_phone, sent_at);

ALTER TABLE dev_sms ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';

-- Single-purpose links sent in texts; only a hash of the token is kept.
CREATE TABLE links (
    hash          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    target        TEXT NOT NULL,
    community_id  TEXT NOT NULL DEFAULT '',
    locale        TEXT NOT NULL DEFAULT 'zh-CN',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX links_target ON links (kind, target);

ALTER TABLE offers ADD COLUMN arrived_at BIGINT NOT NULL DEFAULT 0;

-- Residents who may press alarms; a phone lets us tell them what happens.
CREATE TABLE residents (
    id            TEXT PRIMARY KEY,
    community_id  TEXT NOT NULL REFERENCES communities(id),
    name          TEXT NOT NULL,
    phone         TEXT NOT NULL DEFAULT '',
    address       TEXT NOT NULL DEFAULT '',
    lat           DOUBLE PRECISION NOT NULL DEFAULT 0,
    lng           DOUBLE PRECISION NOT NULL DEFAULT 0,
    vulnerable    TEXT NOT NULL DEFAULT '',
    locale        TEXT NOT NULL DEFAULT 'zh-CN',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX residents_community ON residents (community_id);
CREATE INDEX residents_phone ON residents (phone);

-- +goose Down
DROP TABLE residents;
ALTER TABLE offers DROP COLUMN arrived_at;
DROP TABLE links;
ALTER TABLE dev_sms DROP COLUMN channel;
DROP INDEX sms_outbox_recipient;
ALTER TABLE sms_outbox DROP COLUMN bundled_into;
ALTER TABLE sms_outbox DROP COLUMN channel;
ALTER TABLE sms_outbox DROP COLUMN locale;
ALTER TABLE sms_outbox DROP COLUMN params;
ALTER TABLE sms_outbox DROP COLUMN template;
