#!/usr/bin/env bash
# The one command that tests everything: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: chromium (browser tests), redis-server (limits shared by
# workers), postgresql (the data layer on PostgreSQL as well as SQLite).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "missing:$missing: their tests will be skipped unless you install them (apt-get install$missing)" >&2
  fi
fi
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1
PY=.venv/bin/python

.venv/bin/ruff check src tests bench   # the rules in pyproject.toml: errors, imports, modern syntax
"$PY" -m pytest -q "$@"

# The shipped corpus must lint clean (warnings allowed), the QA set must be valid, and the
# evaluation gate (qa/gate.yaml) must hold: crisis recall 1.0, retrieval and routing floors.
.venv/bin/ketfaq corpus lint
.venv/bin/ketfaq qa validate
.venv/bin/ketfaq eval --gate --quiet --out eval-out

# The learned safety model: retraining must reproduce the shipped artifact (thresholds and test
# figures within float noise), and the whole gate must hold its floors on the frozen test split
# and the blind set (docs/SAFETY.md). The data is ../shared/data, beside the checkout.
SAFETY_DATA="${KETFAQ_SAFETY_DATA:-../shared/data}"
if [ -d "$SAFETY_DATA" ]; then
  .venv/bin/ketfaq safety train --check --data "$SAFETY_DATA"
  .venv/bin/ketfaq safety report --gate --data "$SAFETY_DATA" --out eval-out/safety-report.json
  # The second ranking stage: retraining must reproduce the shipped ranker (docs/RANKING.md).
  .venv/bin/ketfaq rank train --check --data "$SAFETY_DATA"
elif [ -n "${CI:-}" ]; then
  echo "safety data missing at $SAFETY_DATA: CI must check the safety model" >&2
  exit 1
else
  echo "safety data missing at $SAFETY_DATA: skipping the safety model checks" >&2
fi
