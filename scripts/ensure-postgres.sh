#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests,
# installing and starting Debian's package when it is missing. Prints the
# admin URL the tests should use on its last line.
set -euo pipefail

host=127.0.0.1
port=5432
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if ! answers; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "PostgreSQL is missing: installing it with apt-get" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Local tests only: trust connections from loopback, as on the dev machines.
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! $sudo grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    $sudo sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  ctl() { $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main "$1" >&2 2>/dev/null || $sudo pg_ctlcluster "$version" main "$1" >&2; }
  if $sudo pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    echo "reloading PostgreSQL $version" >&2
    ctl reload
  else
    echo "starting PostgreSQL $version" >&2
    ctl start
  fi
  for _ in $(seq 1 60); do
    answers && break
    sleep 0.5
  done
  answers || { echo "PostgreSQL did not come up on $host:$port" >&2; exit 1; }
fi
# The postgres database exists on every cluster; the tests create their own.
echo "postgres://postgres@$host:$port/postgres?sslmode=disable"
