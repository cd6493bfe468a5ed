#!/usr/bin/env bash
# Install ketfaq and everything it needs into .venv (a fresh machine has nothing).
# PyTorch is installed first and pinned: torch==2.13.0 resolves to a local CPU build, while any
# other spec would pull gigabytes of CUDA wheels.
# Installs only when something it installs from changed (pyproject.toml, this script, the extras):
# a warm `scripts/serve.sh` restart needs neither pip nor the registry.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
digest="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
stamp=".venv/.ketfaq-setup-${extras:-base}"
# The ketfaq package is installed editable: code changes need no reinstall, dependency changes do.
# A dev install satisfies a plain one.
for done in "$stamp" .venv/.ketfaq-setup-dev; do
  if [ -x .venv/bin/ketfaq ] && [ "$(cat "$done" 2>/dev/null)" = "$digest" ]; then
    [ "$done" = "$stamp" ] || [ -z "$extras" ] || continue
    echo "ketfaq dependencies unchanged since the last install: nothing to install" >&2
    exit 0
  fi
done
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PY=.venv/bin/python
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet torch==2.13.0
"$PY" -m pip install --quiet -e ".${extras:+[$extras]}"
echo "$digest" > "$stamp"
echo "ketfaq installed in .venv (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
