#!/usr/bin/env bash
# Regenerate the README screenshots in docs/screenshots/ with the browser test walk
# (tests/browser): a fresh app over tiny generated corpora, Debian's Chromium at 1280×800, the
# astronaut photo as the fake webcam. Needs /usr/bin/chromium (scripts/system-deps.sh).
#   bash scripts/screenshots.sh            all pages
#   bash scripts/screenshots.sh -k live    only some (pytest -k expression)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/chromium ] || { echo "!! /usr/bin/chromium is missing: bash scripts/system-deps.sh" >&2; exit 1; }
shots="$(mktemp -d)"
trap 'rm -rf "$shots"' EXIT
# failures do not stop the copy of the pages that did pass; the exit status reports them
status=0
AFFECTLAB_SCREENSHOTS="$shots" .venv/bin/python -m pytest tests/browser/test_browser_walk.py \
  -m browser -q -p no:cacheprovider "$@" || status=$?
mkdir -p docs/screenshots
n=0
for f in "$shots"/*.png; do
  [ -e "$f" ] || continue
  cp "$f" docs/screenshots/ && n=$((n + 1))
done
echo ">> $n screenshot(s) written to docs/screenshots/"
exit $status
