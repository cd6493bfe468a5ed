#!/usr/bin/env bash
# Install ketfaq and everything it needs into .venv (a fresh machine has nothing).
# PyTorch is installed first and pinned: torch==2.13.0 resolves to a local CPU build, while any
# other spec would pull gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PY=.venv/bin/python
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet torch==2.13.0
"$PY" -m pip install --quiet -e ".${extras:+[$extras]}"
echo "ketfaq installed in .venv (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
