-- The audit log: who changed what (plans, responders, tokens, users,
-- incident status, drills, the registry). Append-only: the database itself
-- refuses to change or delete an entry, whatever the application does.
-- The id column and the refusing triggers differ between the databases;
-- storage/dialect.go keeps only this database's "-- +dialect" blocks.

-- +goose Up
-- +dialect postgres
CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
-- +dialect sqlite
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
-- +dialect end
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    community_id TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_community ON audit_log (community_id, id);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, id);

-- +dialect postgres
-- +goose StatementBegin
CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();
-- +dialect sqlite
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
-- +goose StatementEnd
-- +dialect end

-- +goose Down
DROP TABLE audit_log;
-- +dialect postgres
DROP FUNCTION audit_log_refuse();
-- +dialect end
