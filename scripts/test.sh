#!/usr/bin/env bash
# The README's test command. On a fresh machine it installs what the tests need, then runs them:
# Debian's chromium (browser tests) and fonts-nanum (Hangul) when missing, and the pinned Python
# packages (requirements-dev.txt: Ray's optional one included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || missing+=(fonts-nanum)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} (apt)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q -r requirements-dev.txt
# Two pytest-xdist workers, a file each at a time (a module's server or Ray head is started once), the longest files
# first (tests/conftest.py); ADGEN_TEST_WORKERS=0 runs everything in one process.
exec python3 -m pytest -n "${ADGEN_TEST_WORKERS:-2}" --dist loadfile "$@"
