#!/usr/bin/env bash
# Debian packages that some tests and the live page use: PortAudio (sounddevice), Chromium and
# its driver (browser tests), PostgreSQL (rating-store tests). Installed when missing and we are
# root with apt-get; otherwise a hint is printed and the tests that need them skip themselves.
set -uo pipefail
need=()
ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || need+=(libportaudio2)
# colour emoji for the sidebar icons in browser screenshots
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/tmp/affectlab-apt.log 2>&1 \
    || echo "!! apt-get failed (see /tmp/affectlab-apt.log); tests that need ${need[*]} will skip"
else
  echo "!! missing system packages: ${need[*]} (sudo apt-get install ${need[*]}); tests that need them will skip"
fi
exit 0
