#!/usr/bin/env bash
# Makes sure the command-line tools the tests use are installed: xmllint
# (Debian's libxml2-utils) checks CAP documents against the OASIS schema;
# Chromium runs the browser tests of the pages.
# Safe to run again: it installs only what is missing.
set -euo pipefail

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

if ! command -v xmllint >/dev/null 2>&1; then
  echo "xmllint is missing: installing libxml2-utils with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libxml2-utils >&2
fi
command -v xmllint >/dev/null 2>&1 || { echo "xmllint is still missing after installing libxml2-utils" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing: installing it with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after installing it" >&2; exit 1; }
