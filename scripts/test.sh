#!/usr/bin/env bash
# The one command that tests everything: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then   # browser tests drive Debian's chromium
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium missing: browser tests will be skipped unless you install it (apt-get install chromium)" >&2
  fi
fi
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1
PY=.venv/bin/python

"$PY" -m pytest -q "$@"
