-- Each replica's match index reconciles every minute with the responders
-- changed since its last look; without this index that is a whole-table scan.

-- +goose Up
CREATE INDEX responders_updated ON responders (updated_at);

-- +goose Down
DROP INDEX responders_updated;
