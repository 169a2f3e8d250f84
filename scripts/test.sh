#!/usr/bin/env bash
# The whole test suite, as CI runs it: PostgreSQL and xmllint first (installed if
# missing), then vet and every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SHOUWANG_TEST_DATABASE_URL:-}" ]; then
  SHOUWANG_TEST_DATABASE_URL=$(scripts/ensure-postgres.sh | tail -n 1)
  export SHOUWANG_TEST_DATABASE_URL
fi

scripts/ensure-tools.sh
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -race -count=1 -timeout 25m ./...
