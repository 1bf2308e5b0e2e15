#!/usr/bin/env bash
# Debian packages Docket itself needs: a CJK font (OFD pages and XML e-invoices are drawn with
# it, so Chinese shows). Installed when missing and this user may run apt-get; else say what to do.
set -euo pipefail
if fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing a CJK font (fonts-wqy-microhei, apt-get)…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null; }
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null
else
  echo "Chinese text on rendered OFD pages needs a CJK font: install Debian's 'fonts-wqy-microhei'." >&2
fi
