-- Indexes for the alarm → offer path under load (issue 8).
--
-- incidents_near serves correlation: an alarm looks for open incidents of
-- its type inside the box around it, so the cost is the incidents near it,
-- not every open incident of the type (the old incidents_open index made
-- each alarm read them all). last_report_at rides along so the incidents
-- of past years in the same band are skipped inside the index.
--
-- sms_outbox_pending_to serves the sender's bundling: the offers still
-- waiting for one phone, without reading every text that phone ever got.
-- Both databases use a partial index when the query names status = 'pending'.
--
-- body_key is a hash of a text's words (sms.bodyKey, computed in Go), so
-- the identical-text check finds the phone's texts with the same words by
-- index instead of reading every text the phone got within the hour; a
-- responder near a busy area gets hundreds. Rows from before keep 0, which
-- the check also reads until they leave its window.

-- +goose Up
CREATE INDEX incidents_near ON incidents (community_id, type, lat, lng, last_report_at);
CREATE INDEX sms_outbox_pending_to ON sms_outbox (to_phone, created_at) WHERE status = 'pending';
ALTER TABLE sms_outbox ADD COLUMN body_key BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sms_outbox_same_text ON sms_outbox (to_phone, body_key, sent_at);

-- +goose Down
DROP INDEX sms_outbox_same_text;
ALTER TABLE sms_outbox DROP COLUMN body_key;
DROP INDEX sms_outbox_pending_to;
DROP INDEX incidents_near;
