#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium (with a CJK font, so screenshots show
# Chinese). Installed here when missing and this user may run apt-get; otherwise say what to do.
set -euo pipefail
if command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing chromium and a CJK font for the browser tests (apt-get)…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei >/dev/null; }
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei >/dev/null
else
  echo "The browser tests need Chromium: install Debian's 'chromium' and 'fonts-wqy-microhei' packages." >&2
fi
