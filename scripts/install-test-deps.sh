#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: a PostgreSQL 15 server (the tests start their own
# throw-away cluster), Debian's Chromium for the browser tests, and poppler-utils to render PDFs to PNG.
# Idempotent: installs only what is missing. Uses apt-get (root on these machines; sudo otherwise).
set -euo pipefail
need=()
ls /usr/lib/postgresql/15/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies present (postgresql-15, chromium, poppler-utils, fonts)"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
