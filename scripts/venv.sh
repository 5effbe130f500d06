#!/usr/bin/env bash
# Creates or refreshes .venv when pyproject.toml, requirements.lock (or this script) is newer than
# the last install. The exact versions come from requirements.lock (scripts/lock.sh makes it).
# AFFECTLAB_TORCH overrides the torch requirement, e.g. on a GPU box:
#   AFFECTLAB_TORCH="torch --index-url https://download.pytorch.org/whl/cu124" make app
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AFFECTLAB_VENV:-.venv}
STAMP="$VENV/.affectlab-installed"
TORCH_SPEC=${AFFECTLAB_TORCH:-torch==2.13.0}

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt scripts/venv.sh ] \
   && [ "$STAMP" -nt requirements.lock ] \
   && [ "$(cat "$STAMP")" = "$TORCH_SPEC" ]; then
  exit 0
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "affectlab needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

echo ">> setting up $VENV with $PY ($TORCH_SPEC) — the first run takes a few minutes"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
LOG="$VENV/install.log"
: > "$LOG"
pip_install() {
  # pip's chatter goes to the log; on failure the end of it is shown
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >>"$LOG" 2>&1; then
    echo "!! pip install $* failed; the end of $LOG:" >&2
    grep -v "is ignored: it is neither" "$LOG" | tail -n 30 >&2
    exit 1
  fi
}
PIP=(pip_install)
"${PIP[@]}" --upgrade pip setuptools wheel
# torch first, so the open range in pyproject.toml never pulls a CUDA build on a CPU machine
# shellcheck disable=SC2086
"${PIP[@]}" $TORCH_SPEC
"${PIP[@]}" -r requirements.lock
"${PIP[@]}" --no-deps -e .
# dlordinal is a test-only reference for EMD²; it declares torchvision (which has no CPU build
# here and would pull CUDA torch), but its losses never import it.
"${PIP[@]}" --no-deps 'dlordinal>=2.4'
# crowd-kit is the test-only reference for the crowd aggregators (tests/test_aggregators.py); it
# declares transformers (torch, hub downloads) for modules we never import, while
# crowdkit.aggregation needs only what requirements.lock has (attrs, nltk, scipy, pandas).
# Pinned: the tests compare our one-coin DS, GLAD and MACE with this version's updates.
"${PIP[@]}" --no-deps 'crowd-kit==1.4.2'
echo "$TORCH_SPEC" > "$STAMP"
echo ">> $VENV ready"
