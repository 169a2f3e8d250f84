-- The number residents text to raise an alarm. Twilio posts it as "To", so a
-- text from a number nobody registered can be told which community it was
-- meant for. Several communities may share one number.

-- +goose Up
ALTER TABLE communities ADD COLUMN sms_number TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE communities DROP COLUMN sms_number;
