#!/usr/bin/env bash
# Runs the fault tests of docs/reliability.md and prints the table's rows from
# what they measured. The same tests run in CI (scripts/test.sh) in their short
# form; SHOUWANG_SOAK=1 runs the long variants (a minute-long Twilio outage,
# more alarms, more kills):
#
#   scripts/reliability.sh            # short, a few minutes
#   SHOUWANG_SOAK=1 scripts/reliability.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SHOUWANG_TEST_DATABASE_URL:-}" ]; then
  SHOUWANG_TEST_DATABASE_URL=$(scripts/ensure-postgres.sh | tail -n 1)
  export SHOUWANG_TEST_DATABASE_URL
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
export SHOUWANG_RELIABILITY_OUT="$out"
# The fault tests; -p 1 so they do not share the two cores with each other.
go test -race -count=1 -p 1 -timeout 60m -run "${SHOUWANG_FAULT_TESTS:-^(TestScenarioKilledDuringLoad|TestClusterLeaderAndReplicaStopped|TestDatabaseOutageMidLoad|TestScenarioTwilioOutage|TestScenarioPoisonAlarmsGoToDeadLetters|TestAbuseResidentPresses100Times)$}" ./cmd/shouwang/

echo
echo "| fault | how injected | store | alarms sent | accepted | lost | duplicate SMS | note |"
echo "|---|---|---|---|---|---|---|---|"
jq -r '"| \(.fault) | \(.injected) | \(.store // "") | \(.sent) | \(.accepted) | \(.lost) | \(.duplicate_sms) | \(.note // "") |"' "$out"
