-- Fewer index writes per text, and an index the console was missing
-- (issue 8).
--
-- A text is inserted once and updated two or three times on its way out;
-- every index on sms_outbox is written each time a column it holds
-- changes, and the outbox insert was the most expensive statement of an
-- alarm's path (about 200 µs on SQLite, seven B-trees).
--
-- sms_outbox_status served no query of the service.
-- sms_outbox_sid now holds only texts the provider has taken: the lookup
-- by a receipt's SID names provider_sid <> '' (which also keeps an empty
-- SID from matching every unsent text).
-- sms_outbox_incident serves an incident's texts in the console, which
-- read the whole table before.

-- +goose Up
DROP INDEX sms_outbox_status;
DROP INDEX sms_outbox_sid;
CREATE INDEX sms_outbox_sid ON sms_outbox (provider_sid) WHERE provider_sid <> '';
CREATE INDEX sms_outbox_incident ON sms_outbox (incident_id, created_at) WHERE incident_id <> '';

-- +goose Down
DROP INDEX sms_outbox_incident;
DROP INDEX sms_outbox_sid;
CREATE INDEX sms_outbox_sid ON sms_outbox (provider_sid);
CREATE INDEX sms_outbox_status ON sms_outbox (status, created_at);
