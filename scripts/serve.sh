#!/usr/bin/env bash
# The one command for a newcomer: install, build the index on first run, serve on :8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/ketfaq serve "$@"
