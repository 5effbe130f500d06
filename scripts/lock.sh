#!/usr/bin/env bash
# Regenerate requirements.lock (the exact versions `make app` and `make test` install) from the
# ranges in pyproject.toml with pip-tools, in a throw-away tool environment. Run it after
# changing a dependency, then run `make test` and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install -q --disable-pip-version-check 'pip-tools>=7.4'
"$tools/bin/pip-compile" --quiet --extra dev --strip-extras --unsafe-package torch \
  --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
  --constraint scripts/lock-constraints.txt --output-file requirements.lock pyproject.toml
echo ">> requirements.lock written"
